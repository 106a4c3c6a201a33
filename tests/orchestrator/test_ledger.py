"""The ledger's index: one read on resume, and no entry lost whatever moment a kill hits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator.ledger import ERROR, FINISHED, INDEX, Ledger

REPO = Path(__file__).resolve().parents[2]


def counting_reader(calls: list[Path]):
    def read(path: Path) -> bytes:
        calls.append(path)
        with open(path, "rb") as f:
            return f.read()
    return read


def test_a_reload_reads_the_index_alone(tmp_path):
    led = Ledger(tmp_path)
    for i in range(50):
        led.record(f"t{i}", {"status": FINISHED, "metrics": {"accuracy": float(i)}})
    led.record("t3", {"status": ERROR, "error": "boom"})  # recorded again: the last one counts
    calls: list[Path] = []
    again = Ledger(tmp_path, read=counting_reader(calls))
    assert calls == [tmp_path / INDEX] and again.files_read == 0
    assert len(again) == 50 and again.status("t3") == ERROR
    assert again.get("t7")["metrics"] == {"accuracy": 7.0}
    assert [e["trial_id"] for e in again.entries()] == sorted(f"t{i}" for i in range(50))
    assert again.fingerprint() == led.fingerprint()


def test_entries_without_a_line_are_read_from_their_files_and_indexed(tmp_path):
    """A ledger written before the index existed, or a kill between file and line."""
    for i in range(5):
        (tmp_path / f"t{i}.json").write_text(json.dumps(
            {"trial_id": f"t{i}", "status": FINISHED, "metrics": {}}))
    led = Ledger(tmp_path)
    assert len(led) == 5 and led.files_read == 5
    assert len((tmp_path / INDEX).read_text().splitlines()) == 5
    assert Ledger(tmp_path).files_read == 0  # the next load trusts the rewritten index


def test_a_pending_line_sends_the_reader_to_the_file(tmp_path):
    led = Ledger(tmp_path)
    led.record("t1", {"status": ERROR, "error": "boom"})
    # A kill after the pending line and the new file, before the new line:
    with open(tmp_path / INDEX, "a") as f:
        f.write(json.dumps({"trial_id": "t1", "pending": True}) + "\n")
    (tmp_path / "t1.json").write_text(json.dumps({"trial_id": "t1", "status": FINISHED}))
    again = Ledger(tmp_path)
    assert again.status("t1") == FINISHED and again.files_read == 1


def test_a_deleted_file_forgets_the_trial_and_a_torn_line_is_recovered(tmp_path):
    led = Ledger(tmp_path)
    for t in ("a", "b", "c"):
        led.record(t, {"status": FINISHED})
    (tmp_path / "a.json").unlink()  # the way to run one trial again
    with open(tmp_path / INDEX, "a") as f:
        f.write('{"trial_id": "c", "status": "err')  # torn by a power cut
    again = Ledger(tmp_path)
    assert again.status("a") is None and again.status("b") == again.status("c") == FINISHED
    text = (tmp_path / INDEX).read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2  # rewritten, clean
    again.record("a", {"status": FINISHED})
    assert Ledger(tmp_path).status("a") == FINISHED


WRITER = """
import sys
from pathlib import Path
from orchestrator.ledger import Ledger
led = Ledger(Path(sys.argv[1]))
i = 0
while True:
    tid = f"t{i % 300}"
    status = "finished" if i // 300 % 2 else "error"
    led.record(tid, {"status": status, "round": i // 300, "metrics": {"i": i}})
    print(tid, status, i, flush=True)  # after record() returned: must never be lost
    i += 1
"""


def test_no_entry_is_lost_after_kill_9(tmp_path):
    """Kill a writer at a few moments (first records, re-records); every record that returned
    is found by the next load with its latest status, and the load repairs the index."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for n, after in enumerate((20, 310, 450, 650)):  # first records, then re-records
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, text=True)
        lines = [proc.stdout.readline() for _ in range(after)]
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        done: dict[str, tuple[str, int]] = {}
        for line in lines + out.splitlines():
            if line.strip():
                tid, status, i = line.split()
                done[tid] = (status, int(i))
        led = Ledger(folder)
        assert len(done) >= min(after, 300)
        for tid, (status, i) in done.items():
            entry = led.get(tid)
            assert entry is not None, (n, tid)
            # The record in flight when the kill came may have landed too: never older.
            assert entry["metrics"]["i"] >= i, (n, tid, entry, i)
            if entry["metrics"]["i"] == i:
                assert entry["status"] == status
        assert Ledger(folder).files_read == 0  # the load above left a clean index


def test_unchanged_aggregates_are_not_logged_again_by_the_same_tracker():
    """The sweep writes its outputs after linear, after full and at the end: only the
    aggregate runs whose values changed cost an MLflow request."""
    from orchestrator.aggregate import log_aggregates
    from tests.reports.sample_results import hand_table

    class Counting:
        def __init__(self) -> None:
            self.keys: list[str] = []

        def log_aggregate(self, key, params, metrics, step, tags=None):
            self.keys.append(key)

    df = hand_table().assign(status="finished")
    tracker = Counting()
    log_aggregates(df, tracker)
    first = list(tracker.keys)
    assert len(first) > 20 and "summary" in first
    tracker.keys.clear()
    log_aggregates(df, tracker)
    assert tracker.keys == []
    changed = df.copy()
    row = changed.index[(changed["mode"] == "full") & (changed["sparsity"] == 90)][0]
    changed.loc[row, "accuracy"] -= 5.0
    log_aggregates(changed, tracker)
    assert 0 < len(tracker.keys) < len(first)  # that cell, its alphas, the summary
    fresh = Counting()  # a new sweep process logs everything once
    log_aggregates(df, fresh)
    assert sorted(fresh.keys) == sorted(first)
