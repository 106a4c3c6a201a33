"""cluster.yaml passes Ray's own config validation, and a sweep on a two-node cluster routes
speed trials to the ``speed_node`` worker and tracks every trial once in one MLflow server
started by the config's own head command.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import os

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
GPU_FAMILIES = ("p3", "p4d", "p4de", "p5", "p5e", "g4dn", "g5", "g6", "g6e", "gr6")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw: dict) -> dict:
    """The config as `ray up` sees it before contacting the cloud: defaults merged."""
    from ray.autoscaler._private.util import prepare_config

    return prepare_config(copy.deepcopy(raw))


def _commands(config: dict) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands",
            "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")
    return [c for k in keys for c in config.get(k, [])]


def _mlflow_command(config: dict) -> tuple[int, str]:
    found = [(i, c) for i, c in enumerate(config["head_start_ray_commands"])
             if "mlflow server" in c]
    assert len(found) == 1, "head_start_ray_commands must start exactly one MLflow server"
    return found[0]


def _mlflow_args(command: str) -> list[str]:
    """The arguments of ``mlflow server`` inside the command's ``bash -c '...'``."""
    outer = shlex.split(command)
    inner = next(t for t in outer if "mlflow server" in t)
    words = shlex.split(inner)
    start = words.index("mlflow")
    assert words[start + 1] == "server"
    return words[start + 2:]


def _option(args: list[str], name: str) -> str:
    assert args.count(name) == 1, f"mlflow server needs exactly one {name}"
    return args[args.index(name) + 1]


# --------------------------------------------------------------------------------- config


def test_ray_validates_the_cluster_config(prepared: dict):
    from ray.autoscaler._private.util import validate_config

    validate_config(prepared)  # Ray's JSON schema plus its cross-field checks
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_node_types_route_each_kind_of_trial(prepared: dict):
    types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    speed = [n for n, t in types.items() if t["resources"].get("speed_node")]
    assert len(speed) == 1 and speed[0] != head
    s = types[speed[0]]
    assert s["resources"]["speed_node"] == 1
    # The speed pool only uses speed nodes alive when the speed stage starts.
    assert s["min_workers"] >= 1
    cpu_opts = s["node_config"].get("CpuOptions")
    if cpu_opts:  # the CPU count the actor hands DeepSparse = the cores the node has
        assert s["resources"]["CPU"] == cpu_opts["CoreCount"] * cpu_opts["ThreadsPerCore"]

    def is_gpu(t: dict) -> bool:
        family = t["node_config"]["InstanceType"].split(".")[0]
        return t["resources"].get("GPU", 0) >= 1 or family in GPU_FAMILIES

    gpu = [n for n, t in types.items() if n != head and is_gpu(t)]
    assert gpu, "no GPU worker type for full finetuning"
    for n in gpu:
        # The sweep sizes GPU use from the nodes alive when the full stage starts.
        assert types[n]["min_workers"] == types[n]["max_workers"] >= 1
    assert types[head]["resources"].get("CPU") == 0  # no trial on the driver's node


def test_mlflow_starts_after_ray_on_the_head_bound_to_a_private_address(raw: dict, tmp_path):
    index, command = _mlflow_command(raw)
    starts = [i for i, c in enumerate(raw["head_start_ray_commands"]) if "ray start --head" in c]
    assert starts and starts[0] < index
    assert "--dashboard-host=127.0.0.1" in raw["head_start_ray_commands"][starts[0]]
    args = _mlflow_args(command)
    host = _option(args, "--host")
    assert host == "$MLFLOW_HOST"
    assert "0.0.0.0" not in command and "public" not in command
    # The store is in the shared folder unless the one variable names a database.
    assert _option(args, "--backend-store-uri") == (
        "${MLFLOW_BACKEND_STORE_URI:-sqlite:///$SPARSE_TRANSFER_SHARED/mlflow/mlflow.db}")
    assert _option(args, "--artifacts-destination").startswith("$SPARSE_TRANSFER_SHARED/")

    # MLFLOW_HOST comes from the head's setup; run that command against a canned route.
    setup = [c for c in raw["head_setup_commands"] if "MLFLOW_HOST" in c]
    assert len(setup) == 1
    route = "1.0.0.0 via 10.0.0.1 dev ens5 src 10.0.3.17 uid 1000"
    script = f"ip() {{ echo {shlex.quote(route)}; }}\n{setup[0]}"
    subprocess.run(["bash", "-c", script], env={**os.environ, "HOME": str(tmp_path)},
                   check=True, timeout=30)
    env_file = (tmp_path / ".sparse_transfer_env").read_text()
    assert "export MLFLOW_HOST=10.0.3.17\n" in env_file
    assert "export MLFLOW_TRACKING_URI=http://10.0.3.17:5000\n" in env_file
    assert ipaddress.ip_address("10.0.3.17").is_private


def test_every_node_gets_the_shared_folder_the_token_and_the_project(raw: dict):
    env_cmd = raw["setup_commands"][0]
    for var in ("SPARSE_TRANSFER_SHARED", "SPARSE_TRANSFER_NFS", "SPARSE_TRANSFER_REPO",
                "MLFLOW_BACKEND_STORE_URI", "RAY_AUTH_MODE=token"):
        assert f"export {var}" in env_cmd
    assert sum("export SPARSE_TRANSFER_SHARED=" in c for c in _commands(raw)) == 1
    setup = "\n".join(raw["setup_commands"])
    assert "git clone" in setup and "make setup" in setup
    assert "mount -t nfs4" in setup
    assert raw["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}
    assert any("$RAY_HEAD_IP:6379" in c for c in raw["worker_start_ray_commands"])


def test_every_command_is_valid_bash_and_no_credentials_are_in_the_file(raw: dict):
    for command in _commands(raw):
        done = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, f"{command!r}: {done.stderr}"
    text = CLUSTER_YAML.read_text()
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "a URI with a password"
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key|RAY_AUTH_TOKEN=", text)


def test_the_runner_warns_when_a_cluster_sweep_writes_to_a_node_local_folder(
        monkeypatch, tmp_path):
    import orchestrator.runner as runner
    from orchestrator.runner import cluster_warnings
    from orchestrator.sweep import SweepOptions
    from search_spaces.loader import load_study

    # "auto" is this user's local Ray (orchestrator.local_ray): one, whether or not the
    # machine runs one while the tests do
    monkeypatch.setattr(runner, "resolve_auto", lambda source: "10.0.0.5:6379")
    study = load_study("tiny")
    shared = tmp_path / "shared"
    monkeypatch.setenv("SPARSE_TRANSFER_SHARED", str(shared))
    on_shared = SweepOptions(out_dir=shared / "runs" / "tiny", address="auto")
    assert cluster_warnings(study, on_shared) == []
    assert cluster_warnings(study, SweepOptions(out_dir=tmp_path / "runs")) == []  # laptop
    relative = dataclasses.replace(study, data_root="data")
    found = cluster_warnings(relative, SweepOptions(out_dir=tmp_path / "runs", address="auto"))
    assert len(found) == 2
    assert "not under $SPARSE_TRANSFER_SHARED" in found[0] and "data_root" in found[1]
    monkeypatch.delenv("SPARSE_TRANSFER_SHARED")
    (found,) = cluster_warnings(study, SweepOptions(out_dir=tmp_path / "runs", address="auto"))
    assert "local to each node" in found


# ----------------------------------------------------------------------------- the cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head_mlflow(tmp_path_factory, raw: dict):
    """The config's own MLflow command, run as the head runs it (host 127.0.0.1 here)."""
    base = tmp_path_factory.mktemp("head")
    home, shared = base / "home", base / "shared"
    home.mkdir()
    port = _free_port()
    _, command = _mlflow_command(raw)
    assert command.count("--port 5000") == 1
    command = command.replace("--port 5000", f"--port {port}")
    env = {**os.environ, "HOME": str(home), "MLFLOW_HOST": "127.0.0.1",
           "SPARSE_TRANSFER_SHARED": str(shared),
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_BACKEND_STORE_URI", None)
    subprocess.run(["bash", "-c", command], env=env, check=True, timeout=60)
    pid_file = home / ".mlflow-server.pid"
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = (home / "mlflow-server.log").read_text()[-2000:]
                pytest.fail(f"MLflow did not come up on {uri}:\n{log}")
            time.sleep(1)
        yield uri, shared
    finally:
        if pid_file.exists():  # the group the command started, by the pid it recorded
            _stop_group(int(pid_file.read_text()))


def _stop_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.5)
            os.killpg(pgid, 0)
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def two_nodes():
    """Head with 2 CPUs, worker with 1 CPU and the speed resource; torn down afterwards."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 2, "include_dashboard": False})
    try:
        worker = cluster.add_node(num_cpus=1, resources={"speed_node": 1})
        cluster.wait_for_nodes()
        yield cluster, worker
    finally:
        ray.shutdown()  # run_sweep connected this process; later tests start their own Ray
        cluster.shutdown()


def _write_zoo(checkpoint_dir: Path, arch: str, sparsity: int) -> None:
    """A dense and a magnitude-pruned backbone in the paper's ``<arch>/<method>_<sp>.pth``
    layout, so the test does not depend on the upstream stages that make the tiny zoo."""
    import torch

    from trainables.checkpoints import prunable_weight_names
    from trainables.models import build_model

    torch.manual_seed(0)
    state = build_model(arch, num_classes=64).state_dict()
    folder = checkpoint_dir / arch
    folder.mkdir(parents=True)
    torch.save(state, folder / "dense_0.pth")
    names = prunable_weight_names(state)
    magnitudes = torch.cat([state[n].abs().flatten() for n in names])
    threshold = magnitudes.kthvalue(int(magnitudes.numel() * sparsity / 100)).values
    pruned = {k: (v * (v.abs() > threshold) if k in names else v) for k, v in state.items()}
    torch.save(pruned, folder / f"gmp_{sparsity}.pth")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sweep_on_two_nodes_routes_speed_trials_and_tracks_each_trial_once(
        head_mlflow, two_nodes, capsys):
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from orchestrator.grid import expand
    from orchestrator.runner import run_sweep
    from orchestrator.smoke import smoke_study
    from orchestrator.sweep import SweepOptions
    from common import columns as C
    from search_spaces.loader import load_study, narrow

    uri, shared = head_mlflow
    cluster, worker = two_nodes
    # The smoke study's transfer and speed stages on two given backbones (dense, GMP 90 %),
    # read from the shared folder as on the cluster (--checkpoint-dir).
    tiny = narrow(smoke_study(load_study("tiny")), methods="gmp", modes="linear", seeds=1,
                  datasets="digits", archs="resnet_tiny")
    checkpoints = shared / "checkpoints"
    _write_zoo(checkpoints, tiny.arch, tiny.method("gmp").sparsities[0])
    study = dataclasses.replace(tiny, upstream=None, checkpoint_dir=str(checkpoints))
    out = shared / "runs" / "tiny"
    options = SweepOptions(out_dir=out, address=cluster.address, tracking_uri=uri,
                           report=False)
    trial_ids = sorted(t.trial_id for t in expand(study, out).all_trials())
    assert len(trial_ids) == 6  # dense and GMP 90 %: a checkpoint, a linear and a speed trial

    assert run_sweep(study, options) == 0
    err = capsys.readouterr().err
    assert "is under" in err and "shared mount" in err  # --out in /tmp with --address

    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df[C.TRIAL_ID]) == trial_ids
    assert set(df[C.STATUS]) == {"finished"}, df[[C.TRIAL_ID, C.ERROR]].to_string()
    speed = df[df[C.MODE] == "speed"]
    assert len(speed) == 2
    assert set(speed[C.NODE_ID]) == {worker.node_id}
    assert worker.node_id != cluster.head_node.node_id

    def tracked() -> list[str]:
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(f"sparse-transfer/{study.name}")
        runs = client.search_runs([exp.experiment_id], max_results=1000)
        return sorted(r.data.tags["trial_id"] for r in runs if "trial_id" in r.data.tags)

    assert tracked() == trial_ids  # one run per trial, no duplicates
    assert (shared / "mlflow" / "mlflow.db").is_file()  # the store is in the shared folder

    # A second driver (as after a head restart) finds everything done and adds no runs.
    ledger = {p.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*.json")}
    assert run_sweep(study, options) == 0
    assert "already done" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*.json")} == ledger
    assert tracked() == trial_ids
