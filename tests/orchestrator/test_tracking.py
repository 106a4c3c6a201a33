"""MLflow tracking and the ledger, without Ray: idempotent runs, atomic entries."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.ledger import FAILED, FINISHED, Ledger
from common.masking import redact
from orchestrator.tracking import Tracker, TrackingError
from orchestrator.tracking_outage import sync_from_ledger
from search_spaces.recipe import Recipe
from search_spaces.trial import TrialSpec

SPEC = TrialSpec(stage="linear", method="gmp", sparsity=90, arch="resnet_tiny",
                 dataset="digits", seed=21, recipe=Recipe(epochs=3), num_classes=10)


@pytest.fixture
def tracker(tmp_path):
    return Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test")


def _runs(tr: Tracker):
    return tr.client.search_runs([tr.experiment_id], max_results=1000)


def test_one_run_per_trial_even_across_trackers(tmp_path, tracker):
    rid = tracker.ensure_run(SPEC)
    assert tracker.ensure_run(SPEC) == rid
    again = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test")
    assert again.ensure_run(SPEC) == rid  # a rerun of the sweep finds it by its tag
    assert [r.data.tags["kind"] for r in _runs(again)].count("trial") == 1
    assert len(_runs(again)) == 2  # and its stage's parent run, also made once


def _epoch(e: int, acc: float, best: float) -> dict:
    """One epoch's report as the trainables send it
    (``trainables.training.engine.epoch_record``)."""
    return {"epoch": e, "train_loss": 1.0 / e, "accuracy": acc, "accuracy_best": best,
            "best_epoch": 2 if best == 60.0 else e, "accuracy_last": acc}


EPOCHS = [_epoch(1, 50.0, 50.0), _epoch(2, 60.0, 60.0), _epoch(3, 55.0, 60.0)]
FINAL = {"accuracy": 60.0, "accuracy_last": 55.0, "best_epoch": 2, "train_time_s": 4.5}


def _history(tr: Tracker, key: str) -> list[tuple[int, float]]:
    rid = tr.run_id(SPEC.trial_id)
    return sorted((m.step, m.value) for m in tr.client.get_metric_history(rid, key))


def test_finish_logs_params_history_and_final_at_the_last_step(tracker):
    tracker.finish(SPEC, FINAL, EPOCHS)
    run = tracker.client.get_run(tracker.run_id(SPEC.trial_id))
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert (p["method"], p["sparsity"], p["dataset"], p["mode"], p["seed"], p["lr"]) == (
        "gmp", "90", "digits", "linear", "21", "0.01")
    # One name per number, the results.parquet column: its latest value is the result.
    assert {k: run.data.metrics[k] for k in FINAL} == FINAL
    assert "final_accuracy" not in run.data.metrics and "accuracy_best" not in run.data.metrics
    assert _history(tracker, "accuracy") == [(1, 50.0), (2, 60.0), (3, 60.0)]  # best so far
    assert _history(tracker, "accuracy_last") == [(1, 50.0), (2, 60.0), (3, 55.0)]
    assert _history(tracker, "train_time_s") == [(3, 4.5)]  # final values: the last step
    assert all(step > 0 for step, _ in _history(tracker, "best_epoch"))  # no point at step 0
    assert run.data.tags["trial_id"] == SPEC.trial_id


def test_table3_numbers_are_metrics_named_as_their_columns_and_read_back(tracker):
    from reports.load import read_mlflow
    from reports.tables import upstream_table

    # A checkpoint trial's result with all three ImageNetV2 variants, one with two of them.
    full = {"accuracy": 70.0, "accuracy_real": 77.0, "accuracy_v2": 155.0 / 3,
            "accuracy_v2_matched_frequency": 50.0, "accuracy_v2_threshold07": 25.0,
            "accuracy_v2_top_images": 80.0, "upstream_eval": "evaluated on ImageNet val, ..."}
    partial = {"accuracy": 60.0, "accuracy_v2_matched_frequency": 40.0,
               "accuracy_v2_top_images": 65.0,
               "upstream_eval": "...; no ImageNetV2 average: threshold-0.7 not found"}
    rows = []
    for method, sparsity, result in (("dense", 0, full), ("gmp", 90, partial)):
        spec = TrialSpec(stage="checkpoint", method=method, sparsity=sparsity,
                         arch="resnet_tiny", dataset="imagenet", seed=0, num_classes=1000)
        tracker.finish(spec, result)
        run = tracker.client.get_run(tracker.run_id(spec.trial_id))
        assert {k: v for k, v in run.data.metrics.items() if k.startswith("accuracy")} == {
            k: v for k, v in result.items() if k.startswith("accuracy")}
        assert run.data.tags["upstream_eval"] == result["upstream_eval"]
        rows.append({"method": method, "sparsity": sparsity, "arch": "resnet_tiny",
                     "dataset": "imagenet", "mode": "checkpoint", "seed": 0,
                     "status": "finished", **result})
    from_mlflow = upstream_table(read_mlflow(tracker.client.tracking_uri))
    pd.testing.assert_frame_equal(from_mlflow, upstream_table(pd.DataFrame(rows)),
                                  check_dtype=False)
    assert from_mlflow["v2"].notna().tolist() == [True, False]


def test_epochs_are_logged_as_reported_and_never_twice(tmp_path, tracker):
    for record in EPOCHS[:2]:
        tracker.log_epoch(SPEC, record)
    run = tracker.client.get_run(tracker.run_id(SPEC.trial_id))
    assert run.info.status == "RUNNING"  # visible while the trial runs
    assert _history(tracker, "accuracy") == [(1, 50.0), (2, 60.0)]
    tracker.log_epoch(SPEC, EPOCHS[1])  # a retried attempt reports epoch 2 again
    # The driver restarts (a new Tracker) and the trial finishes with its whole history.
    again = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test")
    again.log_epoch(SPEC, EPOCHS[2])
    again.finish(SPEC, FINAL, EPOCHS)
    for key in ("accuracy", "accuracy_last", "train_loss", "best_epoch"):
        steps = [s for s, _ in _history(again, key)]
        assert steps == [1, 2, 3], (key, steps)  # each epoch once
    times = [m.timestamp for m in again.client.get_metric_history(again.run_id(SPEC.trial_id),
                                                                   "train_loss")]
    assert times == sorted(times)


def test_upstream_and_pruning_reports_use_the_same_names():
    from orchestrator.tracking import epoch_metrics

    assert epoch_metrics({"epoch": 2, "train_loss": 0.5, "val_accuracy": 40.0,
                          "seconds": 3.0}) == {"train_loss": 0.5, "accuracy": 40.0,
                                               "train_time_s": 3.0}
    assert epoch_metrics({"step": 20, "train_loss": 0.7, "sparsity": 0.45},
                         identity={"sparsity"}) == {"train_loss": 0.7, "sparsity_measured": 45.0}


def test_runs_are_nested_tagged_and_carry_metadata(tmp_path):
    dense = TrialSpec(**{**SPEC.__dict__, "method": "dense", "sparsity": 0})
    tr = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test",
                 description="A study of sparse transfer.", sparsity_levels=[0, 80, 90],
                 metadata={"mlflow.user": "me", "mlflow.source.name": "orchestrator.sweep",
                           "mlflow.source.git.commit": "abc"})
    tr.finish(SPEC, FINAL, EPOCHS)
    tr.finish(dense, FINAL, EPOCHS)
    tr.log_aggregate("cell/linear/gmp/90/digits", {"mode": "linear"}, {"mean": 1.0}, 1)
    tr.log_aggregate("summary", {"kind": "summary"}, {}, 1)
    exp = tr.client.get_experiment(tr.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.tags["mlflow.note.content"] == "A study of sparse transfer."
    runs = {r.info.run_name: r for r in _runs(tr)}
    assert {"linear", "cells", "summary"} <= set(runs)
    linear, cells = runs["linear"].info.run_id, runs["cells"].info.run_id
    for r in runs.values():
        assert (r.data.tags["mlflow.user"], r.data.tags["mlflow.source.git.commit"]) == ("me",
                                                                                         "abc")
        parent = r.data.tags.get("mlflow.parentRunId")
        if r.data.tags["kind"] == "trial":
            assert parent == linear
        elif r.info.run_name.startswith("cell/"):
            assert parent == cells
        else:
            assert parent is None, r.info.run_name  # parents and the summary: top level
    assert not runs["linear"].data.params  # a params.* filter selects trials only
    # One filter selects a sparsity level with its dense baseline.
    found = tr.client.search_runs([tr.experiment_id], "tags.compare_at LIKE '%,90,%'")
    assert {r.data.params["method"] for r in found} == {"gmp", "dense"}
    found = tr.client.search_runs([tr.experiment_id], "tags.compare_at LIKE '%,80,%'")
    assert {r.data.params["method"] for r in found} == {"dense"}
    # The dataset is an input of the trial's run: name, source, digest.
    inputs = tr.client.get_run(tr.run_id(SPEC.trial_id)).inputs.dataset_inputs
    assert [d.dataset.name for d in inputs] == ["digits"]
    assert "load_digits" in inputs[0].dataset.source and len(inputs[0].dataset.digest) == 12


def test_the_report_goes_to_the_summary_run_top_level(tmp_path, tracker):
    report = tmp_path / "report"
    (report / "figures").mkdir(parents=True)
    (report / "arch-resnet18" / "figures").mkdir(parents=True)
    for rel in ("report.md", "table1.csv", "figures/fig2.png", "arch-resnet18/table1.csv",
                "arch-resnet18/figures/fig2.png"):
        (report / rel).write_text(rel)
    tracker.log_aggregate("summary", {"kind": "summary"}, {}, 1, tags={"finding_1": "holds"})
    rid = tracker.log_report("summary", report)
    assert [r.info.run_id for r in _runs(tracker)] == [rid]  # no run of its own
    top = sorted(f.path for f in tracker.client.list_artifacts(rid))
    assert top == ["arch-resnet18", "fig2.png", "report.md", "table1.csv"]
    sub = sorted(f.path for f in tracker.client.list_artifacts(rid, "arch-resnet18"))
    assert sub == ["arch-resnet18/fig2.png", "arch-resnet18/table1.csv"]


def test_text_facts_of_a_result_become_tags(tracker):
    tracker.finish(SPEC, {"accuracy": 1.0, "cpu_model": "Intel(R) Xeon(R)",
                          "deepsparse_isa": "avx512,vnni", "epoch_extrapolated": True,
                          "method": "gmp"})
    run = tracker.client.get_run(tracker.run_id(SPEC.trial_id))
    tags = run.data.tags
    assert tags["cpu_model"] == "Intel(R) Xeon(R)" and tags["deepsparse_isa"] == "avx512,vnni"
    assert tags["epoch_extrapolated"] == "True"
    assert "method" not in tags  # already a param


def test_failure_keeps_the_message(tracker):
    tracker.fail(SPEC, "FloatingPointError: loss is nan at epoch 2")
    run = tracker.client.get_run(tracker.run_id(SPEC.trial_id))
    assert run.info.status == "FAILED" and "nan" in run.data.tags["error"]


def test_aggregates_are_updated_not_duplicated(tracker):
    tracker.log_aggregate("alpha/linear/gmp/90/all", {"mode": "linear"}, {"alpha_mean": 0.1}, 2)
    tracker.log_aggregate("alpha/linear/gmp/90/all", {"mode": "linear"}, {"alpha_mean": 0.2}, 4)
    runs = [r for r in _runs(tracker) if r.data.tags["kind"] == "aggregate"]
    assert len(runs) == 1 and runs[0].data.metrics["alpha_mean"] == 0.2
    assert len(_runs(tracker)) == 2  # and its parent run, "alpha"


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(TrackingError) as e:
        Tracker("http://user:pw@127.0.0.1:9", "x")
    assert "127.0.0.1:9" in str(e.value) and "pw" not in str(e.value)
    assert redact("http://a:b@h:1/x") == "http://***@h:1/x"


def test_ledger_records_atomically(tmp_path):
    led = Ledger(tmp_path / "trials")
    assert led.status("t1") is None
    led.record("t1", {"status": FINISHED, "metrics": {"accuracy": 1.0}})
    led.record("t2", {"status": FAILED, "error": "boom"})
    assert led.status("t1") == FINISHED and led.status("t2") == FAILED
    (tmp_path / "trials" / "t3.json").write_text('{"status": "fini')  # torn by a crash
    assert led.status("t3") is None  # unreadable entries count as not done
    assert not list((tmp_path / "trials").glob(".*tmp*"))
    assert {e["trial_id"] for e in led.entries()} == {"t1", "t2"}


def test_an_error_is_told_apart_and_cleared_when_a_rerun_finishes(tmp_path, tracker):
    traceback_text = "Traceback (most recent call last):\n" + "  File x\n" * 1000 + "TypeError: y"
    tracker.fail(SPEC, traceback_text, status="error")
    run = tracker.client.get_run(tracker.run_id(SPEC.trial_id))
    assert run.info.status == "FAILED" and run.data.tags["status"] == "error"
    assert run.data.tags["error"].endswith("TypeError: y")  # the end names the cause
    assert len(run.data.tags["error"]) <= 4900
    # A rerun of the sweep (a new Tracker) tries the trial again, and this time it finishes.
    again = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test")
    again.finish(SPEC, {"accuracy": 50.0})
    run = again.client.get_run(again.run_id(SPEC.trial_id))
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "finished"
    assert "error" not in run.data.tags


def test_the_ledger_retries_errors_but_not_bad_input(tmp_path):
    from orchestrator.grid import Grid
    from orchestrator.ledger import ERROR
    from orchestrator.resume import pending, summary
    from orchestrator.runner import errored
    from orchestrator.stages import linear, prune

    specs = [TrialSpec(**{**SPEC.__dict__, "seed": s}) for s in range(4)]
    ledger = Ledger(tmp_path / "trials")
    for spec, status in zip(specs, (FINISHED, FAILED, ERROR)):
        ledger.record(spec.trial_id, {"status": status})
    assert pending(specs, ledger, retry_failed=False) == [specs[2], specs[3]]
    assert pending(specs, ledger, retry_failed=True) == specs[1:]
    grid = Grid(study=None, out_dir=tmp_path)
    grid.stages["linear"] = specs
    text, failed, errors = summary(grid, ledger)
    assert (failed, errors) == (1, 1)
    assert "1 finished     1 failed     1 error     1 not run" in text
    # Later stages read the checkpoints of pretrain and prune trials: an error there stops.
    assert errored(prune.STAGE, specs, ledger) == 1
    assert errored(linear.STAGE, specs, ledger) == 0


def _summary(tr: Tracker):
    runs = [r for r in _runs(tr) if r.data.tags.get("aggregate_key") == "summary"]
    assert len(runs) == 1
    return runs[0]


def test_the_findings_go_to_the_summary_run_and_are_updated(tracker):
    from orchestrator.aggregate import log_aggregates, log_findings
    from reports.findings import VERDICTS
    from tests.reports.sample_results import hand_table

    hand = hand_table().assign(status="finished")
    small = hand[(hand["dataset"] == "cifar10") & (hand["mode"] == "full")
                 & hand["method"].isin(["dense", "GMP"]) & (hand["sparsity"] <= 80)]
    log_aggregates(small, tracker)  # the sweep's path: cells, alpha, then the summary
    run = _summary(tracker)
    assert run.data.tags["finding_5"] == "not testable"
    assert run.data.tags["finding_5_why"] == "no LTH-T (lottery ticket) method in the table"
    log_findings(hand, tracker)  # the study grew: same run, new verdicts
    run = _summary(tracker)
    tags, metrics = run.data.tags, run.data.metrics
    assert {tags[f"finding_{n}"] for n in range(1, 9)} <= set(VERDICTS)
    assert (tags["finding_2"], tags["finding_4"], tags["finding_8"]) == (
        "holds", "holds", "not testable")
    held = sum(tags[f"finding_{n}"] == "holds" for n in range(1, 9))
    assert metrics["findings_holding"] == held == 3  # findings 2, 3, 4 on the hand table
    # 1, 5 and 6 do not hold (6's linear alpha moves 0.175 -> 0.250 from 80 to 90 %, not flat);
    # 7 and 8 are not testable (no MobileNet, no speed rows).
    assert metrics["findings_testable"] == 6 and tags["n_trials"] == "60"
    assert run.data.params == {"kind": "summary"}


def test_the_ledger_comes_first_and_mlflow_catches_up(tmp_path, tracker):
    from orchestrator.progress import record_failure, record_success, spec_dict

    class Down:
        def finish(self, *a, **k):
            raise ConnectionError("MLflow server down")

        fail = finish

    ledger = Ledger(tmp_path / "trials")
    other = TrialSpec(**{**SPEC.__dict__, "seed": 22})
    with pytest.raises(ConnectionError):
        record_success(ledger, Down(), SPEC, {**FINAL, "history_json": "[]"})
    with pytest.raises(ConnectionError):
        record_failure(ledger, Down(), other, "BadInput: no such file")
    assert ledger.status(SPEC.trial_id) == FINISHED and ledger.status(other.trial_id) == FAILED
    # The next start logs what MLflow missed, once.
    ledger.record("x", {"status": FINISHED})  # an entry without a spec is left alone
    assert sync_from_ledger(tracker, ledger.entries()) == 2
    run = tracker.client.get_run(tracker.run_id(SPEC.trial_id))
    assert run.info.status == "FINISHED" and run.data.metrics["accuracy"] == 60.0
    run = tracker.client.get_run(tracker.run_id(other.trial_id))
    assert run.info.status == "FAILED" and run.data.tags["error"] == "BadInput: no such file"
    again = Tracker(tracker.uri, "sparse-transfer/test")
    assert sync_from_ledger(again, ledger.entries()) == 0
    assert spec_dict(SPEC)["seed"] == 21


def test_the_sweep_ends_with_a_link_to_the_runs_in_the_training_view():
    from orchestrator.runner import mlflow_hint

    local = mlflow_hint("sqlite:////abs/runs/tiny/mlflow.db", "1")
    assert local.startswith("mlflow ui --backend-store-uri sqlite:////abs/runs/tiny/mlflow.db")
    assert local.endswith("http://127.0.0.1:5000/#/experiments/1/runs?"
                          "workflowType=machine_learning")
    assert mlflow_hint("http://u:pw@head:5000/", "7") == (
        "http://***@head:5000/#/experiments/7/runs?workflowType=machine_learning")


def test_lth_source_tag_says_whether_the_ticket_is_the_backbone(tmp_path):
    """A ticket the grid made the backbone (no mask checkpoint) is "ticket weights" from the
    run's start; a ticket of masks alone (the mask checkpoint beside the dense file) is
    "ticket mask on dense weights"."""
    from search_spaces.loader import load_study

    tr = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test",
                 method_facts=load_study("paper").method_facts)
    ticket = TrialSpec(**{**SPEC.__dict__, "method": "lth_t", "sparsity": 80,
                          "checkpoint": "/c/lth_t_80_ticket.pth", "checkpoint_hash": "t"})
    on_dense = TrialSpec(**{**ticket.__dict__, "checkpoint": "/c/dense_0.pth",
                            "checkpoint_hash": "d",
                            "mask_checkpoint": "/c/lth_t_80_ticket.pth",
                            "mask_checkpoint_hash": "t"})
    tr.ensure_run(ticket)
    tr.finish(on_dense, FINAL, EPOCHS)
    tags = {s.trial_id: tr.client.get_run(tr.run_id(s.trial_id)).data.tags
            for s in (ticket, on_dense)}
    assert tags[ticket.trial_id]["lth_source"] == "ticket weights"
    assert tags[on_dense.trial_id]["lth_source"] == "ticket mask on dense weights"
    assert tags[on_dense.trial_id]["family"] == "lottery"
