"""A CPU-busy timeline of a command (the default study): how much of each stage kept every core
busy.

``record`` runs a command, and every second samples each core's busy time from ``/proc/stat``
(the whole machine) and the CPU time of the command's own process tree (``/proc/<pid>/stat``
of the command and every descendant: the sweep's driver, Ray's raylet and its workers), and
timestamps each line the command prints. ``summarize`` attributes each sample to the stage the
sweep was in, from those lines (a line ``[<stage>] ...`` starts that stage; before the first,
``set-up``), and prints one row per stage: its wall time, the mean busy cores, and the share
of its wall time during which every core was busy (a sample counts when each core was at least
``--busy`` busy, 90 % by default). The machine's columns count other users' work too; the
command's own columns (``own``) count only its process tree, so they hold on a shared machine
(with the caveat that there the command gets fewer cycles, and takes longer); their CPU time
per stage is the work a stage did, which on a quiet machine whose cores it keeps busy is about
its wall time times the cores.

    python benchmarks/cpu_timeline.py record --out /tmp/tl.jsonl -- make study
    python benchmarks/cpu_timeline.py summarize /tmp/tl.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
STAGE_LINE = re.compile(r"^\[([a-z_]+)\] ")
SETUP = "set-up"


def core_times() -> dict[str, tuple[int, int]]:
    """Per core: (busy ticks, total ticks) since boot, from /proc/stat's ``cpuN`` lines."""
    found = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if not re.fullmatch(r"cpu\d+", name):
            continue
        ticks = [int(x) for x in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        total = sum(ticks[:8])  # guest time is already in user
        found[name] = (total - idle, total)
    return found


def tree_ticks(root: int) -> dict[int, int]:
    """utime + stime (ticks) of ``root`` and every live descendant, by pid."""
    parent, ticks = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        rest = text[text.rindex(")") + 2:].split()  # fields after the command name
        pid = int(entry.name)
        parent[pid] = int(rest[1])
        ticks[pid] = int(rest[11]) + int(rest[12])
    kids = defaultdict(list)
    for pid, ppid in parent.items():
        kids[ppid].append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in ticks:
            found[pid] = ticks[pid]
        todo.extend(kids.get(pid, ()))
    return found


def driver_pid(pids: list[int]) -> int | None:
    """The sweep's driver among ``pids``: the process running ``orchestrator.sweep``."""
    for pid in sorted(pids):
        try:
            if b"orchestrator.sweep" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def sample_loop(root: int, out, stop: threading.Event, lock: threading.Lock,
                period: float) -> None:
    """Every ``period`` s: per-core busy fractions, the tree's CPU seconds in that time and
    the driver's among them (the sweep's own process: Tune's loop, MLflow, the reports)."""
    prev_cores, prev_tree, prev_t = core_times(), tree_ticks(root), time.time()
    driver = None
    while not stop.wait(period):
        cores, tree, now = core_times(), tree_ticks(root), time.time()
        dt = max(now - prev_t, 1e-6)
        busy = [max(0.0, min(1.0, (cores[c][0] - prev_cores[c][0])
                             / max(cores[c][1] - prev_cores[c][1], 1))) for c in sorted(cores)]
        own = sum(t - prev_tree.get(pid, 0) for pid, t in tree.items()) / TICKS / dt
        if driver not in tree:
            driver = driver_pid(list(tree))
        drv = (tree[driver] - prev_tree.get(driver, 0)) / TICKS / dt if driver in tree else 0.0
        with lock:
            out.write(json.dumps({"t": now, "dt": dt, "cores": busy, "own": own,
                                  "driver": drv, "procs": len(tree)}) + "\n")
            out.flush()
        prev_cores, prev_tree, prev_t = cores, tree, now


def record(command: list[str], path: Path, period: float) -> int:
    """Run ``command``, echoing its output, and write samples and timestamped lines to
    ``path`` (JSON lines). Returns the command's exit code."""
    lock, stop = threading.Lock(), threading.Event()
    with open(path, "w") as out:
        start = time.time()
        out.write(json.dumps({"start": start, "command": command,
                              "cores": len(core_times())}) + "\n")
        # unbuffered: each line is timestamped when it is printed, not when a buffer fills
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        sampler = threading.Thread(target=sample_loop, args=(proc.pid, out, stop, lock, period),
                                   daemon=True)
        sampler.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            with lock:
                out.write(json.dumps({"t": time.time(), "line": line.rstrip("\n")}) + "\n")
        code = proc.wait()
        stop.set()
        sampler.join()
        with lock:
            out.write(json.dumps({"end": time.time(), "exit": code}) + "\n")
    return code


def stage_spans(lines: list[tuple[float, str]], start: float,
                end: float) -> list[tuple[str, float, float]]:
    """(stage, from, to) in time order: a stage runs from its first ``[stage]`` line to the
    next stage's first line; a stage seen again later (a second pass) is a new span."""
    spans: list[tuple[str, float, float]] = []
    current, since = SETUP, start
    for t, line in lines:
        m = STAGE_LINE.match(line)
        if not m or m.group(1) == current:
            continue
        spans.append((current, since, t))
        current, since = m.group(1), t
    spans.append((current, since, end))
    return [s for s in spans if s[2] > s[1]]


def summarize(path: Path, busy: float) -> str:
    """The per-stage table (Markdown) of a recorded timeline."""
    head, lines, samples, end = None, [], [], None
    for raw in path.read_text().splitlines():
        rec = json.loads(raw)
        if "start" in rec:
            head = rec
        elif "line" in rec:
            lines.append((rec["t"], rec["line"]))
        elif "cores" in rec:
            samples.append(rec)
        elif "end" in rec:
            end = rec["end"]
    if head is None or not samples:
        raise SystemExit(f"{path}: no recording (expected the lines `record` writes)")
    end = end or samples[-1]["t"]
    n = head["cores"]
    rows = [f"Command: {' '.join(head['command'])}; {n} cores; wall {end - head['start']:.0f} s; "
            f"a sample is 'all busy' when each core was at least {busy:.0%} busy (machine), "
            f"or the command's processes used at least {busy * n:.1f} cores (own)", "",
            "| stage | wall | machine: mean busy cores | machine: all cores busy | "
            "own: mean cores | own: all cores busy | own: CPU time | driver: mean cores |",
            "|---|---|---|---|---|---|---|---|"]
    totals = defaultdict(float)
    for stage, t0, t1 in stage_spans(lines, head["start"], end):
        inside = [s for s in samples if t0 < s["t"] <= t1]
        if not inside:
            continue
        w = sum(s["dt"] for s in inside)
        mean = sum(sum(s["cores"]) * s["dt"] for s in inside) / w
        all_busy = sum(s["dt"] for s in inside if min(s["cores"]) >= busy) / w
        own = sum(s["own"] * s["dt"] for s in inside) / w
        own_all = sum(s["dt"] for s in inside if s["own"] >= busy * n) / w
        drv = sum(s.get("driver", 0.0) * s["dt"] for s in inside) / w
        for k, v in (("w", w), ("mean", mean * w), ("all", all_busy * w), ("own", own * w),
                     ("own_all", own_all * w), ("drv", drv * w)):
            totals[k] += v
        rows.append(f"| {stage} | {_dur(t1 - t0)} | {mean:.2f} | {all_busy:.0%} | {own:.2f} | "
                    f"{own_all:.0%} | {_dur(own * w)} | {drv:.2f} |")
    w = totals["w"] or 1.0
    rows.append(f"| **whole run** | **{_dur(end - head['start'])}** | {totals['mean'] / w:.2f} | "
                f"{totals['all'] / w:.0%} | {totals['own'] / w:.2f} | {totals['own_all'] / w:.0%} | "
                f"{_dur(totals['own'])} | {totals['drv'] / w:.2f} |")
    return "\n".join(rows)


def _dur(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("record", help="run a command and record its CPU timeline")
    r.add_argument("--out", type=Path, required=True, help="the timeline file (JSON lines)")
    r.add_argument("--period", type=float, default=1.0, help="seconds between samples")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    s = sub.add_parser("summarize", help="the per-stage table of a recorded timeline")
    s.add_argument("timeline", type=Path)
    s.add_argument("--busy", type=float, default=0.9,
                   help="a core counts as busy in a sample above this fraction (0.9)")
    args = p.parse_args()
    if args.what == "record":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            p.error("record: give the command after --")
        code = record(command, args.out, args.period)
        print(summarize(args.out, 0.9))
        raise SystemExit(code)
    print(summarize(args.timeline, args.busy))


if __name__ == "__main__":
    main()
