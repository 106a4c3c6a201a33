"""A rerun's nothing-to-do answer (``orchestrator.resume``): from the ledger and the outputs
stamp alone, and from the shell without importing MLflow, torch or Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator import resume
from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger

ROOT = Path(__file__).resolve().parents[2]
# The sweep these tests rerun: one paper backbone on one dataset, and its CLI arguments.
NARROW = {"methods": "gmp", "sparsities": "90", "datasets": "pets", "seeds": 1}


def _study():
    from search_spaces.loader import load_study, narrow

    return narrow(load_study("paper"), **NARROW)


def test_a_rerun_with_nothing_to_do_is_answered_by_the_stamp(tmp_path):
    import dataclasses

    from orchestrator.grid import expand
    from orchestrator.options import SweepOptions

    study = _study()
    grid = expand(study, tmp_path, hash_files=False)
    options = SweepOptions(out_dir=tmp_path, rehearsal=True)
    led = Ledger(tmp_path / "trials")
    for t in grid.all_trials():
        led.record(t.trial_id, {"status": FINISHED})
    uri = "sqlite:///x.db"
    stamp = resume.outputs_stamp(study, options, led, uri)
    assert not resume.all_done(grid, led, study, options, stamp)  # no outputs yet
    _empty_results(tmp_path / "results.parquet")
    (tmp_path / resume.STAMP).write_text(stamp)
    assert resume.all_done(grid, led, study, options, stamp)
    # Anything the outputs are built from changes the stamp: a new entry, a label, the store.
    led.record("linear-extra", {"status": FINISHED})
    assert resume.outputs_stamp(study, options, led, uri) != stamp
    relabelled = dataclasses.replace(study, methods=tuple(
        dataclasses.replace(m, label=m.label + "!") for m in study.methods))
    assert resume.outputs_stamp(relabelled, options, led, uri) != resume.outputs_stamp(
        study, options, led, uri)
    assert resume.outputs_stamp(study, options, led, "sqlite:///y.db") != resume.outputs_stamp(
        study, options, led, uri)
    assert "x.db" not in resume.outputs_stamp(study, options, led, uri)  # hashed: no secret
    # A trial that errored is pending: never "nothing to do".
    led.record(grid.all_trials()[0].trial_id, {"status": ERROR})
    stamp = resume.outputs_stamp(study, options, led, uri)
    (tmp_path / resume.STAMP).write_text(stamp)
    assert not resume.all_done(grid, led, study, options, stamp)


def _empty_results(path: Path) -> None:
    """A results table that reads (a rerun checks its footer, not only its name), no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"trial_id": pa.array([], pa.string())}), path)


def _finished_folder(tmp_path: Path, statuses: dict[int, str] | None = None) -> list[str]:
    """A rehearsal folder of a narrowed paper study whose every trial is recorded and whose
    outputs are stamped current; returns the CLI arguments that name the same sweep."""
    from orchestrator.grid import expand
    from orchestrator.options import SweepOptions, default_tracking_uri

    args = ["--study", "paper", *(w for k, v in NARROW.items() for w in (f"--{k}", str(v))),
            "--rehearsal", "--out", str(tmp_path)]
    study = _study()
    grid = expand(study, tmp_path, hash_files=False)
    led = Ledger(tmp_path / "trials")
    for i, t in enumerate(grid.all_trials()):
        led.record(t.trial_id, {"status": (statuses or {}).get(i, FINISHED)})
    options = SweepOptions(out_dir=tmp_path.resolve(), rehearsal=True)
    stamp = resume.outputs_stamp(study, options, led, default_tracking_uri(tmp_path))
    _empty_results(tmp_path / "results.parquet")
    (tmp_path / resume.STAMP).write_text(stamp)
    return args


def _sweep_in_fresh_python(args: list[str]) -> tuple[int, dict, str]:
    code = ("import json, sys\n"
            "from orchestrator.sweep import main\n"
            f"code = main({args!r})\n"
            "print(json.dumps({'code': code, 'heavy': sorted(m for m in ('mlflow', 'torch', "
            "'ray', 'pandas') if m in sys.modules)}))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], result, done.stderr


def test_a_finished_sweep_run_again_answers_without_mlflow_torch_or_ray(tmp_path):
    args = _finished_folder(tmp_path)
    code, result, err = _sweep_in_fresh_python(args)
    assert code == 0
    assert result["heavy"] == []
    assert "nothing to do" in err
    assert "summary" in err and "not run" in err


def test_the_fast_answer_keeps_the_exit_code_of_failed_trials(tmp_path):
    args = _finished_folder(tmp_path, statuses={0: FAILED})
    code, result, err = _sweep_in_fresh_python(args)
    assert code == 1 and result["heavy"] == []
    assert "1 trial(s) failed on bad input" in err


def test_a_sweep_with_work_left_is_not_answered_early(tmp_path):
    """An errored trial is pending: the fast path declines and the runner takes over."""
    from orchestrator.options import SweepOptions

    _finished_folder(tmp_path, statuses={0: ERROR})
    study = _study()
    options = SweepOptions(out_dir=tmp_path.resolve(), rehearsal=True)
    assert resume.rerun_exit_code(study, options) is None
    assert resume.rerun_exit_code(study, SweepOptions(out_dir=tmp_path / "new")) is None
