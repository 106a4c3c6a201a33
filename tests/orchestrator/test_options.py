"""Options a sweep cannot run with: each exits 2 with one paragraph that names the
option and what was expected, with no traceback, before Ray starts or anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import sweep
from orchestrator.options import check_tracking_uri
from common.errors import BadInput
from tests.bad_input import kit

TINY = (Path(__file__).resolve().parents[2] / "search_spaces" / "tiny.yaml").read_text()


def refused(capsys, argv: list[str], words: list[str]) -> str:
    assert sweep.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and kit.one_paragraph(err), err
    for w in words:
        assert w in err, (w, err)
    return err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run from an empty folder: a refused run must leave it empty (no runs/, no mlflow.db)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


# (d) empty selections; (e) options that crashed or waited; (f) stores that lose data
BAD_OPTIONS = [
    (["--archs", ""], ["--archs", "empty selection", "resnet_tiny"]),
    (["--archs", ","], ["--archs", "empty selection"]),
    (["--datasets", ""], ["--datasets", "empty selection", "digits"]),
    (["--datasets", " , "], ["--datasets", "empty selection"]),
    (["--modes", ""], ["--modes", "empty selection", "linear, full"]),
    (["--sparsities", ","], ["--sparsities", "empty selection", "80, 90"]),
    (["--sparsities", ""], ["--sparsities", "empty selection"]),
    (["--methods", ""], ["--methods", "empty selection", "gmp"]),
    (["--study", ""], ["study ''", "built-in"]),
    (["--study", "."], ["is a directory", "study YAML file"]),
    (["--study", "/"], ["is a directory"]),
    (["--num-cpus", "0"], ["--num-cpus", ">= 1", "got 0"]),
    (["--num-cpus", "-1"], ["--num-cpus", ">= 1", "got -1"]),
    (["--max-concurrent", "0"], ["--max-concurrent", ">= 1"]),
    (["--max-failures", "-1"], ["--max-failures", ">= 0"]),
    (["--out", "/dev/null"], ["--out", "/dev/null", "not a folder"]),
    (["--out", "/dev/null/x"], ["--out", "cannot be made", "/dev/null is not a folder"]),
    (["--tracking-uri", "sqlite:///"], ["--tracking-uri", "in-memory", "lost"]),
    (["--tracking-uri", "sqlite://"], ["in-memory"]),
    (["--tracking-uri", "sqlite:///:memory:"], ["in-memory"]),
    (["--tracking-uri", "sqlite://:memory:"], ["in-memory"]),
    (["--tracking-uri", "sqlite:///?mode=memory"], ["in-memory"]),
    (["--tracking-uri", " "], ["--tracking-uri", "empty"]),
]


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("argv, words", BAD_OPTIONS)
def test_bad_option_exits_2_before_writing(in_tmp, capsys, argv, words, dry_run):
    refused(capsys, [*argv, *(["--dry-run"] if dry_run else [])], words)
    assert list(in_tmp.iterdir()) == []


def test_existing_file_as_out(in_tmp, capsys):
    (in_tmp / "taken").write_text("mine")
    refused(capsys, ["--out", "taken"], ["--out", "taken", "not a folder"])
    assert (in_tmp / "taken").read_text() == "mine"


def test_in_memory_store_from_the_environment(in_tmp, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite://")
    refused(capsys, ["--dry-run"], ["MLFLOW_TRACKING_URI", "in-memory"])


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "", "a/b", ".."])
def test_study_name_cannot_move_the_output_folder(in_tmp, capsys, name):
    study = in_tmp.parent / f"{in_tmp.name}-study.yaml"
    study.write_text(TINY.replace("name: tiny", f"name: {name!r}", 1))
    refused(capsys, ["--study", str(study)], ["name:", "folder name"])
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("text", ["extra_archs: 5", "data_root: [a, b]", "archs: resnet_tiny",
                                  "arch: resnet9000"])
def test_study_values_that_crashed(in_tmp, capsys, text):
    study = in_tmp.parent / f"{in_tmp.name}-study.yaml"
    key = text.split(":")[0]
    lines = [ln for ln in TINY.splitlines() if not ln.startswith(f"{key}:")]
    study.write_text("\n".join([*lines, text]) + "\n")
    refused(capsys, ["--study", str(study), "--dry-run"], [f"{key}:"])


@pytest.mark.parametrize("uri", ["sqlite:///runs/mlflow.db", "sqlite:////{tmp}/mlflow.db",
                                 "http://127.0.0.1:5000", "postgresql+psycopg2://u@h/db",
                                 "databricks", None])
def test_stores_that_keep_data_pass(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # a SQLite store's folder must exist (test_round_three)
    check_tracking_uri(uri.format(tmp=tmp_path) if uri else uri)


def test_random_bytes_as_study(in_tmp, capsys):
    (in_tmp / "s.yaml").write_bytes(bytes(range(256)) * 4)
    refused(capsys, ["--study", "s.yaml", "--dry-run"], ["s.yaml"])


def test_good_options_still_dry_run(in_tmp, capsys):
    assert sweep.main(["--dry-run", "--archs", "resnet_tiny", "--num-cpus", "1",
                       "--tracking-uri", "sqlite:///x.db"]) == 0
    assert "output folder: runs/tiny" in capsys.readouterr().out
    with pytest.raises(BadInput):
        check_tracking_uri("sqlite:///")
