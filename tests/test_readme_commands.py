"""Every command of the README's usage block and of reports/README.md runs as written, and
every command of its cluster section is known here, with the test that stands in for it.

The commands are read from the files' fenced code blocks, so a changed command is run as it
now reads and a new one must be classified in `HOW` (or the test fails). Each runs in a
subprocess, in a folder holding what the command names (``runs/tiny/results.parquet``,
``ckpt.pth``, ``my_study.yaml``, an MLflow store): the files a reader would have. Commands that
need data this machine lacks run with ``--dry-run`` appended (their options are still parsed
and checked); the smoke sweep runs in the slow tests (`tests/conftest.py`); servers are not
started.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN, DRY_RUN, SKIP = "run", "run with --dry-run", "skip"

# command as written (continuations joined, comment dropped) -> how it is checked, and why
HOW: dict[str, tuple[str, str]] = {
    "python -m orchestrator.sweep --help": (RUN, ""),
    "python -m orchestrator.sweep --smoke-test": (
        SKIP, "minutes: the slow tests run it (tests/conftest.py smoke_study_dir)"),
    "python -m orchestrator.sweep --study paper --dry-run": (RUN, ""),
    "python -m orchestrator.sweep --study paper --data-root /data --checkpoint-dir /ckpt "
    "--methods gmp,acdc --sparsities 90,95 --datasets pets,dtd --modes linear --seeds 2": (
        DRY_RUN, "needs the paper's datasets and checkpoints"),
    "python -m orchestrator.sweep --study my_study.yaml": (DRY_RUN, "a whole study"),
    "python -m orchestrator.sweep --study paper --rehearsal": (
        DRY_RUN, "2,222 trials; tests/orchestrator/test_rehearsal.py runs a narrowed one"),
    "python -m trainables.checkpoints ckpt.pth --expect-sparsity 90": (RUN, ""),
    "python -m trainables.checkpoints --fetch resnet50 --checkpoint-dir checkpoints": (
        SKIP, "fetches from the internet: tests/trainables/checkpoints/test_fetch.py serves an "
        "imitation of the share on 127.0.0.1 instead"),
    "python -m orchestrator.sweep --study paper --address auto "
    "--storage s3://my-bucket/sparse-transfer": (
        DRY_RUN, "needs a cluster and a bucket; tests/orchestrator/test_storage.py runs the "
        "sweep with --storage on an S3 server on 127.0.0.1"),
    "python -m trainables.datasets --layouts": (RUN, ""),
    "python -m trainables.datasets --download pets,dtd --data-root data": (
        SKIP, "fetches from the internet: tests/trainables/test_download.py serves an archive "
        "in DTD's layout from a loopback server instead"),
    "python -m reports runs/tiny": (RUN, ""),
    "python -m reports --paper --out runs/paper-published/report": (RUN, ""),
    "python -m reports --mlflow-uri sqlite:///runs/tiny/mlflow.db "
    "--out runs/tiny/report-mlflow": (RUN, ""),
    ".venv/bin/mlflow ui --backend-store-uri sqlite:///$PWD/runs/tiny/mlflow.db "
    "--host 127.0.0.1 --port 5000": (SKIP, "starts a server"),
    "python -m reports runs/paper": (RUN, ""),
    "python -m reports --results results.csv --out report/": (RUN, ""),
    "python -m reports --mlflow-uri sqlite:///runs/paper/mlflow.db "
    "--experiment sparse-transfer/paper --out report/": (RUN, ""),
}


CLOUD = "needs a cloud account and the cluster"
# The cluster section's commands: none can run here (no cloud); each with what tests it.
CLUSTER: dict[str, str] = {
    ".venv/bin/ray get-auth-token --generate": "writes the user's own token",
    ".venv/bin/python -m trainables.checkpoints --fetch resnet50 --checkpoint-dir "
    "inputs/checkpoints": "fetches from the internet: tests/trainables/checkpoints/test_fetch.py",
    ".venv/bin/python -m trainables.datasets --download pets,dtd --data-root inputs/data":
        "fetches from the internet: tests/trainables/test_download.py",
    "aws s3 sync inputs s3://YOUR-BUCKET/sparse-transfer/inputs": CLOUD,
    ".venv/bin/ray up cluster.yaml": CLOUD + "; tests/orchestrator/test_cluster.py validates "
    "cluster.yaml with Ray's own config check",
    ".venv/bin/ray exec cluster.yaml 'ray status'": CLOUD,
    ".venv/bin/ray rsync-up cluster.yaml checkpoints/ /mnt/shared/checkpoints/": CLOUD,
    ".venv/bin/ray exec cluster.yaml 'cd ~/sparse-transfer && python -m trainables.datasets "
    "--check $SPARSE_TRANSFER_SHARED/data'": CLOUD,
    ".venv/bin/ray exec cluster.yaml --tmux 'cd ~/sparse-transfer && python -m "
    "orchestrator.sweep --study paper --address auto --storage $SPARSE_TRANSFER_STORAGE "
    "--out ~/runs/paper --data-root $SPARSE_TRANSFER_SHARED/data --checkpoint-dir "
    "$SPARSE_TRANSFER_SHARED/checkpoints --tracking-uri http://$MLFLOW_HOST:5000'":
        CLOUD + "; tests/orchestrator/test_storage.py runs the sweep with --storage on an S3 "
        "server here, tests/orchestrator/test_autoscaler.py with --address",
    ".venv/bin/ray attach cluster.yaml --tmux": CLOUD,
    ".venv/bin/ray dashboard cluster.yaml &": CLOUD,
    "export RAY_ADDRESS=http://127.0.0.1:8265 RAY_AUTH_MODE=token": "sets the shell's variables",
    ".venv/bin/ray job submit --working-dir . -- python -m orchestrator.sweep --study paper "
    "--out /mnt/shared/runs/paper --data-root /mnt/shared/data --checkpoint-dir "
    "/mnt/shared/checkpoints": "tests/orchestrator/test_ray_jobs.py submits the smoke study",
    ".venv/bin/ray job logs --follow <submission id>": "tests/orchestrator/test_ray_jobs.py",
    ".venv/bin/ray get-head-ip cluster.yaml": CLOUD,
    ".venv/bin/ray exec cluster.yaml 'echo $MLFLOW_HOST'": CLOUD,
    "ssh -i ~/.ssh/ray-autoscaler_us-west-2.pem -N -L 5000:PRIVATE:5000 ubuntu@HEAD": CLOUD,
    "export RAY_AUTH_MODE=token": "sets the shell's variable",
    "ray get-auth-token --generate": "writes the user's own token",
    "ray start --head --port=6379 --dashboard-host=127.0.0.1 --num-cpus=0":
        "your own machines; tests/orchestrator/ray_head.py starts such a head for the tests",
    "ray start --address=<head>:6379": "your own machines",
    "ray start --address=<head>:6379 --resources='{\"speed_node\": 1}'": "your own machines",
    "PYTHONPATH=. .venv/bin/python benchmarks/gpu_check.py": "needs a GPU node (without CUDA "
    "it says so and exits 0)",
}


def _blocks(text: str, languages: tuple[str, ...] = ("bash", "")) -> list[str]:
    """The fenced code blocks of ``text`` in one of ``languages`` (shell ones by default)."""
    blocks: list[str] = []
    lines: list[str] | None = None
    language = ""
    for line in text.splitlines():
        if line.startswith("```") and lines is None:
            language, lines = line[3:].strip(), []
        elif line.startswith("```") and lines is not None:
            if language in languages:
                blocks.append("\n".join(lines) + "\n")
            lines = None
        elif lines is not None:
            lines.append(line)
    return blocks


def _commands(block: str) -> list[str]:
    """Shell commands of a code block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", "", block)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            commands.append(" ".join(line.split()))
    return commands


def readme_commands() -> list[str]:
    """The usage section of README.md (up to "## Resume") and reports/README.md's commands."""
    readme = (REPO / "README.md").read_text()
    usage = readme[readme.index("## What the default study does"):readme.index("## Resume")]
    reports = (REPO / "reports" / "README.md").read_text()
    found = []
    for block in _blocks(usage) + _blocks(reports):
        found += _commands(block)
    return found


def cluster_commands() -> list[str]:
    """The commands of the README's "Run on a cluster" section."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Run on a cluster"):
                     readme.index("## What happens when things go wrong")]
    return [c for block in _blocks(section) for c in _commands(block)]


def test_every_cluster_command_is_known_with_what_tests_it():
    commands = cluster_commands()
    assert len(commands) >= 20
    unknown = [c for c in commands if c not in CLUSTER]
    assert not unknown, f"cluster commands this test does not know: {unknown}"
    stale = [c for c in CLUSTER if c not in commands]
    assert not stale, f"commands no longer in the cluster section: {stale}"


def test_every_readme_command_is_classified():
    commands = readme_commands()
    assert len(commands) >= 10
    unknown = [c for c in commands if c not in HOW]
    assert not unknown, f"README commands this test does not know how to run: {unknown}"
    stale = [c for c in HOW if c not in commands]
    assert not stale, f"commands no longer in the READMEs: {stale}"


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory) -> Path:
    """What a reader running the README's commands has: study folders, a results table, a
    checkpoint at 90 %, a study file, and the paper study's MLflow store."""
    from mlflow.tracking import MlflowClient

    from tests.orchestrator.test_report_sources import record_hand_study
    from tests.reports.sample_results import hand_table
    from tests.trainables.checkpoints.samples import ARCH, pruned_tiny
    from trainables.checkpoints import save_reference_checkpoint

    home = tmp_path_factory.mktemp("reader")
    hand_table().assign(arch="resnet_tiny").to_csv(home / "results.csv", index=False)
    # results.parquet and mlflow.db as a sweep leaves them; the paper's is a renamed copy.
    record_hand_study(home / "runs" / "tiny", "sparse-transfer/tiny")
    shutil.copytree(home / "runs" / "tiny", home / "runs" / "paper")
    client = MlflowClient(f"sqlite:///{home / 'runs' / 'paper' / 'mlflow.db'}")
    tiny = client.get_experiment_by_name("sparse-transfer/tiny")
    client.rename_experiment(tiny.experiment_id, "sparse-transfer/paper")
    model, _, _ = pruned_tiny(fraction=0.9)
    save_reference_checkpoint(home / "ckpt.pth", model, ARCH, "imagenet")
    study = (REPO / "search_spaces" / "tiny.yaml").read_text()
    (home / "my_study.yaml").write_text(study.replace("name: tiny", "name: my_study", 1))
    return home


@pytest.mark.parametrize("command", [c for c, (how, _) in HOW.items() if how != SKIP],
                         ids=lambda c: re.sub(r"[^\w.-]+", "_", c)[:70])
def test_readme_command_runs(command, reader_folder):
    how, _ = HOW[command]
    argv = shlex.split(command)
    assert argv[0] == "python"
    argv = [sys.executable, *argv[1:]] + (["--dry-run"] if how == DRY_RUN else [])
    env = {**os.environ, "PYTHONPATH": str(REPO), "NM_DISABLE_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(argv, cwd=reader_folder, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    if argv[2] == "reports" and "--help" not in argv:
        assert "wrote " in proc.stdout
