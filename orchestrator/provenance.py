"""Which code, on which machine and with which libraries, a sweep run was: its provenance.

Why: a result is only as good as what is known about how it was made, and MLflow's own git
tags are empty under Ray Jobs, whose working directory is an upload, not a git checkout. So
every run of the sweep records, as tags of its MLflow parent runs and summary run and in every
ledger entry it writes (hence every row of ``results.parquet``): the project's version, a
digest of its code (the git commit in a git checkout, marked ``-dirty`` when package files
differ from it; else the sha256 of the package files, which is what Ray Jobs ships), the
versions of Python, torch, Ray, DeepSparse and MLflow (read from the installed packages'
metadata, so nothing heavy is imported), the host and its CPU kind (the speed ratios depend
on it).
"""

from __future__ import annotations

import hashlib
import platform
import socket
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from common import columns as C
from common.machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]  # the folder holding the project's packages
PACKAGES = ("common", "orchestrator", "reports", "search_spaces", "trainables")
DISTRIBUTIONS = {C.TORCH_VERSION: "torch", C.RAY_VERSION: "ray",
                 C.DEEPSPARSE_VERSION: "deepsparse", C.MLFLOW_VERSION: "mlflow"}
PROJECT = "sparse-transfer"


def provenance(root: Path = ROOT) -> dict[str, str]:
    """The facts above, by their ``results.parquet`` column (also their MLflow tag)."""
    facts = {C.PROJECT_VERSION: project_version(root), C.CODE_DIGEST: code_digest(root),
             C.PYTHON_VERSION: platform.python_version()}
    for column, dist in DISTRIBUTIONS.items():
        facts[column] = _version(dist)
    facts[C.HOSTNAME] = socket.gethostname()
    facts[C.CPU_MODEL] = cpu_model()
    return facts


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def project_version(root: Path = ROOT) -> str:
    """The version in the ``pyproject.toml`` beside the packages (the code that runs; Ray
    Jobs ships it), else the installed distribution's."""
    try:
        with open(root / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return _version(PROJECT)


def code_digest(root: Path = ROOT) -> str:
    """``git:<commit>`` (``-dirty`` when a package file differs from it) when ``root`` is a
    git checkout's top, else ``sha256:<first 16 hex>`` of the package files
    (``package_digest``): a repository above ``root`` (a home folder kept in git, around an
    installed copy or a job's upload) holds other code, and its commit would name the wrong one."""
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = _git(root, "rev-parse", "HEAD") if top and _same(Path(top), root) else None
    if commit is None:
        return f"sha256:{package_digest(root)[:16]}"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *PACKAGES)
    return f"git:{commit}" + ("-dirty" if dirty else "")


def package_digest(root: Path = ROOT) -> str:
    """sha256 over each package file's path (relative, POSIX) and bytes, in sorted order:
    the same code gives the same digest wherever it was copied (no caches: ``__pycache__``,
    ``*.pyc``)."""
    h = hashlib.sha256()
    files = sorted(p for name in PACKAGES for p in (root / name).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _git(root: Path, *args: str) -> str | None:
    """``git args`` in ``root``; its output, "" when it printed nothing, None outside a git
    checkout (or without git)."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
