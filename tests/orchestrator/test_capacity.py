"""Requests a cluster can never meet stop the sweep before the stage (exit 2, a message naming
the study keys, the largest node and what fits), and the driver joins ``$RAY_ADDRESS`` like
``--address``. Pure functions on fake nodes: no Ray is started."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import pytest

from common.errors import BadInput
from orchestrator import capacity
from orchestrator.capacity import Node, Request, Unschedulable, check, problem
from orchestrator.options import SweepOptions
from orchestrator.runner import ray_address, resume_command
from orchestrator.stages import named
from search_spaces.loader import load_study


def nodes(*specs: dict[str, float]) -> list[Node]:
    return [Node(f"node{i:04d}abcdef", dict(s)) for i, s in enumerate(specs)]


def check_capacity(study, stages: list[str], cluster: list[Node]) -> None:
    """The capacity check of the named stages on ``cluster``."""
    capacity.check_capacity(study, [named(s) for s in stages], cluster)


def with_mode(study, name: str, **changes):
    modes = tuple(dataclasses.replace(m, **changes) if m.name == name else m
                  for m in study.modes)
    return dataclasses.replace(study, modes=modes)


@pytest.fixture(scope="module")
def tiny():
    return load_study("tiny")


# ------------------------------------------------------------------------- the rules


def test_a_request_fits_when_some_node_holds_it_not_when_only_the_sum_would():
    two_small = nodes({"CPU": 1}, {"CPU": 1})
    assert problem(Request("t", {"CPU": 1}), two_small) is None
    assert "no node has {CPU: 2}" in problem(Request("t", {"CPU": 2}), two_small)
    assert "no node has {CPU: 1, GPU: 1}" in problem(Request("t", {"CPU": 1, "GPU": 1}),
                                                    two_small)
    assert problem(Request("t", {"CPU": 1}), []) == "the cluster has no live node"


def test_a_worker_group_may_spread_over_nodes_but_needs_its_total_at_once():
    ddp = Request("full", {"CPU": 0.2}, workers=2, per_worker={"CPU": 1, "GPU": 0})
    # The issue's case: 2 workers x 1 CPU plus the trial's 0.2 on a 2-CPU machine.
    assert "need 2.2 CPU at once, the cluster has 2" in problem(ddp, nodes({"CPU": 2}))
    assert problem(dataclasses.replace(ddp, per_worker={"CPU": 0.9}), nodes({"CPU": 2})) is None
    # Two 2-CPU nodes: one worker on each, the trial beside one of them.
    assert problem(ddp, nodes({"CPU": 2}, {"CPU": 2})) is None
    # Three 1-CPU nodes: the workers fit two of them, the trial the third.
    assert problem(ddp, nodes({"CPU": 1}, {"CPU": 1}, {"CPU": 1})) is None
    # A worker bigger than every node can never start, whatever the total.
    big = dataclasses.replace(ddp, per_worker={"CPU": 3})
    assert "for one Ray Train worker" in problem(big, nodes({"CPU": 2}, {"CPU": 2}, {"CPU": 2}))
    # GPUs: one per worker, on nodes that have them.
    gpu = dataclasses.replace(ddp, per_worker={"CPU": 1, "GPU": 1})
    assert problem(gpu, nodes({"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1})) is None
    assert "fewer than 2 workers" in problem(gpu, nodes({"CPU": 8, "GPU": 1}, {"CPU": 8}))


def test_check_names_keys_largest_node_and_what_fits():
    req = Request("linear trials", {"CPU": 4}, keys=(("modes.linear.cpus", 4),))
    alternatives = [[("--set modes.linear.cpus=3", Request("x", {"CPU": 3})),
                     ("--set modes.linear.cpus=2", Request("x", {"CPU": 2}))]]
    with pytest.raises(Unschedulable) as e:
        check(req, nodes({"CPU": 2}, {"CPU": 3, "GPU": 1}), alternatives)
    text = str(e.value)
    assert isinstance(e.value, BadInput)
    assert "modes.linear.cpus = 4" in text
    assert "largest node: {CPU: 3, GPU: 1} (node node0001)" in text
    assert "2 live node(s), {CPU: 5, GPU: 1} in all" in text
    assert "What fits here (add one to the command): --set modes.linear.cpus=3." in text
    assert e.value.fits == ("--set modes.linear.cpus=3",)
    check(Request("ok", {"CPU": 1}), nodes({"CPU": 1}))  # no raise


# ------------------------------------------------------------- the study's requests


def overridden(study, tmp_path, option: str):
    """``study`` written as a file and loaded with one ``--set`` option as the shell splits
    it (``option`` is the text the message suggests)."""
    import shlex

    from orchestrator.study_record import write_study
    from search_spaces.loader import load_study

    flag, value = shlex.split(option)
    assert flag == "--set"
    return load_study(write_study(tmp_path, study), [value])


def test_the_issues_ddp_study_on_a_two_cpu_machine_is_refused_with_what_fits(tiny, tmp_path):
    study = with_mode(tiny, "full", workers=2, cpus=1.0, trainer="ray_train")
    laptop = nodes({"CPU": 2, "memory": 8e9})
    with pytest.raises(Unschedulable) as e:
        check_capacity(study, ["full"], laptop)
    text = str(e.value)
    assert text.startswith("full-finetuning trials (Ray Train, DDP) cannot start")
    assert "2 Ray Train worker(s) x {CPU: 1} at once, plus {CPU: 0.2} for the Tune trial" in text
    for key in ("modes.full.workers = 2", "modes.full.cpus = 1.0", "modes.full.gpus"):
        assert key in text
    assert "largest node: {CPU: 2, GPU: 0}" in text
    assert ("What fits here (add one to the command): --set modes.full.workers=1; or "
            "--set modes.full.cpus=0.9 (with workers 2)") in text
    assert e.value.fits == ("--set modes.full.workers=1", "--set modes.full.cpus=0.9")
    # What it suggests pastes, and fits: the same check passes with either option.
    for option in e.value.fits:
        check_capacity(overridden(study, tmp_path, option), ["full"], laptop)
    # The issue's working case: cpus 0.5 per worker.
    check_capacity(with_mode(study, "full", cpus=0.5), ["full"], laptop)


def test_every_stage_of_the_tiny_study_fits_a_two_cpu_machine(tiny):
    check_capacity(tiny, ["pretrain", "prune", "linear", "full", "speed"],
                   nodes({"CPU": 2}))


def test_a_head_without_cpus_refuses_every_cpu_stage(tiny):
    head_only = nodes({"CPU": 0, "memory": 1e9})
    for stage in ("pretrain", "linear", "full"):
        with pytest.raises(Unschedulable, match="no node has"):
            check_capacity(tiny, [stage], head_only)


def test_linear_gpus_the_cluster_lacks_are_named(tiny):
    study = with_mode(tiny, "linear", gpus=1.0)
    with pytest.raises(Unschedulable) as e:
        check_capacity(study, ["linear"], nodes({"CPU": 4}))
    assert "modes.linear.gpus = 1.0" in str(e.value)
    assert "--set modes.linear.gpus=0" in str(e.value)
    check_capacity(study, ["linear"], nodes({"CPU": 4}, {"CPU": 4, "GPU": 1}))


def test_ddp_on_gpus_asks_one_gpu_per_worker(tiny, tmp_path):
    study = with_mode(tiny, "full", workers=2, cpus=4.0, gpus=0.0, trainer="ray_train")
    one_gpu = nodes({"CPU": 16, "GPU": 1})
    (req, _), = named("full").requests(study, one_gpu)
    assert req.workers == 2 and req.per_worker == {"CPU": 4.0, "GPU": 1.0}
    with pytest.raises(Unschedulable) as e:
        check_capacity(study, ["full"], one_gpu)
    assert "modes.full.use_gpu" in str(e.value) and "--set modes.full.workers=1" in str(e.value)
    assert "--set modes.full.use_gpu=no (CPU workers)" in str(e.value)
    # use_gpu=no reads as YAML's false, which the study takes as "no"
    assert overridden(study, tmp_path, "--set modes.full.use_gpu=no").mode("full").use_gpu == "no"
    check_capacity(study, ["full"], nodes({"CPU": 16, "GPU": 2}))
    # max_concurrent divided by the study's gpus (0 here) before: one trial per 2 GPUs.
    res = {"CPU": 16.0, "GPU": 2.0}
    assert named("full").concurrency(study, res, None) == 1


def test_in_trial_full_finetuning_asks_the_study_cpus(tiny):
    study = with_mode(tiny, "full", cpus=3.0)
    (req, _), = named("full").requests(study, nodes({"CPU": 2}))
    assert req.workers == 0 and req.trial == {"CPU": 3.0}
    with pytest.raises(Unschedulable, match=r"--set modes.full.cpus=2\b"):
        check_capacity(study, ["full"], nodes({"CPU": 2}))


# ------------------------------------------------------------ an autoscaling cluster


def bootstrap_config() -> dict:
    """cluster.yaml as `ray up` hands it to the head's autoscaler: the AWS provider fills in
    each type's resources from its instance type (g5.2xlarge: 8 vCPU + 1 GPU, m7i.4xlarge:
    16 vCPU)."""
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster.yaml").read_text())
    types = config["available_node_types"]
    types["gpu.worker"]["resources"] = {"CPU": 8, "GPU": 1}
    types["cpu.worker"]["resources"] = {"CPU": 16}
    return config


def test_the_node_types_an_autoscaler_can_launch_count_and_are_named():
    from orchestrator.capacity import node_types

    found = node_types(bootstrap_config())
    names = [n.node_id for n in found]
    assert names.count("type:gpu.worker") == 2 and names.count("type:cpu.worker") == 4
    assert names.count("type:speed.worker") == 1 and "type:head" not in names
    # cluster.yaml itself leaves CPU/GPU to be detected at launch: only the speed type counts.
    import yaml

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster.yaml").read_text())
    assert [n.node_id for n in node_types(raw)] == ["type:speed.worker"]


def test_on_a_cluster_of_only_a_head_the_launchable_types_decide(tmp_path):
    import yaml

    from orchestrator.capacity import launchable_nodes

    paper = load_study("paper")
    head = nodes({"CPU": 0, "memory": 1e9})
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump(bootstrap_config()))
    launchable = launchable_nodes({"SPARSE_TRANSFER_AUTOSCALING_CONFIG": str(path)})
    # Nothing but the head is up, yet every stage can run once the autoscaler adds nodes.
    check_capacity(paper, ["linear", "full"], head + launchable)
    with pytest.raises(Unschedulable, match="no node has"):
        check_capacity(paper, ["linear"], head)  # without the autoscaler's types
    # A worker group that needs more GPUs than the types hold is still refused, by type.
    big = with_mode(paper, "full", workers=3, trainer="ray_train")
    with pytest.raises(Unschedulable) as e:
        check_capacity(big, ["full"], head + launchable)
    text = str(e.value)
    assert "modes.full.workers = 3" in text and "the autoscaler can launch" in text
    assert "(node type cpu.worker, launchable)" in text
    assert "--set modes.full.workers=2" in text
    missing = tmp_path / "none.yaml"
    assert launchable_nodes({"SPARSE_TRANSFER_AUTOSCALING_CONFIG": str(missing)}) == []


# ---------------------------------------------------------------- address, resume


def test_ray_address_comes_from_the_option_then_the_environment(tmp_path, monkeypatch):
    """``auto`` is resolved to this user's local Ray (``orchestrator.local_ray``, faked here:
    the machine may or may not run one while the tests do)."""
    import orchestrator.runner as runner

    monkeypatch.setattr(runner, "resolve_auto", lambda source: f"127.0.0.1:6379 ({source})")
    opts = SweepOptions(out_dir=tmp_path)
    assert ray_address(opts, {}) is None
    assert ray_address(opts, {"RAY_ADDRESS": ""}) is None
    assert ray_address(opts, {"RAY_ADDRESS": "10.0.0.5:6379"}) == "10.0.0.5:6379"
    assert ray_address(opts, {"RAY_ADDRESS": "auto"}) == "127.0.0.1:6379 (RAY_ADDRESS)"
    given = dataclasses.replace(opts, address="auto")
    assert ray_address(given, {"RAY_ADDRESS": "10.0.0.5:6379"}) == "127.0.0.1:6379 (--address)"
    local = dataclasses.replace(opts, address="local")
    assert ray_address(local, {"RAY_ADDRESS": "10.0.0.5:6379"}) is None
    with pytest.raises(BadInput, match="RAY_ADDRESS 'http://127.0.0.1:8265' is the Ray "
                       "dashboard's address"):
        ray_address(opts, {"RAY_ADDRESS": "http://127.0.0.1:8265"})


def test_the_cli_passes_no_address_so_the_environment_decides(monkeypatch, tmp_path):
    """``python -m orchestrator.sweep`` without ``--address`` under ``RAY_ADDRESS`` joins it:
    the runner gets the variable's address when it starts Ray."""
    import orchestrator.runner as runner
    from orchestrator import sweep

    seen = {}

    def fake_run_sweep(study, options) -> int:
        seen["address"] = ray_address(options)
        return 0

    monkeypatch.setattr(runner, "run_sweep", fake_run_sweep)
    monkeypatch.setattr(sweep, "check_ray_address", lambda *a: None)  # no cluster there
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    sweep.main(["--out", str(tmp_path), "--no-speed"])
    assert seen["address"] == "10.1.2.3:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    seen.clear()
    sweep.main(["--out", str(tmp_path)])
    assert seen["address"] is None


def test_init_ray_joins_the_address_from_the_environment(monkeypatch, tmp_path):
    import ray

    from orchestrator.runner import init_ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    init_ray(SweepOptions(out_dir=tmp_path))
    assert calls[-1]["address"] == "10.1.2.3:6379" and "num_cpus" not in calls[-1]
    monkeypatch.delenv("RAY_ADDRESS")
    init_ray(SweepOptions(out_dir=tmp_path, num_cpus=2))
    assert calls[-1]["address"] == "local" and calls[-1]["num_cpus"] == 2


def test_resume_command_is_the_command_line_in_its_folder_or_the_job_again(tmp_path):
    from orchestrator.sweep import command_line

    cmd = command_line(["--study", "tiny", "--out", "runs/my tiny"])
    assert cmd == "python -m orchestrator.sweep --study tiny --out 'runs/my tiny'"
    opts = SweepOptions(out_dir=tmp_path, command=cmd)
    assert resume_command(opts, {}) == f"cd {os.getcwd()} && {cmd}"
    job = resume_command(opts, {"RAY_JOB_CONFIG_JSON_ENV_VAR": "{}"})
    assert job == f"ray job submit --working-dir . -- {cmd}"
    bare = resume_command(SweepOptions(out_dir=tmp_path), {})
    assert bare.endswith(f"python -m orchestrator.sweep --out {tmp_path}")


def test_the_resume_command_repeats_the_overrides_quoted_to_paste(tmp_path):
    import shlex

    from orchestrator.sweep import command_line

    argv = ["--set", "modes.linear.seeds=[21, 51]", "--set", "description=it's mine",
            "--set", "speed.enabled=false", "--out", "o"]
    for prog in ("python -m orchestrator.sweep", "sparse-transfer sweep"):
        line = resume_command(SweepOptions(out_dir=tmp_path, command=command_line(argv, prog)),
                              {})
        assert line.endswith(f"{prog} --set 'modes.linear.seeds=[21, 51]' --set "
                             "'description=it'\"'\"'s mine' --set speed.enabled=false --out o")
        # pasted into a shell, it is the same command line again
        assert shlex.split(line.split(" && ", 1)[1]) == [*prog.split(), *argv]


def test_a_password_in_the_command_is_never_shown(tmp_path):
    from orchestrator.sweep import command_line

    cmd = command_line(["--tracking-uri", "http://me:s3cret@10.0.0.1:5000", "--out", "o"])
    line = resume_command(SweepOptions(out_dir=tmp_path, command=cmd), {})
    assert "s3cret" not in line
    assert line.endswith("--tracking-uri 'http://***@10.0.0.1:5000' --out o")
