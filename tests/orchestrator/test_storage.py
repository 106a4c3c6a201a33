"""``--storage s3://...`` against a real S3 server on 127.0.0.1 (moto's, started and stopped
here): a storage the sweep cannot use is refused before anything starts, naming the URI with
its credentials masked; the smoke study killed mid-full-finetuning and rerun finishes every
trial exactly once with nothing written outside the driver's folder; a storage that stops
answering mid-run stops the sweep with one message and loses nothing."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.bad_input import kit
from tests.common.s3_server import Gate, S3Server, start_s3_server

BUCKET = "sweep-bucket"
# What the driver keeps in --out under --storage: nothing a trial writes.
DRIVER_FILES = {"trials", "mlflow.db", "mlartifacts", "sweep.lock", "results.parquet",
                "report", "outputs-stamp.json", ".checkpoint_hashes.json",
                # the driver's own records: the study as run, which study the folder holds,
                # each run's log file, matplotlib's font cache (kept out of $HOME)
                "study.yaml", "study.json", "logs", ".cache"}


@pytest.fixture
def s3(tmp_path) -> S3Server:
    server = start_s3_server(tmp_path)
    server.make_bucket(BUCKET)
    yield server
    server.stop()


def _refused(args: list[str], env: dict[str, str], out: Path) -> str:
    done = kit.run_cli(kit.sweep_cmd(*args, "--out", str(out)), env=env, timeout=180)
    assert done.returncode == 2, done.stdout + done.stderr
    assert not out.exists(), "nothing may be written before the storage is checked"
    assert kit.one_paragraph(done.stderr), done.stderr
    return done.stderr


def test_a_storage_the_sweep_cannot_use_is_refused_before_anything_starts(s3, tmp_path):
    smoke = ["--smoke-test", "--storage"]
    err = _refused(smoke + ["s3://no-such-bucket/runs"], s3.env, tmp_path / "a")
    assert err.startswith("error: --storage s3://no-such-bucket/runs: the bucket does not exist")

    # Credentials in the URI are never shown (pyarrow reads s3://KEY:SECRET@bucket).
    err = _refused(smoke + ["s3://AKIAEXAMPLEKEY:Sup3rS3cret@no-such-bucket/runs"], s3.env,
                   tmp_path / "b")
    assert "s3://***@no-such-bucket/runs" in err and "Sup3rS3cret" not in err

    dead = {**s3.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{kit.free_port()}"}
    err = _refused(smoke + [f"s3://{BUCKET}/runs"], dead, tmp_path / "c")
    assert f"--storage s3://{BUCKET}/runs: nothing answers at the storage's endpoint" in err

    err = _refused(smoke + ["runs/local"], s3.env, tmp_path / "d")
    assert "expected a URI of cloud storage such as s3://bucket/prefix" in err


def test_wrong_credentials_are_refused_naming_the_uri(tmp_path):
    server = start_s3_server(tmp_path, check_credentials=True)
    try:
        server.make_bucket(BUCKET)
        wrong = {**server.env, "AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1",
                 "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
        err = _refused(["--smoke-test", "--storage", f"s3://{BUCKET}/runs"], wrong,
                       tmp_path / "out")
        assert err.startswith(f"error: --storage s3://{BUCKET}/runs: the storage refused this "
                              "machine's credentials")
        assert "not-the-secret" not in err
    finally:
        server.stop()


# What libraries leave in HOME and TMPDIR whatever the sweep does: Ray's session folder (its
# logs, sockets, the driver's staging copy of Tune's experiment state) and token, the
# libraries' caches and settings (matplotlib, MLflow), torch's compile cache and ONNX
# Runtime's session marker (``.ses``, from the speed stage's dense timing).
LIBRARY_FILES = ("ray", ".ray", ".cache", ".config", ".ses")


def _local_files(*roots: Path) -> list[str]:
    """Files under ``roots`` apart from ``LIBRARY_FILES``."""
    found = []
    for root in roots:
        for p in root.rglob("*"):
            rel = p.relative_to(root).parts
            if p.is_file() and rel[0] not in LIBRARY_FILES and \
                    not rel[0].startswith("torchinductor_"):
                found.append(str(p))
    return found


@pytest.mark.slow
def test_smoke_study_on_s3_killed_mid_full_finetuning_and_rerun(s3, tmp_path, request):
    t0 = time.monotonic()
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    # A short TMPDIR: Ray's session sockets live under it (at most 107 bytes a path).
    tmp = Path(tempfile.mkdtemp(prefix="s3t-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    env = {**s3.env, "HOME": str(home), "TMPDIR": str(tmp)}
    args = ["--smoke-test", "--out", str(out), "--storage", f"s3://{BUCKET}/runs"]

    first = kit.Sweep(args, tmp_path / "1.log", env)
    running = re.compile(r"^\[full\] \d+/(\d+) done .* ([1-9]\d*) running", re.M)
    try:
        total = int(first.wait_for("a full-finetuning trial running",
                                   lambda: running.search(first.output()), timeout=480)[1])
    finally:
        first.kill()
    before = kit.ledger(out)
    finished = sum(e["spec"]["stage"] == "full" for e in before.values())
    assert finished < total, "killed too late: every full trial had finished"

    second = kit.Sweep(args, tmp_path / "2.log", env)
    try:
        code = second.wait(timeout=480)
    finally:
        second.kill()
    log = second.output()
    assert code == 0, log[-3000:]

    everything = kit.ledger(out)
    assert everything and all(e["status"] == "finished" for e in everything.values())
    assert {e["spec"]["stage"] for e in everything.values()} >= {"pretrain", "prune", "linear",
                                                                  "full", "speed"}
    for tid, entry in before.items():
        assert everything[tid] == entry, f"{tid} ran again"
    runs = kit.trial_runs(out)
    assert sorted(runs) == sorted(everything)
    assert all(len(r) == 1 for r in runs.values()), {t: len(r) for t, r in runs.items()}

    # The trials' files are in the bucket, none on this machine outside the driver's folder.
    assert {p.name for p in out.iterdir()} <= DRIVER_FILES, sorted(p.name for p in out.iterdir())
    assert not _local_files(home, tmp), _local_files(home, tmp)
    keys = s3.keys(f"{BUCKET}/runs/out")
    for part in ("ray/full/", "ray/train/", "features/", "zoo/"):
        assert any(f"/runs/out/{part}" in k for k in keys), (part, keys[:20])
    assert not any("/runs/out/onnx" in k for k in keys)
    print(f"smoke on S3, killed in [full] and rerun: {time.monotonic() - t0:.0f}s")


@pytest.mark.slow
def test_a_storage_that_stops_answering_stops_the_sweep_and_loses_nothing(s3, tmp_path):
    ckpt = tmp_path / "ckpt"
    kit.write_good_zoo(ckpt, sparsities=(80,))
    study = kit.write_study(tmp_path / "study.yaml", ckpt_dir=ckpt,
                            modes={"linear": {**kit.LINEAR, "seeds": [21, 51, 81]}})
    gate = Gate(int(s3.endpoint.rsplit(":", 1)[1]))
    gate.open()
    env = {**s3.env, "AWS_ENDPOINT_URL": gate.endpoint}
    out = tmp_path / "out"
    args = ["--study", str(study), "--out", str(out), "--storage",
            f"s3://{BUCKET}/runs?region=us-east-1"]

    first = kit.Sweep(args, tmp_path / "1.log", env)
    try:
        first.wait_for("the linear stage", lambda: "[linear] " in first.output(), timeout=300)
        gate.close()
        code = first.wait(timeout=300)
    finally:
        first.kill()
    log = first.output()
    assert code == 3, log[-3000:]
    assert (f"error: --storage s3://{BUCKET}/runs/out?region=us-east-1: nothing answers at the "
            "storage's endpoint") in log
    assert "the sweep stopped: every finished trial is kept in" in log
    assert log.count("the sweep stopped") == 1
    kept = kit.ledger(out)
    assert kept and all(e["status"] == "finished" for e in kept.values())

    gate.open()
    second = kit.Sweep(args, tmp_path / "2.log", env)
    try:
        assert second.wait(timeout=300) == 0, second.output()[-3000:]
    finally:
        second.kill()
    everything = kit.ledger(out)
    assert all(e["status"] == "finished" for e in everything.values())
    assert sum(e["spec"]["stage"] == "linear" for e in everything.values()) == 6
    for tid, entry in kept.items():
        assert everything[tid] == entry
    runs = kit.trial_runs(out)
    assert all(len(r) == 1 for r in runs.values())
    gate.close()
