"""Secrets are never printed or stored: every URI and address is masked by one function
(``common.masking.redact``: user info, and query parameters named like a secret) wherever it
is printed, logged, tagged or stored, and a message about a file's content never quotes it.

Each secret below is a unique word, so a test can search any output for it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from common.masking import redact
from orchestrator import sweep
from tests.bad_input import kit

PW = "hunter2-5e1f"  # every secret of this file contains it


@pytest.mark.parametrize("uri, masked", [
    ("http://user:PW@127.0.0.1:5000", "http://***@127.0.0.1:5000"),
    ("https://PW@mlflow.example.com/", "https://***@mlflow.example.com/"),
    ("ray://admin:PW@10.0.0.5:10001", "ray://***@10.0.0.5:10001"),
    ("postgresql+psycopg2://mlflow:PW@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
    ("http://h:5000/?token=PW", "http://h:5000/?token=***"),
    ("http://h:5000/path?x=1&password=PW&y=2", "http://h:5000/path?x=1&password=***&y=2"),
    ("https://h/api?api_key=PW", "https://h/api?api_key=***"),
    ("https://h/api?API-KEY=PW#frag", "https://h/api?API-KEY=***#frag"),
    ("https://b.s3.amazonaws.com/x?X-Amz-Credential=PW&X-Amz-Signature=PW",
     "https://b.s3.amazonaws.com/x?X-Amz-Credential=***&X-Amz-Signature=***"),
    ("https://acct.blob.core.windows.net/c?sv=2020&sig=PW", "https://acct.blob.core.windows.net/c?sv=2020&sig=***"),
    ("http://h/?client_secret=PW&user=me", "http://h/?client_secret=***&user=me"),
    ("sqlite:////data/mlflow.db?auth_token=PW", "sqlite:////data/mlflow.db?auth_token=***"),
    ("mysql://u:PW@h/db?ssl_key=PW", "mysql://***@h/db?ssl_key=***"),
], ids=lambda v: v if "://" in v and "***" not in v else "")
def test_every_uri_is_masked(uri, masked):
    uri, masked = uri.replace("PW", PW), masked.replace("PW", PW)
    assert redact(uri) == masked
    assert redact(f"error: cannot use {uri!r}, retried 3 times") == (
        f"error: cannot use {masked!r}, retried 3 times")  # inside a message too
    assert redact(masked) == masked  # idempotent


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning",
    "sqlite:////abs/runs/tiny/mlflow.db", "/data/runs/tiny", "10.0.0.5:6379", "auto",
    "http://h/?monkey_business=1",  # over-masking is harmless, but plain params stay
])
def test_what_holds_no_secret_is_left_as_it_is(text):
    if "monkey" in text:
        assert redact(text) == "http://h/?monkey_business=***"  # "key": masked, harmlessly
    else:
        assert redact(text) == text


# ---------------------------------------------------------------------------------------
# Wherever a URI or address is printed


def _port() -> int:
    return kit.free_port()


PRINTED = {
    "scheme": ["--tracking-uri", f"foo://u:{PW}@h/?token={PW}", "--dry-run"],
    "file-store": ["--tracking-uri", f"file:///tmp/m?token={PW}", "--dry-run"],
    "memory": ["--tracking-uri", f"sqlite:///:memory:?password={PW}", "--dry-run"],
    "server-down": ["--study", "paper", "--tracking-uri", f"http://u:{PW}@127.0.0.1:{{port}}"],
    "server-token": ["--study", "paper", "--tracking-uri",
                     f"http://127.0.0.1:{{port}}/?token={PW}"],
    "ray-userinfo": ["--study", "paper", "--address", f"ray://admin:{PW}@127.0.0.1:{{port}}"],
    "ray-bad-form": ["--study", "paper", "--address", f"ray://admin:{PW}@nohost"],
    "dashboard": ["--study", "paper", "--address", f"http://127.0.0.1:8265/?token={PW}"],
}


@pytest.mark.parametrize("where", sorted(PRINTED))
def test_refusals_never_print_a_secret(in_tmp, capsys, where):
    argv = [a.replace("{port}", str(_port())) for a in PRINTED[where]]
    t0 = time.monotonic()
    assert sweep.main(argv + ["--out", str(in_tmp / "out")]) == 2
    assert time.monotonic() - t0 < 60
    captured = capsys.readouterr()
    assert captured.err.startswith("error: "), captured.err
    assert PW not in captured.err + captured.out, captured.err
    assert "***" in captured.err, captured.err
    assert list(in_tmp.iterdir()) == []


def test_ray_address_from_the_environment_is_masked(in_tmp, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"ray://admin:{PW}@127.0.0.1:{_port()}")
    assert sweep.main(["--study", "paper", "--out", str(in_tmp / "out")]) == 2
    err = capsys.readouterr().err
    assert PW not in err and "RAY_ADDRESS 'ray://***@127.0.0.1:" in err, err


@pytest.fixture
def terminal():
    """The sweep's terminal logging, as the CLI sets it up: what ``say`` writes reaches
    stderr through the masking formatter."""
    from orchestrator.logs import LogSettings, sweep_logging

    with sweep_logging(LogSettings()):
        yield


def test_the_study_line_masks_the_cluster_and_the_store(capsys, tmp_path, terminal):
    from orchestrator.options import SweepOptions
    from orchestrator.runner import announce, mlflow_hint
    from search_spaces.loader import load_study

    options = SweepOptions(out_dir=tmp_path, address=f"ray://admin:{PW}@head:10001")
    announce(load_study("tiny"), options, _empty_grid(), f"http://u:{PW}@h:5000/?token={PW}")
    print(mlflow_hint(f"http://h:5000/?access_token={PW}", "1"))
    captured = capsys.readouterr()
    assert "Ray ray://***@head:10001" in captured.err and "MLflow http://***@h" in captured.err
    assert PW not in captured.err + captured.out


def _empty_grid():
    from orchestrator.grid import Grid
    from search_spaces.loader import load_study

    return Grid(study=load_study("tiny"), out_dir=Path("."))


def test_the_resume_command_and_the_lock_file_mask_the_uri(tmp_path):
    from orchestrator.options import SweepOptions
    from orchestrator.runner import resume_command, shown_command

    command = sweep.command_line(["--tracking-uri", f"http://u:{PW}@h:5000/?token={PW}"])
    options = SweepOptions(out_dir=tmp_path, command=command)
    for shown in (shown_command(options), resume_command(options, environ={})):
        assert PW not in shown and "http://***@h:5000/?token=***" in shown, shown


def test_the_reports_command_masks_the_store(tmp_path, capsys, monkeypatch):
    from reports.__main__ import main

    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    for uri in (f"sqlite:///{tmp_path}/none.db?token={PW}",
                f"http://u:{PW}@127.0.0.1:{_port()}/?token={PW}"):
        assert main(["--mlflow-uri", uri, "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert PW not in err and "***" in err, err


def test_a_tracking_outage_warning_masks_the_server(capsys, terminal):
    from orchestrator.logs import say
    from orchestrator.tracking_outage import Tolerant

    class Down:
        uri = f"http://u:{PW}@h:5000/?token={PW}"

        def log(self):
            raise ConnectionError(f"HTTPConnectionPool: {self.uri} refused")

    Tolerant(Down(), say).log()
    err = capsys.readouterr().err
    assert "warning: MLflow at http://***@h:5000/?token=*** failed" in err and PW not in err


def test_the_log_formatter_masks_what_a_library_logs(tmp_path, capsys):
    """A record of Ray's or MLflow's own logger, forwarded to the run's log file, and any of
    the sweep's own records are masked there and on the terminal."""
    import logging

    from orchestrator.logs import LogSettings, current_log_file, sweep_logging

    with sweep_logging(LogSettings(), tmp_path) as log:
        logging.getLogger("mlflow").warning("retrying http://u:%s@h:5000/?token=%s", PW, PW)
        logging.getLogger("orchestrator").info("joined ray://admin:%s@head:10001", PW)
        assert current_log_file() == log
    text = log.read_text(encoding="utf-8")
    err = capsys.readouterr().err
    assert "http://***@h:5000/?token=***" in text and "ray://***@head:10001" in text
    assert "ray://***@head:10001" in err and PW not in text + err


# ---------------------------------------------------------------------------------------
# Wherever an error is stored: the trial's message, the ledger, MLflow's tags


def test_a_failed_trials_message_is_masked_where_it_is_made():
    from common.errors import BadInput
    from trainables.entry.context import TrialContext
    from trainables.entry.trial import run_trial

    def entry(spec, ctx, report):
        raise BadInput(f"cannot fetch https://h/data.tar?X-Amz-Signature={PW}: 403")

    spec = _spec()
    result = run_trial(entry, spec, TrialContext(out_dir=".", rehearsal=True), lambda r: None)
    assert result["status"] == "failed" and PW not in result["error"]
    assert "X-Amz-Signature=***" in result["error"]


def _spec():
    from search_spaces.trial import TrialSpec

    return TrialSpec(stage="linear", method="gmp", sparsity=80, arch="resnet_tiny",
                     dataset="digits", seed=1)


@pytest.mark.parametrize("status", ["failed", "error"])
def test_the_ledger_and_mlflow_store_errors_masked(tmp_path, status):
    from orchestrator.ledger import Ledger
    from orchestrator.progress import record_error, record_failure
    from orchestrator.tracking import Tracker

    ledger = Ledger(tmp_path / "trials")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="sparse-transfer/t",
                      artifact_location=(tmp_path / "mlartifacts").as_uri())
    text = f"could not read http://u:{PW}@h/x?token={PW}"
    if status == "failed":
        record_failure(ledger, tracker, _spec(), text)
    else:
        record_error(ledger, tracker, _spec(), f"Traceback ...\nOSError: {text}", attempts=3)
    for path in (tmp_path / "trials").iterdir():
        assert PW not in path.read_text(), path
    assert PW.encode() not in (tmp_path / "mlflow.db").read_bytes()
    runs = kit.trial_runs(tmp_path)
    (run,) = runs[_spec().trial_id]
    assert "http://***@h/x?token=***" in run.data.tags["error"]


# ---------------------------------------------------------------------------------------
# A message about a file's content never quotes it


CREDENTIALS = {
    "aws-ini": f"[default]\naws_access_key_id = AKIA{PW}\naws_secret_access_key = {PW}\n",
    "netrc": f"machine example.com login me password {PW}\n",
    "env-file": f"MLFLOW_TRACKING_PASSWORD={PW}\nTOKEN={PW}\n",
    "json-key": json.dumps({"type": "service_account", "private_key": PW}),
    "pem": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PW}\n-----END OPENSSH PRIVATE KEY-----\n",
    "html": f"<!DOCTYPE html><html><body>session {PW}</body></html>",
    "short": PW,
}
KIND_WORDS = {"aws-ini": "INI-style", "netrc": "plain text", "env-file": "plain text",
              "json-key": "JSON", "pem": "PEM file", "html": "HTML page", "short": "plain text"}


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_a_checkpoint_path_at_a_credentials_file_is_never_quoted(tmp_path, capsys, kind):
    from trainables.checkpoints.__main__ import main

    path = tmp_path / "model.pth"
    path.write_text(CREDENTIALS[kind])
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "is a text file" in err and KIND_WORDS[kind] in err, err
    assert PW not in err and "AKIA" not in err and "private_key" not in err, err
    assert f"{path.stat().st_size:,} bytes" in err


def test_binary_content_is_not_quoted_either(tmp_path, capsys):
    from trainables.checkpoints.__main__ import main

    path = tmp_path / "id_ed25519.der"
    path.write_bytes(bytes([0x30, 0x82, 0x04, 0xA4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01]))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "match no known file type" in err and "30 82" not in err, err
