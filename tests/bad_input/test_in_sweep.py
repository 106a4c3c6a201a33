"""Bad input inside a running sweep: each bad trial is recorded once as failed, with a message
that names the file and what was expected, in the ledger, results.parquet and MLflow; the
other trials finish. The same sweep checks what listens on the network and that no secret
from the environment reaches any output file.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

from tests.bad_input import kit
from tests.bad_input.test_bad_input import make_imagefolder

pytestmark = pytest.mark.slow

SECRETS = {"MLFLOW_TRACKING_PASSWORD": "pw-7f3a9c-in-env",
           "AWS_SECRET_ACCESS_KEY": "aws-51d0e2-in-env",
           "MY_SERVICE_TOKEN": "tok-c0ffee-in-env"}

METHODS = {
    "dense": {"family": "dense", "sparsities": [0]},
    "gmp": {"family": "progressive", "sparsities": [80, 90]},
    "acdc": {"family": "regularization", "sparsities": [80, 90]},
    "str": {"family": "regularization", "sparsities": [80, 90]},
    "rigl_erk1x": {"family": "regularization", "sparsities": [80]},
    "woodfisher": {"family": "progressive", "sparsities": [80]},
}
TWO = {"classes": 2, "metric": "top1", "group": "general"}
DATASETS = {"digits": kit.DIGITS, "dtd": {"classes": 47, "metric": "top1", "group": "general"},
            "imagefolder:flat": TWO, "imagefolder:badimg": TWO}

# What each bad checkpoint's trials must say (whatever the dataset), and each bad dataset's.
CHECKPOINT_ERRORS = {
    ("gmp", 90): ["gmp_90.pth", "measured global sparsity 80.0", "90% was declared"],
    ("acdc", 80): ["acdc_80.pth", "could not be read (truncated"],
    ("acdc", 90): ["acdc_90.pth", "was refused", "NOT executed"],
    ("str", 80): ["str_80.pth", "no known format", "reference:"],
    ("str", 90): ["str_90.pth", "does not fit architecture 'resnet_tiny'", "shape mismatches"],
    ("rigl_erk1x", 80): ["rigl_erk1x_80.pth", "NaN or infinite values", "bn1.running_var"],
    ("woodfisher", 80): ["woodfisher_80.pth", "does not exist"],
}
DATASET_ERRORS = {
    "dtd": ["dataset 'dtd'", "does not exist", "Expected layout"],
    "imagefolder:flat": ["flat", "test/ or val/", "Expected layout"],
    "imagefolder:badimg": ["cannot read image file", "badimg/train/b/1.png"],
}


def make_inputs(root: Path) -> tuple[Path, Path, Path]:
    """Checkpoints and data of the bad-input study; returns (study file, marker, data root)."""
    ckpt = root / "ckpt"
    zoo = ckpt / kit.ARCH
    kit.write_good_zoo(ckpt, sparsities=(80,))
    good80 = kit.magnitude_prune(kit.tiny_model(), 0.8)
    kit.save_checkpoint(zoo / "gmp_90.pth", good80)  # declared 90, is 80
    kit.save_checkpoint(zoo / "acdc_80.pth", good80)
    data = (zoo / "acdc_80.pth").read_bytes()
    (zoo / "acdc_80.pth").write_bytes(data[: len(data) // 3])
    marker = root / "pwned"
    payload = torch.load(zoo / "gmp_80.pth", weights_only=True)
    payload["extra"] = kit.RunsCode(marker)
    torch.save(payload, zoo / "acdc_90.pth")
    torch.save({"weights": [1, 2], "note": "not a model"}, zoo / "str_80.pth")
    sd = kit.magnitude_prune(kit.tiny_model(), 0.9).state_dict()
    sd["conv1.weight"] = torch.zeros(16, 3, 5, 5)
    torch.save(sd, zoo / "str_90.pth")
    diverged = kit.magnitude_prune(kit.tiny_model(), 0.8)
    with torch.no_grad():
        diverged.bn1.running_var.fill_(float("nan"))  # an upstream run that blew up
    kit.save_checkpoint(zoo / "rigl_erk1x_80.pth", diverged)

    data_root = root / "data"
    make_imagefolder(data_root / "flat", splits=("train",))
    make_imagefolder(data_root / "badimg")
    (data_root / "badimg" / "train" / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 50)
    study = kit.write_study(root / "bad_study.yaml", ckpt_dir=ckpt, data_root=data_root,
                            methods=METHODS, datasets=DATASETS)
    return study, marker, data_root


def expected_error(method: str, sparsity: int, dataset: str) -> list[str] | None:
    if (method, sparsity) in CHECKPOINT_ERRORS:
        return CHECKPOINT_ERRORS[(method, sparsity)]
    if dataset in DATASET_ERRORS:
        return DATASET_ERRORS[dataset]
    return None  # must finish


def test_bad_inputs_inside_a_sweep(tmp_path):
    study, marker, _ = make_inputs(tmp_path)
    out = tmp_path / "out"
    sweep = kit.Sweep(["--study", str(study), "--out", str(out)], tmp_path / "sweep.log",
                      env=SECRETS)
    sockets: set[tuple[str, str, int]] = set()
    try:
        def watch() -> bool:
            sockets.update((n, ip, port) for n, _, ip, port in
                           kit.listening_sockets(kit.session_pids(sweep.sid)))
            return not sweep.alive()
        sweep.wait_for("the end of the sweep", watch, timeout=900, every=0.5)
        code = sweep.wait(timeout=30)
    finally:
        sweep.kill()
    log = sweep.output()
    assert code == 1, log[-3000:]  # some trials failed, none crashed the sweep
    assert "Traceback" not in log, log[-5000:]

    # Nothing listens beyond this machine (the dashboard is off; Ray binds 127.0.0.1).
    print("listening:", sorted({(n, ip) for n, ip, _ in sockets}))
    assert sockets, "saw no listening socket at all: the watcher is broken"
    assert all(kit.is_loopback(ip) for _, ip, _ in sockets), sorted(sockets)
    assert not any("dashboard" in n.lower() and not kit.is_loopback(ip) for n, ip, _ in sockets)

    # The checkpoint that would run code was refused everywhere and never ran.
    assert not marker.exists()

    # The transfer trials (each backbone's checkpoint-stage trial is checked by its own tests)
    entries = {t: e for t, e in kit.ledger(out).items()
               if e["spec"]["stage"] in ("linear", "full")}
    df = kit.results(out).set_index("trial_id")
    runs = kit.trial_runs(out)
    backbones = sum(len(m["sparsities"]) for m in METHODS.values())
    assert len(entries) == backbones * len(DATASETS)
    finished = []
    for tid, e in entries.items():
        spec = e["spec"]
        want = expected_error(spec["method"], spec["sparsity"], spec["dataset"])
        assert len(runs[tid]) == 1, tid  # one MLflow run per trial
        run = runs[tid][0]
        row = df.loc[tid]
        if want is None:
            assert e["status"] == "finished", (tid, e.get("error"))
            assert row["status"] == "finished" and run.info.status == "FINISHED"
            assert 0 <= e["metrics"]["accuracy"] <= 100
            finished.append(tid)
            continue
        assert e["status"] == "failed", tid
        for fragment in want:
            assert fragment in e["error"], (tid, fragment, e["error"])
        assert "\n" not in e["error"].strip() and "Traceback" not in e["error"]
        assert row["status"] == "failed" and row["error"] == e["error"]
        assert run.info.status == "FAILED" and run.data.tags["error"] == e["error"]
    assert sorted(entries[t]["spec"]["method"] for t in finished) == ["dense", "gmp"]

    # No secret from the environment, and not the tracking URI, in anything the sweep wrote.
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()]
    for value in SECRETS.values():
        assert value not in log
        assert not any(value.encode() in b for b in blobs), value
    for r in kit.mlflow_runs(out):
        for k, v in {**r.data.params, **r.data.tags}.items():
            assert "sqlite:" not in v and "mlflow.db" not in v, (k, v)
    for name in ("results.parquet", "report/report.md", *(f"trials/{t}.json" for t in entries)):
        assert b"mlflow.db" not in (out / name).read_bytes(), name


def test_nan_loss_in_ray_train_fails_once_and_the_rest_finishes(tmp_path):
    """Full finetuning under Ray Train with a learning rate of 1e30 on one dataset: the NaN
    loss comes back wrapped in Ray Train's WorkerGroupError; the trial must be recorded as
    failed once (no Tune or Train retries) while the other dataset's trial finishes."""
    ckpt = tmp_path / "ckpt"
    kit.write_good_zoo(ckpt, sparsities=())
    full = {**kit.FULL, "trainer": "ray_train", "recipe": {**kit.FULL["recipe"], "epochs": 1}}
    datasets = {"digits": {**kit.DIGITS, "full_lr": 1e30},
                "textures": {"classes": 6, "metric": "mean_per_class", "group": "general",
                             "full_lr": 0.01}}
    study = kit.write_study(tmp_path / "study.yaml", ckpt_dir=ckpt, modes={"full": full},
                            methods={"dense": {"family": "dense", "sparsities": [0]}},
                            datasets=datasets)
    out = tmp_path / "out"
    sweep = kit.Sweep(["--study", str(study), "--out", str(out)], tmp_path / "sweep.log")
    t0 = time.monotonic()
    try:
        code = sweep.wait(timeout=600)
    finally:
        sweep.kill()
    log = sweep.output()
    assert code == 1, log[-3000:]
    assert "Trial task failed" not in log and "Traceback" not in log, log[-5000:]
    entries = {e["spec"]["dataset"]: e for e in kit.ledger(out).values()}
    assert entries["textures"]["status"] == "finished"
    err = entries["digits"]["error"]
    assert entries["digits"]["status"] == "failed"
    assert re.match(r"Diverged: training loss is (nan|inf) in epoch 1: the run "
                    "diverged", err), err
    # (the checkpoint stage's trial of the dense backbone is a run of its own)
    runs = {t: v for t, v in kit.trial_runs(out).items() if t.startswith("full-")}
    assert len(runs) == 2 and all(len(v) == 1 for v in runs.values())
    assert kit.results(out).set_index("dataset").loc["digits", "error"] == err
    print(f"NaN sweep took {time.monotonic() - t0:.0f}s")


FULL_DISK_AT_RESULTS = '''
import errno
import pandas as pd

_to_parquet = pd.DataFrame.to_parquet


def to_parquet(self, path, *args, **kwargs):
    if "results.parquet" in str(path):  # the disk fills up half-way through this file
        with open(path, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, "No space left on device")
    return _to_parquet(self, path, *args, **kwargs)


pd.DataFrame.to_parquet = to_parquet
'''


def test_full_disk_while_writing_results_stops_cleanly_and_rerun_recomputes_nothing(tmp_path):
    ckpt = tmp_path / "ckpt"
    kit.write_good_zoo(ckpt, sparsities=())
    study = kit.write_study(tmp_path / "study.yaml", ckpt_dir=ckpt,
                            methods={"dense": {"family": "dense", "sparsities": [0]}})
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(FULL_DISK_AT_RESULTS)
    out = tmp_path / "out"
    args = ["--study", str(study), "--out", str(out)]

    full = kit.Sweep(args, tmp_path / "full.log", env={"PYTHONPATH": str(inject)})
    try:
        code = full.wait(timeout=400)
    finally:
        full.kill()
    log = full.output()
    assert code == 3, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert f"error: [Errno 28] could not write {out / 'results.parquet'}: No space left" in log
    assert "finished trials are saved" in log
    assert not (out / "results.parquet").exists()
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]
    (entry,) = [e for e in kit.ledger(out).values() if e["spec"]["stage"] == "linear"]
    assert entry["status"] == "finished"

    again = kit.Sweep(args, tmp_path / "again.log")
    try:
        code = again.wait(timeout=400)
    finally:
        again.kill()
    assert code == 0, again.output()[-3000:]
    assert "[linear] all 1 trial(s) already done" in again.output()
    assert kit.ledger(out)[entry["trial_id"]] == entry  # not recomputed
    assert kit.results(out)["status"].tolist() == ["finished", "finished"]  # checkpoint, linear
