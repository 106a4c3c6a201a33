"""Expanding a study into trials, stage by stage, with stable ids.

Stages run in dependency order: ``pretrain`` -> ``prune`` (tiny study only: they make the
zoo), ``checkpoint`` (one per backbone: per-layer sparsity, fully pruned filters, upstream
validation accuracy), then ``linear`` and ``full`` transfer trials (features are extracted once per backbone
and dataset before the linear trials), then ``speed``. Paths depend on the output folder;
ids do not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from common.atomic import atomic_write_text
from common.errors import BadInput
from search_spaces.recipe import PAPER_CROP_SCALE, Recipe
from search_spaces.schema import MethodSpec, ModeSpec, Study
from search_spaces.trial import TrialSpec
from trainables.context import zoo_path

STAGE_ORDER = ("pretrain", "prune", "checkpoint", "linear", "full", "speed")


@dataclass(frozen=True)
class Backbone:
    """A sparse (or dense) upstream model that transfer trials start from."""

    arch: str
    method: str
    sparsity: int
    checkpoint: str
    checkpoint_hash: str | None
    mask_checkpoint: str | None = None
    mask_checkpoint_hash: str | None = None
    interpolation: str = "bilinear"
    transfer: bool = True


@dataclass
class Grid:
    study: Study
    out_dir: Path
    stages: dict[str, list[TrialSpec]] = field(default_factory=dict)
    backbones: list[Backbone] = field(default_factory=list)

    def all_trials(self) -> list[TrialSpec]:
        return [t for s in STAGE_ORDER for t in self.stages.get(s, [])]


class FileHashes:
    """sha256 of checkpoint files, and whether a ticket holds weights, remembered by (path,
    size, mtime) so reruns skip re-reading. ``read=False`` (dry run, rehearsal) reads no file
    and knows neither."""

    def __init__(self, cache_file: Path | None, read: bool = True) -> None:
        self.cache_file = cache_file
        self.read = read
        self._cache: dict[str, str | bool | None] = {}
        if cache_file and cache_file.exists():
            try:
                self._cache = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                self._cache = {}

    def _key(self, path: Path) -> str | None:
        if not self.read or not path.is_file():
            return None
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    def __call__(self, path: Path) -> str | None:
        key = self._key(path)
        if key is None:
            return None
        if key not in self._cache:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self._cache[key] = h.hexdigest()
            self._save()
        return self._cache[key]  # type: ignore[return-value]

    def holds_weights(self, ticket: Path) -> bool | None:
        """Whether LTH-T's ticket file holds weights (``checkpoints.ticket_holds_weights``):
        opened once (with torch) per file version; None when not read or not readable (the
        trial then fails on the file, naming it)."""
        key = self._key(ticket)
        if key is None:
            return None
        key += "|holds_weights"
        if key not in self._cache:
            from trainables.checkpoints import ticket_holds_weights

            try:
                self._cache[key] = ticket_holds_weights(ticket)
            except BadInput:
                self._cache[key] = None
            self._save()
        return self._cache[key]  # type: ignore[return-value]

    def _save(self) -> None:
        if not self.cache_file:
            return
        atomic_write_text(self.cache_file, json.dumps(self._cache))


def _resolve(study: Study, given: str | None, pattern: str, arch: str, method: str,
             sparsity: int) -> Path:
    # Absolute: Tune runs each trial in its own folder, where a relative path means nothing.
    if given and "{sparsity}" not in given:
        return Path(given).expanduser().resolve()
    base = Path(study.checkpoint_dir or "checkpoints").expanduser().resolve()
    return base / (given or pattern).format(arch=arch, method=method, sparsity=sparsity)


def _checkpoint_file(study: Study, m: MethodSpec, arch: str, sparsity: int) -> Path:
    return _resolve(study, m.checkpoint_for(sparsity, arch), study.checkpoint_pattern, arch,
                    m.name, sparsity)


def ticket_file(study: Study, m: MethodSpec, arch: str, sparsity: int) -> Path | None:
    """LTH-T's ticket file at ``sparsity`` (a path, or the method's pattern under
    checkpoint_dir), or None when the method has no ticket there."""
    given = m.ticket_for(sparsity)
    return None if given is None else _resolve(study, given, given, arch, m.name, sparsity)


def _upstream(study: Study, out_dir: Path, grid: Grid) -> None:
    """Tiny study: one dense pretraining trial and one pruning trial per method x sparsity."""
    u = study.upstream
    assert u is not None
    common = dict(
        arch=study.arch, dataset=u.dataset, num_classes=u.num_classes, metric="top1",
        image_size=study.image_size,
    )
    pre = TrialSpec(
        stage="pretrain", method="dense", sparsity=0, seed=u.seed, recipe=u.pretrain,
        params=(("images_per_class", u.images_per_class),
                ("val_images_per_class", u.val_images_per_class)),
        **common,
    )
    dense_ckpt = zoo_path(out_dir, study.arch, "dense", 0)
    grid.stages["pretrain"] = [pre]
    prunes = []
    overrides = dict(u.prune_overrides)
    by_name = {m.name: m for m in study.methods}
    for m in study.methods:
        if m.family == "dense":
            grid.backbones.append(Backbone(study.arch, "dense", 0, str(dense_ckpt), pre.trial_id))
            continue
        if m.mask_from:
            continue
        for s in m.sparsities:
            cfg = tuple(sorted({**dict(u.prune), **dict(overrides.get(m.name, ()))}.items()))
            t = TrialSpec(
                stage="prune", method=m.name, sparsity=s, seed=u.seed, recipe=None,
                checkpoint=str(dense_ckpt), checkpoint_hash=pre.trial_id,
                params=cfg + (("images_per_class", u.images_per_class),
                              ("val_images_per_class", u.val_images_per_class)),
                **common,
            )
            prunes.append(t)
            grid.backbones.append(
                Backbone(study.arch, m.name, s, str(zoo_path(out_dir, study.arch, m.name, s)),
                         t.trial_id, interpolation=m.interpolation, transfer=m.transfer)
            )
    for m in study.methods:
        if m.mask_from:
            src = {(b.method, b.sparsity): b for b in grid.backbones}
            for s in m.sparsities:
                if (m.mask_from, s) not in src:
                    raise ValueError(
                        f"methods.{m.name}: mask_from {m.mask_from!r} has no sparsity {s}; "
                        f"it has {list(by_name[m.mask_from].sparsities)}"
                    )
                b = src[(m.mask_from, s)]
                grid.backbones.append(
                    Backbone(study.arch, m.name, s, str(dense_ckpt), pre.trial_id,
                             b.checkpoint, b.checkpoint_hash, interpolation=m.interpolation,
                             transfer=m.transfer)
                )
    grid.stages["prune"] = prunes


def _given_checkpoints(study: Study, hashes: FileHashes, grid: Grid) -> None:
    """Paper-style study: backbones are files the user points at."""
    for arch in study.archs:
        dense_m = next(m for m in study.methods if m.family == "dense")
        dense_file = _checkpoint_file(study, dense_m, arch, 0)
        dense_hash = hashes(dense_file)
        for m in study.methods:
            for s in m.sparsities_for(arch):
                ticket = ticket_file(study, m, arch, s)
                if ticket is not None and hashes.holds_weights(ticket) is False:
                    # A ticket of masks alone: its mask on the dense ImageNet weights
                    # (trainables.checkpoints.load_mask_source reads it).
                    grid.backbones.append(
                        Backbone(arch, m.name, s, str(dense_file), dense_hash, str(ticket),
                                 hashes(ticket), m.interpolation, m.transfer)
                    )
                elif ticket is not None:
                    # LTH-T as the reference code ran it: the ticket file as it is, its own
                    # weights under its own mask (also when not read: dry run, rehearsal).
                    grid.backbones.append(
                        Backbone(arch, m.name, s, str(ticket), hashes(ticket), None, None,
                                 m.interpolation, m.transfer)
                    )
                elif m.mask_from:
                    src = study.method(m.mask_from)
                    mf = _checkpoint_file(study, src, arch, s)
                    grid.backbones.append(
                        Backbone(arch, m.name, s, str(dense_file), dense_hash, str(mf),
                                 hashes(mf), m.interpolation, m.transfer)
                    )
                else:
                    f = _checkpoint_file(study, m, arch, s)
                    grid.backbones.append(
                        Backbone(arch, m.name, s, str(f), hashes(f), None, None,
                                 m.interpolation, m.transfer)
                    )


def expand(study: Study, out_dir: Path, hash_files: bool = True) -> Grid:
    """All trials of a study. ``hash_files=False`` (dry run) skips reading checkpoints."""
    grid = Grid(study=study, out_dir=out_dir)
    hashes = FileHashes(out_dir / ".checkpoint_hashes.json" if hash_files else None, hash_files)
    if study.upstream is not None:
        _upstream(study, out_dir, grid)
    else:
        _given_checkpoints(study, hashes, grid)
    grid.stages["checkpoint"] = _checkpoint_trials(study, grid)
    for mode in study.modes:
        trials = []
        for b in grid.backbones:
            if not b.transfer:
                continue
            for d in study.datasets:
                recipe, params = mode.recipe, protocol_params(mode)
                if mode.name == "full":
                    recipe = dataclasses.replace(recipe, lr=d.full_lr)
                    params = augmentation_params(mode) + params
                for seed in mode.seeds:
                    trials.append(
                        TrialSpec(
                            stage=mode.name, method=b.method, sparsity=b.sparsity, arch=b.arch,
                            dataset=d.name, seed=seed, recipe=recipe, num_classes=d.classes,
                            metric=d.metric, group=d.group, image_size=study.image_size,
                            interpolation=b.interpolation, checkpoint=b.checkpoint,
                            checkpoint_hash=b.checkpoint_hash,
                            mask_checkpoint=b.mask_checkpoint,
                            mask_checkpoint_hash=b.mask_checkpoint_hash, params=params,
                        )
                    )
        grid.stages[mode.name] = trials
    grid.stages["speed"] = _speed_trials(study, grid) if study.speed.enabled else []
    return grid


UPSTREAM_DATASET = "imagenet"  # what given checkpoints were trained on (Table 3's validation)


def _checkpoint_trials(study: Study, grid: Grid) -> list[TrialSpec]:
    """One per backbone: its statistics and upstream accuracy. The tiny study's are evaluated
    on the procedural validation split of its pretraining (the same params and seed), given
    checkpoints on ImageNet's validation set when the data root has it."""
    u = study.upstream
    trials = []
    for b in grid.backbones:
        if u is not None:
            upstream = dict(dataset=u.dataset, num_classes=u.num_classes, seed=u.seed,
                            params=(("images_per_class", u.images_per_class),
                                    ("val_images_per_class", u.val_images_per_class)))
        else:
            upstream = dict(dataset=UPSTREAM_DATASET, num_classes=1000, seed=0, params=())
        trials.append(TrialSpec(
            stage="checkpoint", method=b.method, sparsity=b.sparsity, arch=b.arch,
            metric="top1", image_size=study.image_size, interpolation=b.interpolation,
            checkpoint=b.checkpoint, checkpoint_hash=b.checkpoint_hash,
            mask_checkpoint=b.mask_checkpoint, mask_checkpoint_hash=b.mask_checkpoint_hash,
            **upstream,
        ))
    return trials


def augmentation_params(mode: ModeSpec) -> tuple[tuple[str, object], ...]:
    """Full finetuning's augmentation as trial params, only where it is not the paper's, so
    the trial ids of studies that keep the paper's augmentation do not change."""
    if mode.crop_scale == PAPER_CROP_SCALE:
        return ()
    return (("crop_scale", tuple(mode.crop_scale)),)


def protocol_params(mode: ModeSpec) -> tuple[tuple[str, object], ...]:
    """A mode's normalisation and epoch rule as trial params, only where they differ from what
    the project did before they were keys (ImageNet mean/std, best epoch by the dataset's
    metric), so trials that keep that behaviour keep their ids."""
    params: tuple[tuple[str, object], ...] = ()
    if mode.normalize != "imagenet":
        params += (("normalize", mode.normalize),)
    if mode.epoch_selection != "metric":
        params += (("epoch_selection", mode.epoch_selection),)
    return params


def online_recipe(study: Study) -> Recipe:
    """The online runs' recipe: the linear mode's (the paper's without one) for
    ``speed.online_epochs`` epochs at the speed trials' largest batch."""
    linear = next((m for m in study.modes if m.name == "linear"), None)
    recipe = linear.recipe if linear is not None else Recipe()
    return dataclasses.replace(recipe, epochs=study.speed.online_epochs,
                               batch_size=max(study.speed.batch_sizes))


def online_protocol(study: Study) -> tuple[tuple[str, object], ...]:
    """The online runs' epoch rule (the linear mode's) and augmentation (the full mode's), as
    params only where they differ from the defaults (``protocol_params``,
    ``augmentation_params``)."""
    params: tuple[tuple[str, object], ...] = ()
    for mode in study.modes:
        if mode.name == "linear" and mode.epoch_selection != "metric":
            params += (("epoch_selection", mode.epoch_selection),)
        if mode.name == "full":
            params += augmentation_params(mode)
    return params


def _speed_trials(study: Study, grid: Grid) -> list[TrialSpec]:
    """Per backbone and online dataset, a speed trial whose online runs train with
    ``online_recipe``; per random sparsity, a timing-only one on synthetic images."""
    sp = study.speed
    params = (
        ("batch_sizes", sp.batch_sizes), ("warmup", sp.warmup), ("reps", sp.reps),
        ("online_dataset", sp.online_dataset), ("online_batches", sp.online_batches),
        ("loader_workers", sp.loader_workers),
    )
    online = sp.online_dataset or (study.datasets[0].name if study.datasets else "")
    # Figure 4: one trial per backbone and online dataset (params name it, so ids differ).
    onlines = sp.online_datasets or (online,)
    known = {d.name: d for d in study.datasets}  # others: classes and metric at run time
    # The dense backbone of each arch: the online runs' dense baseline (its accuracy too).
    dense = {b.arch: b for b in reversed(grid.backbones) if b.sparsity == 0 and b.transfer}
    trials = []
    if sp.backbones:
        for b in grid.backbones:
            if not b.transfer:
                continue
            for name in onlines:
                each = params if not sp.online_datasets else tuple(
                    (k, name if k == "online_dataset" else v) for k, v in params)
                d, base = known.get(name), dense.get(b.arch)
                baseline = (("dense_checkpoint_hash", base.checkpoint_hash),) if base else ()
                trials.append(
                    TrialSpec(
                        stage="speed", method=b.method, sparsity=b.sparsity, arch=b.arch,
                        dataset=name, seed=0, recipe=online_recipe(study),
                        num_classes=d.classes if d else 0, metric=d.metric if d else "top1",
                        image_size=study.image_size, interpolation=b.interpolation,
                        checkpoint=b.checkpoint, checkpoint_hash=b.checkpoint_hash,
                        mask_checkpoint=b.mask_checkpoint,
                        mask_checkpoint_hash=b.mask_checkpoint_hash,
                        dense_checkpoint=base.checkpoint if base else None,
                        params=(each + online_protocol(study) + baseline
                                + (("weights", "trained"),)),
                    )
                )
    if sp.random_arch:
        # Each trial times its dense references side by side, so no separate dense trial.
        # Its online epoch reads synthetic 224 px images (speed_spec_from), whatever the study's
        # datasets, and its row says so: timing only, so no recipe.
        timing = tuple((k, sp.random_online_batches if k == "online_batches" else v)
                       for k, v in params)
        for s in sorted(set(sp.random_sparsities) - {0}):
            trials.append(
                TrialSpec(
                    stage="speed", method=f"random_{sp.random_profile}",
                    sparsity=s, arch=sp.random_arch, dataset="synthetic", seed=0, image_size=224,
                    params=timing + (("weights", "random"), ("profile", sp.random_profile)),
                )
            )
    return trials
