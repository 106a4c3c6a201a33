"""Helpers shared by the bad-input and fault tests: tiny checkpoints, a small study file, a
sweep driven as a subprocess (killable as a process group), and readers for what a sweep
leaves behind (ledger, results.parquet, MLflow, listening sockets).

Nothing here needs the pruning methods or the upstream zoo: the study reads checkpoints that
the tests write (a random ``resnet_tiny`` and magnitude-pruned copies of it), and the
datasets are built-in tasks or image folders made by the tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ARCH = "resnet_tiny"

# Environment of every subprocess: no analytics, no tracking server from the caller's shell.
BASE_ENV = {
    k: v for k, v in os.environ.items()
    if not k.startswith(("MLFLOW_", "RAY_ADDRESS", "PYTEST_"))
}
BASE_ENV.update(NM_DISABLE_ANALYTICS="1", PYTHONUNBUFFERED="1")


# ---------------------------------------------------------------------------------------
# Checkpoints


def tiny_model(seed: int = 0, num_classes: int = 10):
    import torch

    from trainables import models

    torch.manual_seed(seed)
    return models.build_model(ARCH, num_classes)


def magnitude_prune(model, fraction: float):
    """Zero the smallest ``fraction`` of every prunable weight, in place; returns the model."""
    import torch

    from trainables.models import masks

    names = set(masks.prunable_names(model))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in names:
                k = int(round(fraction * p.numel()))
                p.view(-1)[p.abs().flatten().argsort()[:k]] = 0.0
    return model


def save_checkpoint(path: Path, model) -> Path:
    from trainables.checkpoints import save_reference_checkpoint

    save_reference_checkpoint(path, model, ARCH, "imagenet")
    return path


def write_good_zoo(ckpt_dir: Path, sparsities: Iterable[int] = (80,), method: str = "gmp",
                   seed: int = 0) -> dict[str, Path]:
    """``<ckpt_dir>/resnet_tiny/dense_0.pth`` and ``<method>_<s>.pth`` per sparsity."""
    out = {"dense_0": save_checkpoint(ckpt_dir / ARCH / "dense_0.pth", tiny_model(seed))}
    for s in sparsities:
        model = magnitude_prune(tiny_model(seed), s / 100)
        out[f"{method}_{s}"] = save_checkpoint(ckpt_dir / ARCH / f"{method}_{s}.pth", model)
    return out


class RunsCode:
    """An object whose unpickling runs code: it creates ``marker``. Used to prove that a
    checkpoint needing arbitrary unpickling is refused and never executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('executed')",))


# ---------------------------------------------------------------------------------------
# Study files

LINEAR = {"seeds": [21], "cpus": 0.5,
          "recipe": {"epochs": 2, "lr": 0.05, "batch_size": 64, "milestones": []}}
FULL = {"seeds": [21], "workers": 1, "cpus": 1, "use_gpu": "no",
        "recipe": {"epochs": 3, "lr": 0.01, "batch_size": 64, "milestones": []}}
DIGITS = {"classes": 10, "metric": "top1", "group": "general", "full_lr": 0.01}


def write_study(path: Path, *, ckpt_dir: Path, data_root: Path | None = None,
                methods: dict[str, Any] | None = None, datasets: dict[str, Any] | None = None,
                modes: dict[str, Any] | None = None, name: str = "faults") -> Path:
    """A study YAML over checkpoint files (no upstream stage), speed trials off."""
    study = {
        "name": name,
        "description": "bad-input and fault tests",
        "arch": ARCH,
        "archs": [ARCH],
        "image_size": 32,
        "checkpoint_dir": str(ckpt_dir),
        "checkpoint_pattern": "{arch}/{method}_{sparsity}.pth",
        "methods": methods or {
            "dense": {"family": "dense", "sparsities": [0]},
            "gmp": {"family": "progressive", "sparsities": [80]},
        },
        "datasets": datasets or {"digits": DIGITS},
        "modes": modes or {"linear": LINEAR},
        "speed": {"enabled": False},
    }
    if data_root is not None:
        study["data_root"] = str(data_root)
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------
# Running the CLI


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.sweep", *args]


def run_cli(args: list[str], timeout: float = 120, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, env={**BASE_ENV, **(env or {})}, timeout=timeout,
                          capture_output=True, text=True)


class Sweep:
    """``python -m orchestrator.sweep ...`` in its own session, so that a SIGKILL of its
    process group takes Ray's processes with it (as a dead machine would)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._fh = open(log, "ab")
        self.proc = subprocess.Popen(
            sweep_cmd(*args), cwd=REPO, env={**BASE_ENV, **(env or {})},
            stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.sid = self.proc.pid
        self.members: set[int] = set()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, what: str, pred: Callable[[], Any], timeout: float,
                 every: float = 0.05) -> Any:
        """Poll ``pred`` until it is truthy; fail (with the log's tail) on timeout or exit."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.members |= set(session_pids(self.sid))
            got = pred()
            if got:
                return got
            if not self.alive():
                raise AssertionError(f"sweep exited ({self.proc.returncode}) before {what}:\n"
                                     + self.output()[-3000:])
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n"
                             + self.output()[-3000:])

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"sweep did not finish in {timeout}s:\n"
                                 + self.output()[-3000:]) from None

    def kill(self) -> None:
        """SIGKILL the driver's process group, then anything else of its session."""
        self.members |= set(session_pids(self.sid))
        try:
            os.killpg(self.sid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.reap()

    def reap(self, timeout: float = 20) -> None:
        """Kill what this sweep started and is still alive (Ray agents can outlive the driver);
        only pids seen in its session, never other users' Ray processes."""
        end = time.monotonic() + timeout
        # Ray names its session folder after the driver's pid: catch anything of that session
        # that left our process session, and nothing of other users' clusters.
        ours = re.compile(rf"session_[0-9_-]+_{self.proc.pid}(?![0-9])")
        while True:
            left = [p for p in (self.members | set(session_pids(self.sid))) if _alive(p)]
            left += [p for p in all_pids() if p not in left and ours.search(cmdline(p))]
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not left or time.monotonic() > end:
                break
            time.sleep(0.2)
        self._fh.close()


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, process group, session) of a pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    if rest[0] == "Z":
        return None
    return int(rest[1]), int(rest[2]), int(rest[3])


def _alive(pid: int) -> bool:
    return _stat(pid) is not None


def all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def session_pids(sid: int) -> list[int]:
    out = []
    for pid in all_pids():
        st = _stat(pid)
        if st and st[2] == sid:
            out.append(pid)
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------
# Sockets


def listening_sockets(pids: Iterable[int]) -> list[tuple[str, int, str, int]]:
    """(process name, pid, ip, port) of every TCP socket in LISTEN state held by ``pids``."""
    inodes: dict[int, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "0A":  # TCP_LISTEN
                continue
            ip_hex, port_hex = parts[1].split(":")
            raw = bytes.fromhex(ip_hex)
            # /proc stores each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            inodes[int(parts[9])] = (socket.inet_ntop(family, raw), int(port_hex, 16))
    out = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                out.append((name, pid, *inodes[int(link[8:-1])]))
    return out


def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1") or (
        ip.startswith("::ffff:127."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# What a sweep leaves behind


def ledger(out: Path) -> dict[str, dict[str, Any]]:
    entries = {}
    for p in sorted((out / "trials").glob("*.json")):
        e = json.loads(p.read_text())
        assert p.stem == e["trial_id"], p
        entries[e["trial_id"]] = e
    return entries


def results(out: Path):
    import pandas as pd

    return pd.read_parquet(out / "results.parquet")


def mlflow_runs(out: Path) -> list[Any]:
    """Every run of every experiment in the study's SQLite store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = []
    for exp in client.search_experiments():
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                break
    return runs


def trial_runs(out: Path) -> dict[str, list[Any]]:
    """trial id -> its MLflow runs (found by the ``trial_id`` tag, as the sweep does)."""
    by_id: dict[str, list[Any]] = {}
    for r in mlflow_runs(out):
        tid = r.data.tags.get("trial_id")
        if tid:
            by_id.setdefault(tid, []).append(r)
    return by_id


def aggregate_runs(out: Path) -> dict[str, list[Any]]:
    by_key: dict[str, list[Any]] = {}
    for r in mlflow_runs(out):
        key = r.data.tags.get("aggregate_key")
        if key:
            by_key.setdefault(key, []).append(r)
    return by_key


def one_paragraph(text: str) -> bool:
    """A message a user can read: no traceback, no blank-line-separated second paragraph."""
    body = text.strip()
    return bool(body) and "Traceback" not in body and "\n\n" not in body


def write_safetensors(path: Path, state_dict) -> Path:
    """A ``.safetensors`` file written by hand (the format: 8 bytes of header length, a JSON
    header of dtype/shape/byte range per tensor, the raw bytes), so the tests need no
    ``safetensors`` package."""
    import struct

    import torch

    names = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for key, t in state_dict.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[key] = {"dtype": names[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return path
