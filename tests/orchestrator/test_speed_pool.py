"""The speed pool places trials on the node that advertises the speed resource."""

from __future__ import annotations

import os

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from orchestrator import speed_pool  # noqa: E402
from common import columns as C
from common.errors import MissingInput  # noqa: E402
from trainables.speed.trial import SpeedSpec  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    """Head with 1 CPU, worker with 1 CPU and the speed resource; torn down afterwards."""
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        worker = cluster.add_node(num_cpus=1, resources={"speed_node": 1})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()


def _broken_model():
    raise MissingInput("no such checkpoint")


def _buggy_model():
    raise TypeError("a bug")


def _crash():
    os._exit(1)  # the actor process dies, as on a segfault in a runtime


@pytest.mark.slow
def test_trials_land_on_the_speed_node_in_spec_order(two_nodes):
    _, worker = two_nodes
    spec = SpeedSpec(
        arch="resnet_tiny", method="magnitude", sparsity=90, batch=4, warmup=1, reps=2,
        online_images=8, online_batches=1, online_baselines=False, trial_id="ok",
    )
    broken = SpeedSpec(
        arch="resnet_tiny", method="gmp", sparsity=95, load_model=_broken_model, trial_id="bad"
    )
    crash = SpeedSpec(
        arch="resnet_tiny", method="gmp", sparsity=98, load_model=_crash, trial_id="crash"
    )
    buggy = SpeedSpec(
        arch="resnet_tiny", method="gmp", sparsity=80, load_model=_buggy_model, trial_id="bug"
    )
    seen = []
    rows = speed_pool.run_speed_trials(
        [spec, crash, broken, buggy], on_result=lambda s, r: seen.append(s.trial_id)
    )
    assert [r[C.TRIAL_ID] for r in rows] == ["ok", "crash", "bad", "bug"]
    assert sorted(seen) == ["bad", "bug", "crash", "ok"]
    ok, crashed, bad, bug = rows
    # The dead actor is replaced on the same node and the pool goes on; a crash is not the
    # input's fault: an error that a rerun tries again.
    assert crashed[C.STATUS] == "error" and "actor died" in crashed[C.ERROR]
    # Bad input is a failed result; a bug an error with its traceback.
    assert bug[C.STATUS] == "error" and "Traceback" in bug[C.ERROR] and "a bug" in bug[C.ERROR]
    assert ok[C.STATUS] == "finished", ok.get(C.ERROR)
    assert ok[C.NODE_ID] == worker.node_id and bad[C.NODE_ID] == worker.node_id
    assert ok[C.NUM_CORES] == 1  # the CPUs the actor holds, not the machine's
    assert bad[C.STATUS] == "failed" and "no such checkpoint" in bad[C.ERROR]


@pytest.mark.slow
def test_without_speed_nodes_the_driver_node_is_used(two_nodes):
    nodes = speed_pool.speed_nodes("no_such_resource")
    assert len(nodes) == 1 and not nodes[0].use_resource
    assert nodes[0].node_id == ray.get_runtime_context().get_node_id() and nodes[0].cpus == 1
