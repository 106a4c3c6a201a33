"""The sweep's logging: the terminal's text unchanged (no time unless asked), each run's log
file with times and levels, appended and never overwritten, ``-q`` and ``--log-level``, Ray's
and MLflow's loggers at WARNING unless asked, and everything undone afterwards."""

from __future__ import annotations

import logging
import re

import pytest

from common.errors import BadInput
from orchestrator import logs
from orchestrator.logs import (
    PROGRESS, LogSettings, current_log_file, library_logging, log_files, parse_levels, say,
    sweep_logging,
)

STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (\w+) +([\w.]+): (.*)$")


def test_terminal_keeps_the_text_and_the_file_adds_time_level_and_logger(tmp_path, capsys):
    with sweep_logging(LogSettings(), tmp_path) as path:
        say("[linear] 3/10 done")
        say("warning: MLflow at http://x failed")
        say("error: bad.yaml: modes.full.workers: expected an integer")
        PROGRESS.info("[full] 1/4 done")
        logging.getLogger("trainables.training.full").info("resuming x after epoch 2")
        logging.getLogger("urllib3").info("chatter below WARNING")
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "[linear] 3/10 done", "warning: MLflow at http://x failed",
        "error: bad.yaml: modes.full.workers: expected an integer", "[full] 1/4 done",
        "resuming x after epoch 2"]
    assert path.parent == tmp_path / "logs" and re.fullmatch(r"sweep-\d{8}-\d{6}\.log",
                                                                path.name)
    lines = [STAMPED.match(line).groups() for line in path.read_text().splitlines()]
    assert lines == [
        ("INFO", "orchestrator", "[linear] 3/10 done"),
        ("WARNING", "orchestrator", "warning: MLflow at http://x failed"),
        ("ERROR", "orchestrator", "error: bad.yaml: modes.full.workers: expected an integer"),
        ("INFO", "orchestrator.progress", "[full] 1/4 done"),
        ("INFO", "trainables.training.full", "resuming x after epoch 2")]
    assert current_log_file() is None  # the block's handlers are gone
    assert not [h for h in logging.getLogger().handlers if hasattr(h, logs._MARK)]


def test_each_run_appends_its_own_file_and_a_rerun_loses_nothing(tmp_path, monkeypatch):
    times = iter(["sweep-20250101-080000.log", "sweep-20250101-090000.log",
                  "sweep-20250101-090000.log"])
    monkeypatch.setattr(logs, "log_file_name", lambda started=None: next(times))
    for text in ("first run", "second run", "third run, the same second"):
        with sweep_logging(LogSettings(), tmp_path):
            say(text)
    first, second = log_files(tmp_path)
    assert [first.name, second.name] == ["sweep-20250101-080000.log", "sweep-20250101-090000.log"]
    assert first.read_text().count("\n") == 1 and "first run" in first.read_text()
    assert [STAMPED.match(line).group(3) for line in second.read_text().splitlines()] == [
        "second run", "third run, the same second"]


def test_a_run_that_logs_nothing_leaves_no_file(tmp_path):
    with sweep_logging(LogSettings(), tmp_path):
        pass
    assert log_files(tmp_path) == []


def test_quiet_leaves_progress_off_the_terminal_only(tmp_path, capsys):
    with sweep_logging(LogSettings(quiet=True), tmp_path) as path:
        PROGRESS.info("[linear] 3/10 done")
        say("[linear] 10 trial(s) to run")
    assert capsys.readouterr().err == "[linear] 10 trial(s) to run\n"
    assert "[linear] 3/10 done" in path.read_text()


def test_log_level_and_terminal_timestamps(tmp_path, capsys):
    settings = LogSettings(level="WARNING", timestamps=True)
    with sweep_logging(settings, tmp_path) as path:
        say("an info line")
        say("warning: kept")
        logging.getLogger("orchestrator.speed_pool").debug("hidden")
    (line,) = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} warning: kept", line)
    assert "an info line" not in path.read_text()
    with sweep_logging(LogSettings(level="DEBUG"), tmp_path / "b") as path:
        logging.getLogger("orchestrator.speed_pool").debug("speed pool: 1 actor(s)")
    assert "DEBUG   orchestrator.speed_pool: speed pool: 1 actor(s)" in path.read_text()


def test_ray_and_mlflow_stay_at_warning_unless_asked_and_reach_the_file(tmp_path, capsys):
    import mlflow  # noqa: F401 - its import configures its loggers (handlers replaced)

    mlflow_log = logging.getLogger("mlflow")
    before = {name: logging.getLogger(name).level for name in ("ray", "mlflow", "alembic")}
    with sweep_logging(LogSettings(), tmp_path) as path:
        assert logging.getLogger("ray").level == logging.WARNING
        assert mlflow_log.level == logging.WARNING
        mlflow_log.info("MLflow chatter")
        mlflow_log.warning("MLflow warning")
        logging.getLogger("ray.tune").warning("Tune warning")
    text = path.read_text()
    assert "MLflow chatter" not in text and "Tune warning" in text
    assert re.search(r" WARNING mlflow: MLflow warning$", text, re.M)
    with sweep_logging(LogSettings(levels=(("mlflow", "INFO"),)), tmp_path / "b") as path:
        library_logging(LogSettings(levels=(("mlflow", "INFO"),)))  # again, as after ray.init
        mlflow_log.info("asked for")
    assert path.read_text().count("asked for") == 1  # one forwarder, however often set up
    after = {name: logging.getLogger(name).level for name in before}
    assert after == before
    assert not [h for h in mlflow_log.handlers if hasattr(h, logs._MARK)]


def test_a_nested_block_keeps_the_outer_handlers(tmp_path, capsys):
    with sweep_logging(LogSettings()):  # the CLI: the terminal from the start
        with sweep_logging(LogSettings(), tmp_path) as path:  # run_sweep: the file
            say("inside")
            with sweep_logging(LogSettings(), tmp_path / "other") as same:
                assert same == path  # one file per run
        assert current_log_file() is None
        say("outside")
    assert capsys.readouterr().err == "inside\noutside\n"
    assert "inside" in path.read_text() and "outside" not in path.read_text()


def test_log_levels_parse_and_refuse():
    assert parse_levels([]) == ("INFO", ())
    assert parse_levels(["debug"]) == ("DEBUG", ())
    assert parse_levels(["ray=INFO,mlflow=debug", "WARNING"]) == (
        "WARNING", (("mlflow", "DEBUG"), ("ray", "INFO")))
    for bad in ("loud", "ray=", "=INFO", "ray=chatty"):
        with pytest.raises(BadInput, match="--log-level"):
            parse_levels([bad])
