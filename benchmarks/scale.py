"""Cost of the sweep's driver as the study grows: 100 to 10,000 trials.

Every size runs the real orchestration path, ``orchestrator.runner.run_sweep`` with
``rehearsal=True``: grid expansion, the ledger, Ray Tune stages (linear, full, speed), MLflow
tracking of every trial, results.parquet, the aggregate runs and the report; only the trials
themselves are the rehearsal's stand-in (``trainables/entry/rehearsal.py``: numbers made up in
microseconds). The grids are the paper study's 24 ResNet50 backbones x D datasets x seeds
(linear and full) + 24 checkpoint and 24 speed trials, sized to about 100, 1,000, 3,000 and
10,000 trials (96, 984, 2,904 and 10,032: the fixed 48 and the backbones' 24 set the steps).

Each size runs in a process of its own (so its peak memory is its own), with a local Ray
started before timing, and prints:

- dry run: ``expand`` + the dry run's printout (``--dry-run``'s work, in-process);
- overhead per trial: (time in the Tune stages - the trials' own time / concurrency) / trials;
  the trials' own time is their ``train_time_s``; concurrency = Ray CPUs / 1 CPU per trial;
- rerun with nothing to do (``run_sweep`` again on the finished folder), and the resume scan
  alone (loading the ledger), both also with every file open delayed by ``--delay-ms`` (a
  network file system), next to the scan of the old design (one file read per trial);
- results table + aggregate runs + report: the sweep's final ``write_outputs``, in parts;
- MLflow trial records per second into the study's own store (already holding its runs):
  SQLite directly, and through a local tracking server on 127.0.0.1;
- the driver's peak resident memory (``ru_maxrss``).

    .venv/bin/python benchmarks/scale.py --sizes 100,1000,3000,10000 --cpus 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

# size -> (datasets, linear seeds, full seeds): 24 backbones x datasets x seeds + 48 fixed.
SHAPES = {100: (1, 1, 1), 1000: (3, 8, 5), 3000: (7, 10, 7), 10000: (8, 30, 22)}
GOALS = {"overhead_s": 0.3, "rerun_s": 5.0, "outputs_s": 30.0, "peak_mb": 2048.0,
         "dry_run_s": 2.0, "growth": 1.5}


def scaled_study(size: int):
    """The paper study cut or widened to ``size`` trials (the paper's own methods)."""
    from search_spaces.loader import load_study

    if size not in SHAPES:
        raise SystemExit(f"--sizes: {size} is not one of {sorted(SHAPES)}")
    n_datasets, linear_seeds, full_seeds = SHAPES[size]
    study = load_study("paper")
    seeds = {"linear": linear_seeds, "full": full_seeds}
    modes = tuple(dataclasses.replace(m, seeds=tuple(range(1, 1 + seeds[m.name])))
                  for m in study.modes)
    # One Figure-4 dataset: 24 speed trials (one per backbone) and 24 checkpoint trials are
    # the fixed part; the sizes come out at 96, 984, 2,904 and 10,032 trials.
    speed = dataclasses.replace(study.speed, online_datasets=study.speed.online_datasets[:1])
    return dataclasses.replace(study, datasets=study.datasets[:n_datasets], modes=modes,
                               speed=speed)


class Timer:
    """Seconds spent in the wrapped functions, summed per name; a call made while a
    ``scope`` function runs is also summed under ``name@scope`` (MLflow writes made by Tune's
    callbacks inside ``run_stage``, apart from the catch-up of prefilled trials before it)."""

    def __init__(self, scope: str = "run_stage") -> None:
        self.calls: dict[str, list[float]] = {}
        self.scope = scope
        self.depth = 0

    def spent(self, key: str) -> float:
        return sum(self.calls.get(key, []))

    def last(self, key: str) -> float:
        return (self.calls.get(key) or [0.0])[-1]

    def wrap(self, module: Any, name: str, key: str | None = None) -> None:
        fn = getattr(module, name)
        key = key or name

        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            inside = self.depth > 0
            self.depth += key == self.scope
            try:
                return fn(*a, **k)
            finally:
                self.depth -= key == self.scope
                took = time.perf_counter() - t0
                self.calls.setdefault(key, []).append(took)
                if inside:
                    self.calls.setdefault(f"{key}@{self.scope}", []).append(took)
        setattr(module, name, timed)


def delayed_reader(delay_s: float, opened: list[int]):
    """A file reader that waits ``delay_s`` per open, as a network mount's round trip."""
    def read(path: Path) -> bytes:
        opened[0] += 1
        time.sleep(delay_s)
        with open(path, "rb") as f:
            return f.read()
    return read


def old_scan(folder: Path, delay_s: float) -> float:
    """The ledger before the index: every ``trials/<id>.json`` opened and parsed."""
    t0 = time.perf_counter()
    for p in sorted(folder.glob("*.json")):
        time.sleep(delay_s)
        json.loads(p.read_text())
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_rate(uri: str, records: int) -> dict[str, float]:
    """Trial records per second (create run, params, metrics with a 3-epoch history, tags,
    status, end: what the sweep writes per trial) and MLflow requests per second."""
    from orchestrator.tracking import Tracker
    from search_spaces.recipe import Recipe
    from search_spaces.trial import TrialSpec

    t0 = time.perf_counter()
    tracker = Tracker(uri, experiment=f"bench-{time.time_ns()}")
    opened = time.perf_counter() - t0
    specs = [TrialSpec(stage="linear", method="gmp", sparsity=90, arch="resnet50",
                       dataset="pets", seed=i, recipe=Recipe(epochs=3, lr=0.01),
                       num_classes=37) for i in range(records)]
    history = [{"epoch": e, "loss": 1.0 / e, "accuracy": 50.0 + e} for e in (1, 2, 3)]
    t0 = time.perf_counter()
    for s in specs:
        tracker.ensure_run(s)
        tracker.finish(s, {"accuracy": 53.0, "accuracy_last": 52.0, "rehearsal": True},
                       history)
    took = time.perf_counter() - t0
    requests_per_record = 7  # create_run, params, metrics, tags, set_tag, set_terminated, get
    return {"records_per_s": records / took, "requests_per_s": records * requests_per_record
            / took, "open_s": opened}


def tracking_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{db}", "--host",
         "127.0.0.1", "--port", str(port), "--workers", "1",
         "--default-artifact-root", str(db.parent / "server-artifacts")],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:  # ready when it answers its health check, not when the port opens
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("mlflow server did not start in 120 s")


def prefill(grid: Any, out: Path, keep: int) -> set[str]:
    """Record all but ``keep`` trials of the grid straight into the ledger, as a resumed
    sweep finds them (the rehearsal's own results, no Tune, no MLflow run); returns how many.

    Why: on this shared 2-core machine a trial costs the driver about half a second (most of
    it MLflow's SQLite writes), so 10,000 trials through Tune would take hours; the Tune
    stages run ``keep`` trials at every size (in batches of ``execute.TUNE_BATCH``, so a
    Tuner's size does not grow with the grid), while the ledger, the grid, the results table,
    the aggregates and the report have the whole size. Each stage keeps its share of
    ``keep``; the ids recorded are returned.
    """
    from orchestrator.ledger import FINISHED, Ledger
    from orchestrator.progress import split_result
    from search_spaces.trial import to_dict
    from orchestrator.stages import named
    from trainables.entry.context import TrialContext
    from trainables.entry.trial import run_trial

    from orchestrator.options import mark_rehearsal_folder

    mark_rehearsal_folder(out)  # as the sweep does before its first record
    ledger = Ledger(out / "trials")
    ctx = TrialContext(out_dir=str(out), rehearsal=True)
    trials = grid.all_trials()
    todo = []
    if keep < len(trials):
        for stage_trials in grid.stages.values():
            n = max(1, round(keep * len(stage_trials) / len(trials))) if stage_trials else 0
            todo += stage_trials[:len(stage_trials) - n]
    for t in todo:
        result = run_trial(named(t.stage).rehearsal, t, ctx, report=lambda r: None)
        metrics, history = split_result(result)
        ledger.record(t.trial_id, {"status": FINISHED, "spec": to_dict(t),
                                   "metrics": metrics, "history": history})
    return {t.trial_id for t in todo}


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group; SIGKILL it if it is still there after 10 s (uvicorn
    waits for its background tasks)."""
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def one_size(size: int, cpus: int, delay_ms: float, records: int, work: Path,
             tune_trials: int) -> dict[str, Any]:
    """Everything for one grid size, in this process (its peak memory is this size's)."""
    import pandas as pd
    import ray

    from orchestrator import aggregate, ledger as ledger_mod, runner
    from orchestrator.grid import expand
    from orchestrator.ledger import Ledger
    from orchestrator.options import SweepOptions
    from orchestrator.plan import describe
    import reports.report

    out = work / f"n{size}"
    study = scaled_study(size)
    r: dict[str, Any] = {"size": size, "cpus": cpus}

    t0 = time.perf_counter()
    grid = expand(study, out, hash_files=False)
    describe(grid)
    r["dry_run_s"] = time.perf_counter() - t0
    r["trials"] = len(grid.all_trials())

    from orchestrator.tracking import Tracker

    t0 = time.perf_counter()
    prefilled = prefill(grid, out, tune_trials)
    r["prefilled"] = len(prefilled)
    r["prefill_s"] = time.perf_counter() - t0
    timer = Timer()
    timer.wrap(runner, "run_stage")
    timer.wrap(Tracker, "ensure_run")
    timer.wrap(Tracker, "finish")
    timer.wrap(Ledger, "record")
    timer.wrap(runner, "catch_up")  # the prefilled trials reach MLflow from the ledger
    timer.wrap(runner, "write_outputs")
    timer.wrap(aggregate, "results_frame")
    timer.wrap(aggregate, "write_results")
    timer.wrap(aggregate, "log_aggregates")
    timer.wrap(reports.report, "write_report")
    options = SweepOptions(out_dir=out, num_cpus=cpus, verbose=0, rehearsal=True)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    t0 = time.perf_counter()
    code = runner.run_sweep(study, options)
    r["sweep_s"] = time.perf_counter() - t0
    r["exit"] = code
    df = pd.read_parquet(out / "results.parquet")
    r["rows"] = len(df)
    own = float(df.loc[~df["trial_id"].isin(prefilled), "train_time_s"].fillna(0).sum())
    r["own_s"] = own
    r["concurrency"] = cpus  # one CPU per rehearsal trial (execute.REHEARSAL_RESOURCES)
    r["tune_s"] = timer.spent("run_stage")
    r["tuned"] = r["trials"] - r["prefilled"]
    r["overhead_s"] = (r["tune_s"] - own / cpus) / r["tuned"]
    r["mlflow_per_trial_s"] = (timer.spent("ensure_run@run_stage")
                               + timer.spent("finish@run_stage")) / r["tuned"]
    r["catch_up_s"] = timer.spent("catch_up")
    r["ledger_per_trial_s"] = timer.spent("record") / r["tuned"]
    # The final write_outputs (the sweep also calls it after the linear and full stages).
    r["outputs_s"] = timer.last("write_outputs")
    for key in ("results_frame", "write_results", "log_aggregates", "write_report"):
        r[f"outputs_{key}_s"] = timer.last(key)
    r["outputs_in_sweep_s"] = timer.spent("write_outputs")
    ray.shutdown()
    # What a rerun with work to do pays first: the MLflow index of the study's runs.
    t0 = time.perf_counter()
    _tracker(out, study)
    r["mlflow_index_s"] = time.perf_counter() - t0

    # A rerun with nothing to do: the same call again on the finished folder.
    t0 = time.perf_counter()
    code = runner.run_sweep(study, options)
    r["rerun_s"] = time.perf_counter() - t0
    r["rerun_exit"] = code
    t0 = time.perf_counter()
    Ledger(out / "trials")
    r["scan_s"] = time.perf_counter() - t0
    # The same with every file open delayed (a network mount): ledger reads and the listing.
    delay = delay_ms / 1000
    opened = [0]
    real_read, real_listdir = ledger_mod.read_bytes, os.listdir

    def slow_listdir(path: Any = ".") -> list[str]:
        opened[0] += 1
        time.sleep(delay)
        return real_listdir(path)
    ledger_mod.read_bytes = delayed_reader(delay, opened)
    ledger_mod.os.listdir = slow_listdir  # type: ignore[attr-defined]
    try:
        t0 = time.perf_counter()
        Ledger(out / "trials")
        r["scan_delayed_s"] = time.perf_counter() - t0
        r["scan_delayed_opens"] = opened[0]
        t0 = time.perf_counter()
        runner.run_sweep(study, options)
        r["rerun_delayed_s"] = time.perf_counter() - t0
    finally:
        ledger_mod.read_bytes, ledger_mod.os.listdir = real_read, real_listdir
    r["rerun_shell_s"], r["rerun_shell_exit"] = rerun_from_shell(study, out)
    r["old_scan_s"] = old_scan(out / "trials", 0.0)
    r["old_scan_delayed_s"] = old_scan(out / "trials", delay)
    r["delay_ms"] = delay_ms

    # MLflow: trial records per second into the study's own store, then through a server.
    db = out / "mlflow.db"
    r["mlflow_sqlite"] = mlflow_rate(f"sqlite:///{db}", records)
    port = free_port()
    server = tracking_server(db, port, work / f"server-{size}.log")
    try:
        # Its first API call opens the store (minutes under load); the Tracker allows 5 s.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/"
                                    "get-by-name?experiment_name=Default", timeout=600):
            pass
        r["mlflow_server"] = mlflow_rate(f"http://127.0.0.1:{port}", records)
    finally:
        stop_server(server)
    r["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r["load_avg"] = os.getloadavg()[0]
    return r


def _tracker(out: Path, study: Any) -> Any:
    from orchestrator.resume import method_labels
    from orchestrator.options import default_tracking_uri
    from orchestrator.tracking import Tracker

    return Tracker(default_tracking_uri(out), experiment=f"sparse-transfer/{study.name}-rehearsal",
                   method_labels=method_labels(study), run_tags={"rehearsal": "True"})


def rerun_from_shell(study: Any, out: Path) -> tuple[float, int]:
    """A user's rerun of the finished size: ``python -m orchestrator.sweep --study <its YAML>
    --rehearsal`` in a new Python, interpreter start and imports included (the
    "at most 5 s" target is about it, beyond the in-process call). (nan, -1) when the
    study does not survive the round trip through YAML (the same trial ids), rather than run
    the whole grid again."""
    import yaml

    from orchestrator.grid import expand
    from search_spaces.loader import load_study
    from search_spaces.schema import study_to_dict

    path = out.parent / f"{out.name}-study.yaml"
    path.write_text(yaml.safe_dump(study_to_dict(study), sort_keys=False))
    ids = {t.trial_id for t in expand(study, out, hash_files=False).all_trials()}
    again = {t.trial_id for t in expand(load_study(str(path)), out,
                                        hash_files=False).all_trials()}
    if ids != again:
        return float("nan"), -1
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "--study", str(path),
                           "--rehearsal", "--out", str(out), "--quiet"],
                          cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    return time.perf_counter() - t0, done.returncode


def outputs_again(size: int, work: Path) -> None:
    """A finished size again, in a new process (after a change of code): the rerun with
    nothing to do, then the outputs twice: the first call logs every aggregate run (a new
    tracker), the second only those that changed (none)."""
    from orchestrator import runner
    from orchestrator.ledger import Ledger
    from orchestrator.options import SweepOptions
    from trainables.entry.context import TrialContext

    out = work / f"n{size}"
    study = scaled_study(size)
    options = SweepOptions(out_dir=out, verbose=0, rehearsal=True)
    for _ in range(2):
        t0 = time.perf_counter()
        code = runner.run_sweep(study, options)
        print(f"size {size}: rerun with nothing to do: {time.perf_counter() - t0:.2f} s "
              f"(exit {code})")
    t0 = time.perf_counter()
    ledger = Ledger(out / "trials")
    tracker = _tracker(out, study)
    print(f"size {size}: ledger + MLflow run index loaded in {time.perf_counter() - t0:.1f} s")
    ctx = TrialContext(out_dir=str(out), rehearsal=True)
    for what in ("first call (every aggregate logged)", "second call (unchanged: skipped)"):
        t0 = time.perf_counter()
        runner.write_outputs(study, ctx, ledger, tracker, options, final=True)
        print(f"size {size}: results + aggregates + report, {what}: "
              f"{time.perf_counter() - t0:.1f} s")


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        ("trials", lambda r: f"{r['trials']}", ""),
        ("dry run, s", lambda r: f"{r['dry_run_s']:.2f}", f"< {GOALS['dry_run_s']:g}"),
        ("whole sweep (first run), s", lambda r: f"{r['sweep_s']:.0f}", ""),
        ("  trials through Tune (the rest prefilled in the ledger)", lambda r:
         f"{r['tuned']}", ""),
        ("  in Tune stages, s", lambda r: f"{r['tune_s']:.0f}", ""),
        ("  trials' own time, s", lambda r: f"{r['own_s']:.3f}", ""),
        ("overhead per trial, s (concurrency {c})", lambda r: f"{r['overhead_s']:.3f}",
         f"<= {GOALS['overhead_s']:g}"),
        ("  of which MLflow trial writes, s per trial", lambda r:
         f"{r['mlflow_per_trial_s']:.3f}", ""),
        ("  of which ledger writes, s per trial", lambda r:
         f"{r['ledger_per_trial_s']:.4f}", ""),
        ("MLflow catch-up of the prefilled trials (from the ledger), s", lambda r:
         f"{r['catch_up_s']:.0f}", ""),
        ("rerun with nothing to do, s", lambda r: f"{r['rerun_s']:.2f}",
         f"<= {GOALS['rerun_s']:g}"),
        ("  the same, {d} ms per file open, s", lambda r: f"{r['rerun_delayed_s']:.2f}",
         f"<= {GOALS['rerun_s']:g}"),
        ("  the same from the shell (new Python, imports), s (exit)", lambda r:
         f"{r['rerun_shell_s']:.2f} ({r['rerun_shell_exit']})", f"<= {GOALS['rerun_s']:g}"),
        ("ledger scan, s", lambda r: f"{r['scan_s']:.3f}", ""),
        ("  with {d} ms per open (opens), s", lambda r:
         f"{r['scan_delayed_s']:.3f} ({r['scan_delayed_opens']})", ""),
        ("  old design: a file per trial, s", lambda r: f"{r['old_scan_s']:.3f}", ""),
        ("  old design, {d} ms per open, s", lambda r: f"{r['old_scan_delayed_s']:.2f}", ""),
        ("results + aggregates + report, s", lambda r: f"{r['outputs_s']:.1f}",
         f"<= {GOALS['outputs_s']:g}"),
        ("  results table (ledger -> parquet), s", lambda r:
         f"{r['outputs_results_frame_s'] + r['outputs_write_results_s']:.2f}", ""),
        ("  aggregate MLflow runs, s", lambda r: f"{r['outputs_log_aggregates_s']:.1f}", ""),
        ("  report, s", lambda r: f"{r['outputs_write_report_s']:.1f}", ""),
        ("MLflow run index load (a resume with work), s",
         lambda r: f"{r['mlflow_index_s']:.1f}", ""),
        ("MLflow SQLite, trial records/s", lambda r:
         f"{r['mlflow_sqlite']['records_per_s']:.1f}", ""),
        ("MLflow server on 127.0.0.1, trial records/s", lambda r:
         f"{r['mlflow_server']['records_per_s']:.1f}", ""),
        ("driver peak memory, MB", lambda r: f"{r['peak_mb']:.0f}",
         f"<= {GOALS['peak_mb']:g}"),
        ("machine load average (1 min) at the end", lambda r: f"{r['load_avg']:.1f}", ""),
    ]
    c = results[0]["concurrency"]
    d = f"{results[0]['delay_ms']:g}"
    head = "| | " + " | ".join(f"{r['size']:,}" for r in results) + " | goal |"
    lines = [head, "|---" * (len(results) + 2) + "|"]
    for name, cell, goal in rows:
        lines.append(f"| {name.format(c=c, d=d)} | "
                     + " | ".join(cell(r) for r in results) + f" | {goal} |")
    return "\n".join(lines)


def growth(results: list[dict[str, Any]]) -> str:
    a, b = results[0], results[-1]
    keys = [("overhead per trial", "overhead_s"), ("rerun with nothing to do", "rerun_s"),
            ("results + aggregates + report", "outputs_s"), ("dry run", "dry_run_s"),
            ("driver peak memory", "peak_mb")]
    parts = [f"{name} x{b[k] / a[k]:.2f}" for name, k in keys if a[k]]
    return (f"growth from {a['trials']:,} to {b['trials']:,} trials "
            f"(x{b['trials'] / a['trials']:.0f}): " + ", ".join(parts)
            + f" (goal for overhead: at most x{GOALS['growth']:g})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,1000,3000,10000",
                   help="comma list of grid sizes, from " + ",".join(map(str, SHAPES)))
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (concurrency)")
    p.add_argument("--delay-ms", type=float, default=2.0,
                   help="latency added to every ledger file open in the delayed scans")
    p.add_argument("--mlflow-records", type=int, default=100,
                   help="trial records written to time MLflow, per store")
    p.add_argument("--tune-trials", type=int, default=1000,
                   help="trials run through Ray Tune at each size; the rest of a larger grid "
                   "is recorded straight into the ledger first, as a resumed sweep finds it "
                   "(default 1000)")
    p.add_argument("--work", type=Path, help="folder for the runs (default: a new temp dir; "
                   "kept, so the reports can be looked at)")
    p.add_argument("--reuse", action="store_true",
                   help="take a size's numbers from an earlier run in --work where present")
    p.add_argument("--outputs", type=int, metavar="SIZE",
                   help="only time the rerun and the outputs of a size already run in --work")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one size, in this process
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="scale-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.outputs:
        outputs_again(args.outputs, work)
        return
    if args.one:
        r = one_size(args.one, args.cpus, args.delay_ms, args.mlflow_records, work,
                     args.tune_trials)
        args.json.write_text(json.dumps(r))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"command: .venv/bin/python benchmarks/scale.py --sizes {args.sizes} "
          f"--cpus {args.cpus} --delay-ms {args.delay_ms:g} --tune-trials {args.tune_trials} "
          f"--mlflow-records {args.mlflow_records}  (work folder {work})", flush=True)
    results = []
    for size in sizes:
        out = work / f"n{size}.json"
        if args.reuse and out.exists():
            results.append(json.loads(out.read_text()))
            print(f"size {size}: measured earlier, read from {out}", flush=True)
            continue
        t0 = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NM_DISABLE_ANALYTICS": "1"}
        env.pop("MLFLOW_TRACKING_URI", None)
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--cpus", str(args.cpus),
             "--delay-ms", str(args.delay_ms), "--mlflow-records", str(args.mlflow_records),
             "--tune-trials", str(args.tune_trials),
             "--work", str(work), "--json", str(out)],
            env=env, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"size {size} failed ({proc.returncode})")
        results.append(json.loads(out.read_text()))
        print(f"size {size}: done in {time.perf_counter() - t0:.0f} s "
              f"({json.dumps(results[-1])})", flush=True)
    print()
    print(table(results))
    if len(results) > 1:
        print()
        print(growth(results))
    if args.work is None:
        print(f"\n(runs kept in {work}; remove with rm -rf {shlex_quote(work)})")


def shlex_quote(p: Path) -> str:
    import shlex

    return shlex.quote(str(p))


if __name__ == "__main__":
    main()
