"""cluster.yaml's node types under Ray's own autoscaler, on one machine.

Ray's fake multi-node provider (``FakeMultiNodeProvider``, ``RAY_FAKE_CLUSTER=1``, autoscaler
v2) launches each node type of ``cluster.yaml`` as a local raylet: the types, their
``min_workers`` / ``max_workers`` and their resources (``speed_node`` included) come from the
file; CPU and GPU of a type that leaves them to the AWS provider are those of its instance
type; every node is CPU-only (there is no GPU here) and advertises one CPU per 8 vCPUs, so
that the 2-core machine holds the cluster. The head advertises 0 CPUs, as in the file.

A small study runs with ``--address``: the autoscaler adds a ``cpu.worker`` while linear
trials wait and removes it when idle, speed trials run on the speed node, nothing runs on the
head; one worker node is killed in the middle of the full-finetuning stage and the sweep still
ends with every trial once.

Ray's ``AutoscalingCluster`` helper cannot be used as is: it runs ``ray stop --force`` (which
would end every Ray on the machine) and reads a defaults file Ray 2.60's wheel does not ship;
the head is started here as it does, with the provider loaded as an ``external`` one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.orchestrator.ray_head import marked, start_head

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
FAKE_HEAD_NODE_ID = "f" * 51 + "00000"
FAKE_HEAD_TYPE = "ray.head.default"
# What Ray's AWS provider fills in for a type whose resources are left to it (`ray up`).
AWS_TYPES = {"g5.2xlarge": {"CPU": 8, "GPU": 1}, "m7i.4xlarge": {"CPU": 16},
             "c7i.4xlarge": {"CPU": 16}, "m7i.2xlarge": {"CPU": 8}}
VCPUS_PER_CPU = 8
IDLE_TIMEOUT_MINUTES = 0.25  # the file's 10 minutes, shortened for the test


def node_types(raw: dict) -> tuple[dict, dict[str, dict]]:
    """(head resources, worker types) for the fake provider, from cluster.yaml as read."""
    head_name = raw["head_node_type"]
    head, workers = {}, {}
    for name, t in raw["available_node_types"].items():
        res = {**AWS_TYPES[t["node_config"]["InstanceType"]], **(t.get("resources") or {})}
        res.pop("GPU", None)  # CPU-only nodes: there is no GPU here
        if name == head_name:
            head = res
            continue
        res["CPU"] = max(1, int(res["CPU"]) // VCPUS_PER_CPU)
        workers[name] = {"resources": res, "node_config": {},
                         "min_workers": t.get("min_workers", 0),
                         "max_workers": t["max_workers"]}
    return head, workers


def fake_config(raw: dict, head: dict, workers: dict, gcs_address: str) -> dict:
    types = {**workers, FAKE_HEAD_TYPE: {"resources": head, "node_config": {},
                                         "max_workers": 0}}
    return {
        "cluster_name": "sparse-transfer-fake", "max_workers": raw["max_workers"],
        "upscaling_speed": raw["upscaling_speed"],
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "provider": {
            "type": "external",
            "module": "ray.autoscaler._private.fake_multi_node.node_provider."
                      "FakeMultiNodeProvider",
            "gcs_address": gcs_address, "launch_multiple": True,
            "head_node_id": FAKE_HEAD_NODE_ID,
        },
        "auth": {}, "head_node_type": FAKE_HEAD_TYPE, "available_node_types": types,
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def test_the_fake_cluster_is_cluster_yaml():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    head, workers = node_types(raw)
    assert head == {"CPU": 0}
    assert workers["speed.worker"]["resources"] == {"CPU": 1, "speed_node": 1}
    assert workers["gpu.worker"]["resources"] == {"CPU": 1}
    assert workers["cpu.worker"]["resources"] == {"CPU": 2}
    assert (workers["gpu.worker"]["min_workers"], workers["gpu.worker"]["max_workers"]) == (2, 2)
    assert (workers["cpu.worker"]["min_workers"], workers["cpu.worker"]["max_workers"]) == (0, 4)


def _kind(node: dict) -> str:
    """A live node's type, by its resources (dead nodes report none)."""
    res = node["resources"]
    if node["id"] == FAKE_HEAD_NODE_ID:
        return "head"
    if res.get("speed_node"):
        return "speed.worker"
    return "cpu.worker" if res.get("CPU", 0) >= 2 else "gpu.worker"


def _launched(head) -> dict[str, str]:
    """Node id -> node type of every node the autoscaler launched, from its own log (the fake
    provider's instance id is the node's Ray id)."""
    found = {FAKE_HEAD_NODE_ID: "head"}
    for log in head.temp_dir.glob("session_*/logs/monitor.log"):
        for kind, node_id in re.findall(r"type=([\w.]+), cloud_instance_id=(f{51}\d{5})",
                                        log.read_text(errors="replace")):
            if kind != FAKE_HEAD_TYPE:
                found[node_id] = kind
    return found


def _raylet_pid(head, node_id: str) -> int | None:
    """The raylet of one of this cluster's nodes (its node id and this head's GCS address)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (args and args[0].endswith(b"raylet/raylet")
                and f"--node_id={node_id}".encode() in args
                and f"--gcs-address={head.address}".encode() in args):
            return int(proc.name)
    return None


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_cluster_yaml_node_types_under_the_autoscaler(tmp_path):
    import pandas as pd

    from orchestrator.grid import expand
    from orchestrator.smoke import smoke_study
    from search_spaces.loader import load_study, narrow

    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    head_res, workers = node_types(raw)
    # Linear trials ask for a whole CPU here, so 8 of them wait on the 3 fixed CPUs.
    tiny = yaml.safe_load((ROOT / "search_spaces" / "tiny.yaml").read_text())
    tiny["modes"]["linear"]["cpus"] = 1
    study_file = tmp_path / "tiny.yaml"
    study_file.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "orchestrator.sweep", "--study", str(study_file),
            "--smoke-test", "--methods", "gmp", "--no-report", "--out", str(out)]
    study = narrow(smoke_study(load_study(str(study_file))), methods="gmp")
    trial_ids = sorted(t.trial_id for t in expand(study, out).all_trials())

    head = start_head(
        num_cpus=head_res["CPU"],
        autoscaling_config=lambda gcs: fake_config(raw, head_res, workers, gcs),
        extra_env={"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
                   "RAY_enable_autoscaler_v2": "1", "RAY_CLOUD_INSTANCE_ID": FAKE_HEAD_NODE_ID,
                   "RAY_OVERRIDE_NODE_ID_FOR_TESTING": FAKE_HEAD_NODE_ID})
    try:
        deadline = time.monotonic() + 240
        while True:  # the fixed types (min_workers) come up first
            alive = [_kind(n) for n in head.nodes() if n["alive"]]
            if alive.count("gpu.worker") == 2 and alive.count("speed.worker") == 1:
                break
            assert time.monotonic() < deadline, alive
            time.sleep(3)
        assert "cpu.worker" not in alive  # min_workers 0: only on demand

        killed: list[str] = []
        problems: list[str] = []

        def kill_mid_full() -> None:
            try:
                _kill_mid_full()
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                problems.append(f"{type(e).__name__}: {e}")

        def _kill_mid_full() -> None:
            """Once the full-finetuning stage runs, kill the busiest worker node's raylet."""
            t0 = time.monotonic()
            while not (out / "ray" / "full").exists():
                if proc.poll() is not None or time.monotonic() - t0 > 900:
                    return
                time.sleep(1)
            code = ("import json, ray; ray.init(logging_level='ERROR'); "
                    "from ray._private.state import available_resources_per_node as a; "
                    "print('FREE', json.dumps({k: v.get('CPU', 0) for k, v in a().items()}))")
            for _ in range(20):  # a node with a full-finetuning trial on it, if one shows
                free = json.loads(marked(head.python(code), "FREE"))
                nodes = {n["id"]: n for n in head.nodes() if n["alive"]}
                busy = sorted((free.get(i, 0) - n["resources"].get("CPU", 0), i)
                              for i, n in nodes.items() if _kind(n) != "head")
                if busy[0][0] < 0 or proc.poll() is not None:
                    break
                time.sleep(2)
            node_id = busy[0][1]
            pid = _raylet_pid(head, node_id)
            if pid is None:
                problems.append(f"no raylet process found for node {node_id}")
                return
            os.kill(pid, signal.SIGKILL)
            killed.append(node_id)

        proc = subprocess.Popen(argv + ["--address", head.address], cwd=ROOT,
                                env={**head.env, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killer = threading.Thread(target=kill_mid_full, daemon=True)
        killer.start()
        log, _ = proc.communicate(timeout=1100)
        killer.join(timeout=60)
        assert proc.returncode == 0, log[-5000:]
        assert killed, f"no worker node was killed during the full stage: {problems}"

        kinds = _launched(head)
        assert "cpu.worker" in kinds.values(), "the autoscaler never added a CPU worker"
        assert kinds[killed[0]] != "head"
        deadline = time.monotonic() + 180
        while any(n["alive"] and kinds.get(n["id"]) == "cpu.worker" for n in head.nodes()):
            assert time.monotonic() < deadline, "idle CPU workers were not removed"
            time.sleep(5)
    finally:
        head.stop()

    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df["trial_id"]) == trial_ids  # every trial once: nothing lost or doubled
    assert set(df["status"]) == {"finished"}, df[["trial_id", "status", "error"]].to_string()
    where = {stage: sorted({kinds.get(n, n) for n in rows["node_id"]})
             for stage, rows in df.groupby("stage")}
    assert all("head" not in v for v in where.values()), where
    assert where["speed"] == ["speed.worker"], where
    assert "cpu.worker" in where["linear"], where  # launched while linear trials waited
    for stage in ("pretrain", "prune", "full"):
        assert set(where[stage]) <= {"gpu.worker", "speed.worker", "cpu.worker"}, where
