"""The paper's checkpoints, fetched from the public shares the reference code's README links
and laid out as a study's ``checkpoint_pattern`` expects.

The shares hold every checkpoint of the paper but LTH-T's tickets, converted to one format.
Their file names are the authors'; each file is placed by what it is: the method by its name
(the study's method key or label in it, a few spellings allowed: ``ALIASES``), the
architecture and the sparsity by its content, read as a trial reads it
(``load_checkpoint``: format, architecture fit, measured sparsity). A sparsity in the name
must agree with the measured one; a file that does not load, does not fit the architecture
or measures no sparsity the study wants is refused, never laid out.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import BadInput
from trainables.checkpoints.loading import SPARSITY_TOLERANCE, load_checkpoint
from trainables.checkpoints.share import ShareFile, ShareLink, download, list_files

# The converted checkpoints of the paper, as the reference code's README links them.
PAPER_SHARES = {
    "resnet50": "https://seafile.ist.ac.at/d/91de9650cfb54b77b7d1/",
    "mobilenet_v1": "https://seafile.ist.ac.at/d/48652b95fdd04bcd8bb6/",
}
# Spellings of a method in file names, beyond its key and label (letters and digits only).
ALIASES = {
    "dense": ("dense", "baseline", "torchvision"),
    "woodfisher": ("woodfisher", "wfisher"),
    "acdc": ("acdc",),
    "rigl_erk1x": ("riglerk1x", "rigl1x", "riglerk1"),
    "rigl_erk5x": ("riglerk5x", "rigl5x", "riglerk5"),
    "mfac": ("mfac",),
}
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".bin", ".safetensors")
FETCH_DIR = ".fetch"  # downloads in progress (*.part) under --checkpoint-dir


@dataclass(frozen=True)
class Method:
    """What the fetch needs of a study's method for one architecture."""

    name: str
    label: str
    sparsities: tuple[int, ...]
    dense: bool = False
    ticket: bool = False  # LTH-T: tickets, never public


@dataclass
class Outcome:
    """What a fetch did: files laid out, refused, unused, and wanted ones the share lacks."""

    laid_out: dict[tuple[str, int], Path] = field(default_factory=dict)
    already: dict[tuple[str, int], Path] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    missing: list[tuple[str, int]] = field(default_factory=list)


def _letters(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def method_of(file_name: str, arch: str, methods: Iterable[Method]) -> Method | None:
    """The study's method a file name names (its key, label or an alias; the longest match
    wins, so ``rigl_erk5x`` beats ``str``), or None."""
    name = _letters(Path(file_name).stem).replace(_letters(arch), "")
    best: tuple[int, Method] | None = None
    for m in methods:
        for spelling in {_letters(m.name), _letters(m.label), *ALIASES.get(m.name, ())}:
            if spelling and spelling in name and (best is None or len(spelling) > best[0]):
                best = (len(spelling), m)
    return best[1] if best else None


def sparsity_in_name(file_name: str, arch: str) -> int | None:
    """The one sparsity percent a file name states (``gmp_90.pth``: 90), or None: numbers of
    the architecture (``resnet50``, ``v1``) and of RigL's ``1x``/``5x`` do not count."""
    stem = Path(file_name).stem.lower()
    for word in (arch.lower(), arch.lower().replace("_", ""), "mobilenetv1", "erk1x", "erk5x",
                 "1x", "5x"):
        stem = stem.replace(word, " ")
    numbers = {int(n) for n in re.findall(r"(?<![0-9.])([0-9]{1,2})(?![0-9])", stem)}
    numbers = {n for n in numbers if 0 < n < 100}
    return numbers.pop() if len(numbers) == 1 else None


def study_methods(study_name: str, arch: str) -> tuple[list[Method], str]:
    """The study's methods with sparsities for ``arch``, and its ``checkpoint_pattern``."""
    from search_spaces.loader import load_study

    study = load_study(study_name)
    found = [Method(m.name, m.label or m.name, tuple(m.sparsities_for(arch)),
                    dense=m.family == "dense",
                    ticket=bool(m.tickets or m.ticket_pattern))
             for m in study.methods if m.sparsities_for(arch)]
    return found, study.checkpoint_pattern


def _target(folder: Path, pattern: str, arch: str, method: str, sparsity: int) -> Path:
    return folder / pattern.format(arch=arch, method=method, sparsity=sparsity)


def placed(part: Path, item: ShareFile, arch: str, method: Method | None,
           methods: list[Method]) -> tuple[Method, int]:
    """Where a downloaded file belongs, ``(method, sparsity)``, judged by its content.

    Raises ``BadInput`` naming the file and what is wrong: it does not load as a checkpoint
    of ``arch``, its measured sparsity disagrees with its name, or the study wants no such
    sparsity of its method (or of any method, for a file whose name names none).
    """
    try:
        ckpt = load_checkpoint(part, arch=arch)
    except BadInput as e:
        raise BadInput(f"{item.name}: {str(e).replace(str(part), item.name)}") from None
    measured = ckpt.sparsity
    if method is None:  # no method in the name: only a dense file is known by content alone
        dense = next((m for m in methods if m.dense), None)
        if dense is None or measured > SPARSITY_TOLERANCE:
            raise LookupError(f"{item.name}: its name names no method of the study "
                              f"(measured sparsity {measured:.2f} %); not used")
        return dense, 0
    named = sparsity_in_name(item.name, arch)
    if named is not None and abs(measured - named) > SPARSITY_TOLERANCE:
        raise BadInput(f"{item.name}: its name says {named} % but its measured global "
                       f"sparsity is {measured:.2f} % ({ckpt.format}, {ckpt.arch}): a wrong "
                       "or damaged file")
    close = [s for s in method.sparsities if abs(measured - s) <= SPARSITY_TOLERANCE]
    if not close:
        raise BadInput(f"{item.name}: {method.label} with measured sparsity {measured:.2f} % "
                       f"({ckpt.format}, {ckpt.arch}); the study wants {method.label} at "
                       f"{', '.join(map(str, method.sparsities))} %")
    return method, close[0]


def fetch(share: ShareLink, arch: str, folder: Path, methods: list[Method], pattern: str,
          say: Callable[[str], None] = print,
          progress: Callable[[ShareFile, int], Callable[[int], None]] | None = None,
          ) -> Outcome:
    """Download the share's checkpoints the study wants for ``arch`` into ``folder``.

    Files already laid out (same size as on the share) are not fetched again; a cut-off
    download resumes from its ``.part`` file under ``folder/.fetch``. ``progress(item,
    have)`` returns the per-chunk callback of one download (a progress bar).
    """
    out = Outcome()
    wanted = [m for m in methods if not m.ticket]
    for item in list_files(share):
        if not item.name.lower().endswith(CHECKPOINT_SUFFIXES):
            continue
        method = method_of(item.name, arch, wanted)
        if method is not None and method.dense:
            method = next(m for m in wanted if m.dense)
        dense = next((m.name for m in wanted if m.dense), None)
        skip = _not_needed(item, arch, method, dense, out, folder, pattern)
        if skip:
            say(skip)
            continue
        _fetch_one(share, item, arch, folder, method, wanted, pattern, out, say, progress)
    have = set(out.laid_out) | set(out.already)
    out.missing = [(m.name, s) for m in wanted for s in m.sparsities if (m.name, s) not in have]
    return out


def _not_needed(item: ShareFile, arch: str, method: Method | None, dense: str | None,
                out: Outcome, folder: Path, pattern: str) -> str | None:
    """Why ``item`` is not downloaded, or None: its name gives a sparsity the study does not
    want of its method, its target is already there (same size), or it names no method and
    the dense model (the only file known by content alone) is already in place."""
    if method is None:
        placed_dense = any(name == dense for name, _ in (*out.laid_out, *out.already))
        return f"{item.name}: names no method of the study; not needed" if placed_dense else None
    named = 0 if method.dense else sparsity_in_name(item.name, arch)
    if named is None:
        return None
    if named not in method.sparsities:
        return f"{item.name}: the study wants no {method.label} at {named} %; not needed"
    target = _target(folder, pattern, arch, method.name, named)
    if target.exists() and target.stat().st_size == item.size:
        out.already[(method.name, named)] = target
        return f"already there: {target}"
    return None


def _fetch_one(share: ShareLink, item: ShareFile, arch: str, folder: Path,
               method: Method | None, wanted: list[Method], pattern: str, out: Outcome,
               say: Callable[[str], None],
               progress: Callable[[ShareFile, int], Callable[[int], None]] | None) -> None:
    """Download one file, judge it by content and lay it out (or refuse it)."""
    part = folder / FETCH_DIR / f"{item.name}.part"
    have = part.stat().st_size if part.exists() else 0
    if 0 < have < item.size:
        say(f"{item.name}: resuming after {have:,} of {item.size:,} bytes")
    download(share, item, part, progress(item, have) if progress else None)
    try:
        m, sparsity = placed(part, item, arch, method, wanted)
    except LookupError as e:
        out.unused.append(str(e))
        part.unlink()
        say(str(e))
        return
    except BadInput as e:
        out.refused.append(str(e))
        part.unlink()
        say(f"refused: {e}")
        return
    target = _target(folder, pattern, arch, m.name, sparsity)
    if (m.name, sparsity) in out.laid_out:
        out.unused.append(f"{item.name}: a second file for {m.label} {sparsity} %; not used")
        part.unlink()
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, target)
    out.laid_out[(m.name, sparsity)] = target
    say(f"{item.name} -> {target} ({m.label}, {sparsity} %, checked)")


def tickets_line(methods: list[Method], arch: str, folder: Path, pattern: str) -> str | None:
    """The one line on LTH-T: its tickets were never public, and what to do instead."""
    ticket = next((m for m in methods if m.ticket), None)
    if ticket is None:
        return None
    return (f"{ticket.label} ({ticket.name}): Chen et al.'s tickets were never made public, so "
            "no share holds them. Ask the authors for them and put each where "
            f"methods.{ticket.name}.tickets says (e.g. {folder / arch}/), or run LTH-T as the "
            f"paper describes it: `mask_from: woodfisher` in place of `tickets:` in the study "
            "file, or leave it out with --methods")


def run(arch: str, folder: Path, share_url: str | None, study: str = "paper",
        say: Callable[[str], None] = print) -> int:
    """``--fetch ARCH``: fetch, then one line per result; 0 when every checkpoint the study
    wants (LTH-T's tickets apart) is in place, 1 when some are missing or were refused."""
    from trainables.checkpoints.share import parse_share_url

    if share_url is None and arch not in PAPER_SHARES:
        raise BadInput(f"--fetch {arch!r}: the paper's shares hold "
                       f"{' and '.join(PAPER_SHARES)}; give --share URL for another")
    share = parse_share_url(share_url or PAPER_SHARES[arch])
    methods, pattern = study_methods(study, arch)
    say(f"listing {share.url}" + ("" if share_url else
                                  f" (the share the reference code's README links for {arch})"))
    outcome = fetch(share, arch, folder, methods, pattern, say, _progress_bar)
    for name, sparsity in outcome.missing:
        say(f"missing: {name} {sparsity} % ({_target(folder, pattern, arch, name, sparsity)}):"
            " no file of the share is it")
    line = tickets_line(methods, arch, folder, pattern)
    if line:
        say(line)
    done = len(outcome.laid_out) + len(outcome.already)
    say(f"{done} checkpoint(s) in place under {folder}, {len(outcome.missing)} missing, "
        f"{len(outcome.refused)} refused")
    return 1 if outcome.missing or outcome.refused else 0


def _progress_bar(item: ShareFile, have: int) -> Callable[[int], None]:
    """A tqdm bar for one download (bytes, starting at what a resumed file already has)."""
    from tqdm import tqdm

    bar = tqdm(total=item.size, initial=have, unit="B", unit_scale=True, desc=item.name,
               file=sys.stderr, mininterval=1.0, leave=False)

    def step(n: int) -> None:
        bar.update(n)
        if bar.n >= item.size:
            bar.close()

    return step
