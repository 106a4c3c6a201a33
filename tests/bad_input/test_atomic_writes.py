"""Files that others read are written atomically (temporary file, then rename): a crash in
the middle of a write leaves the previous file intact and no temporary file behind.

The crash is an exception injected after part of the new content was written, standing in
for a kill or an I/O error at the worst moment.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.bad_input import kit


class Crash(RuntimeError):
    pass


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_results_parquet(tmp_path, monkeypatch):
    from orchestrator.aggregate import write_results

    path = tmp_path / "results.parquet"
    write_results(pd.DataFrame({"trial_id": ["a"], "accuracy": [50.0]}), path)
    before = path.read_bytes()

    def half_then_crash(self, target, **kw):
        Path(target).write_bytes(before[: len(before) // 2])
        raise Crash("killed while writing")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_then_crash)
    with pytest.raises(Crash):
        write_results(pd.DataFrame({"trial_id": ["a", "b"], "accuracy": [50.0, 60.0]}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert pd.read_parquet(path)["trial_id"].tolist() == ["a"]
    assert temp_files(tmp_path) == []


def test_ledger_entry(tmp_path, monkeypatch):
    from orchestrator.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.record("t1", {"status": "finished", "metrics": {"accuracy": 50.0}})
    before = (tmp_path / "t1.json").read_text()

    def crash(fd):
        raise Crash("killed before the data reached the disk")

    monkeypatch.setattr(os, "fsync", crash)  # the new text is written, not yet renamed
    with pytest.raises(Crash):
        ledger.record("t1", {"status": "failed", "error": "boom"})
    monkeypatch.undo()
    assert (tmp_path / "t1.json").read_text() == before
    assert ledger.status("t1") == "finished"
    assert temp_files(tmp_path) == []
    assert [e["trial_id"] for e in ledger.entries()] == ["t1"]


def test_ledger_ignores_a_torn_temporary_file(tmp_path):
    """A kill -9 cannot clean up: a leftover temporary file must not count as an entry."""
    from orchestrator.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.record("t1", {"status": "finished"})
    (tmp_path / ".t2.json.tmp-12345").write_text('{"status": "fini')
    (tmp_path / "t3.json").write_text('{"status": "fini')  # torn by something else
    assert [e["trial_id"] for e in ledger.entries()] == ["t1"]
    assert ledger.status("t2") is None and ledger.status("t3") is None  # rerun, not lost


def test_feature_cache_entry(tmp_path, monkeypatch):
    from trainables.training.features import FeatureCache

    cache = FeatureCache(tmp_path)
    old = {"checkpoint": "old", "split": "train"}
    cache.get_or_compute(old, lambda: (np.ones((4, 3), np.float32), np.arange(4)))
    old_bytes = cache.path_for(old).read_bytes()

    def half_then_crash(fh, **arrays):
        fh.write(b"PK\x03\x04 partial zip")
        raise Crash("killed while writing")

    monkeypatch.setattr(np, "savez", half_then_crash)
    new = {"checkpoint": "new", "split": "train"}
    with pytest.raises(Crash):
        cache.get_or_compute(new, lambda: (np.zeros((4, 3), np.float32), np.arange(4)))
    monkeypatch.undo()
    assert not cache.path_for(new).exists()
    assert cache.path_for(old).read_bytes() == old_bytes
    assert temp_files(tmp_path) == []


def test_zoo_checkpoint(tmp_path, monkeypatch):
    from trainables import checkpoints as ck

    path = kit.save_checkpoint(tmp_path / "zoo" / "gmp_80.pth", kit.tiny_model(seed=1))
    before = path.read_bytes()
    real_save = torch.save

    def half_then_crash(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        if hasattr(f, "truncate"):
            f.truncate(100)
        raise Crash("killed while writing")

    monkeypatch.setattr(torch, "save", half_then_crash)
    with pytest.raises(Crash):
        ck.save_reference_checkpoint(path, kit.tiny_model(seed=2), kit.ARCH, "imagenet")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert temp_files(tmp_path) == []
    ck.load_checkpoint(path, arch=kit.ARCH)  # still a good checkpoint


def test_report_files(tmp_path, monkeypatch):
    """A crash while the report is rewritten keeps the files already there readable."""
    from reports.report import write_report
    from tests.reports.sample_results import hand_table

    table = hand_table().assign(status="finished")
    write_report(table, tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def crash(fd):
        raise Crash("killed before the data reached the disk")

    monkeypatch.setattr(os, "fsync", crash)  # the first new file is written, not yet renamed
    with pytest.raises(Crash):
        write_report(table.iloc[: len(table) // 2], tmp_path)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert temp_files(tmp_path) == []
