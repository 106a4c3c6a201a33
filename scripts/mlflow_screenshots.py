"""Screenshots of a study in the MLflow UI, as a new user sees it (for docs/screenshots/).

Not part of CI (it needs Debian's ``chromium`` and a finished sweep). It starts ``mlflow ui``
on loopback on the sweep's own store, opens the pages a researcher looks at in headless
Chromium and writes one PNG each:

  experiment.png  the experiment's runs: its top level, one run per stage, the aggregates'
                  parents and the summary run
  trial.png       one trial's run page: params, tags, its dataset, final metrics
  trial_charts.png  the same trial's per-epoch charts (logged live, step = epoch)
  compare.png     linear finetuning on one dataset at 90 % with its dense baseline, one
                  filter (``tags.compare_at``) and Group by method: each method's mean
  compare_chart.png  the same comparison in the chart view
  summary.png     the summary run's artifacts: the report's figures and tables at its root

The table layouts (filter, Group by, columns) are MLflow "shared views":
JSON view states kept in experiment tags ``mlflow.sharedViewState.<key>``, which the UI opens
with ``?viewStateShareKey=<key>``. The script adds them to the store and removes them again.

    apt-get install -y chromium
    python -m orchestrator.sweep --smoke-test --out /tmp/mlflow-smoke
    python scripts/mlflow_screenshots.py /tmp/mlflow-smoke --dest docs/screenshots
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SHARE_PREFIX = "mlflow.sharedViewState."
# The MLflow Assistant panel takes the right quarter of a new user's window: cropped off.
CROP_WIDTH = 1190
MAX_BYTES = 300_000


def start_ui(store: str, port: int, log: Path) -> subprocess.Popen:
    """``mlflow ui`` on 127.0.0.1 in its own process group (it starts several workers)."""
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow) if mlflow.exists() else "mlflow", "ui", "--backend-store-uri", store,
           "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow ui exited ({proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return proc
        except OSError:
            time.sleep(2)
    stop(proc)
    raise SystemExit(f"mlflow ui did not answer within 300 s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def shoot(chromium: str, url: str, png: Path, profile: Path, budget_ms: int,
          tries: int = 2) -> None:
    """One page, rendered: MLflow's UI is a JS app, so Chromium gets virtual time to run it.

    On a loaded machine headless Chromium sometimes never returns (seen on its first start
    with a new profile): each try is bounded, and the next one starts afresh.
    """
    png.unlink(missing_ok=True)
    for attempt in range(tries):
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
               "--disable-extensions", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1600,1000",
               f"--virtual-time-budget={budget_ms}", url]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=120 + budget_ms // 1000)
        except subprocess.TimeoutExpired:
            stop(proc)
        if png.exists() and png.stat().st_size:
            shrink(png)
            return
        print(f"  chromium try {attempt + 1} gave no screenshot of {url}", file=sys.stderr)
    raise SystemExit(f"chromium wrote no screenshot of {url}")


def shrink(png: Path) -> None:
    """Crop the assistant panel off and keep the file small (< 300 KB): 256 colours."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    img = img.crop((0, 0, min(CROP_WIDTH, img.width), img.height))
    img.save(png, optimize=True)
    if png.stat().st_size > MAX_BYTES:
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)


def views(client, exp_id: str, runs: list) -> dict[str, dict]:
    """The shared views the screenshots open (see the module docstring)."""
    cols = ["params.`method`", "params.`sparsity`", "params.`dataset`", "params.`seed`",
            "metrics.`accuracy`", "metrics.`accuracy_last`", "tags.`compare_at`"]
    datasets = sorted({r.data.params.get("dataset") for r in runs
                       if r.data.tags.get("stage") == "linear" and r.data.params})
    return {
        "docs-compare": {
            "searchFilter": (f"params.mode = 'linear' and params.dataset = '{datasets[0]}' "
                             "and tags.compare_at LIKE '%,90,%'"),
            "orderByKey": "attributes.start_time", "orderByAsc": False,
            "selectedColumns": cols[:5],
            "groupBy": {"aggregateFunction": "average",
                        "groupByKeys": [{"mode": "param", "groupByData": "method"}]},
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="a sweep's output folder (holding mlflow.db)")
    p.add_argument("--dest", type=Path, default=Path("docs/screenshots"))
    p.add_argument("--port", type=int, default=5077)
    p.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    p.add_argument("--budget-ms", type=int, default=20000,
                   help="virtual time Chromium gives the page to render (default 20000)")
    p.add_argument("--only", nargs="*", help="take only these screenshots (file names)")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server and the shared views are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{(args.out / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=store)
    exp = next(e for e in client.search_experiments() if e.name.startswith("sparse-transfer/"))
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    trials = [r for r in runs if r.data.tags.get("kind") == "trial"
              and r.data.tags.get("stage") in ("linear", "full")
              and r.data.params.get("sparsity") == "90"]
    trial = max(trials, key=lambda r: int(r.data.params.get("epochs", 0)))
    summary = next(r for r in runs if r.data.tags.get("aggregate_key") == "summary")
    shared = views(client, exp.experiment_id, runs)
    for key, state in shared.items():
        client.set_experiment_tag(exp.experiment_id, SHARE_PREFIX + key, json.dumps(state))

    args.dest.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"mlflow-shots-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{args.port}/#/experiments/{exp.experiment_id}"
    figure = next((a.path for a in client.list_artifacts(summary.info.run_id)
                   if a.path.startswith("fig2")), "")
    # MLflow 3 opens a new browser in its GenAI view whatever the experiment's kind (tried:
    # the experiment's root showed the GenAI "Overview"); every page names the classic-ML
    # view, as the link the sweep prints at its end does.
    ml = "workflowType=machine_learning"
    run = f"{base}/runs/{trial.info.run_id}"
    pages = {
        "experiment.png": (f"{base}/runs?{ml}", args.budget_ms),
        "trial.png": (f"{run}?{ml}", args.budget_ms),
        "trial_charts.png": (f"{run}/model-metrics?{ml}", 3 * args.budget_ms),
        "compare.png": (f"{base}/runs?viewStateShareKey=docs-compare&{ml}", args.budget_ms),
        "compare_chart.png": (f"{base}/runs?viewStateShareKey=docs-compare&"
                              f"compareRunsMode=CHART&{ml}", 3 * args.budget_ms),
        "summary.png": (f"{base}/runs/{summary.info.run_id}/artifacts/{figure}?{ml}",
                        args.budget_ms),
    }
    ui = start_ui(store, args.port, work / "mlflow-ui.log")
    try:
        for name, (url, budget) in pages.items():
            if args.only and name not in args.only:
                continue
            shoot(args.chromium, url, args.dest / name, work / "profile", budget)
            print(f"{args.dest / name}  {(args.dest / name).stat().st_size // 1024} KB  {url}")
    finally:
        stop(ui)
        for key in shared:
            client.delete_experiment_tag(exp.experiment_id, SHARE_PREFIX + key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
