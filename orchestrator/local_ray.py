"""What ``--address auto`` (or ``RAY_ADDRESS=auto``) joins: a Ray that this user started on
this machine, never another user's.

Why not Ray's own ``auto``: it takes any raylet on the machine, whoever runs it, and dials
its address (often the node's external IP), so a sweep could join a stranger's Ray, or wait
for minutes on one it may not reach. Here the raylets of this machine are listed with their
owners (``psutil``, as Ray finds them); ``auto`` becomes the address of this user's one, and
anything else is bad input that says what was found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from common.errors import BadInput


@dataclass(frozen=True)
class LocalRay:
    """One raylet running on this machine: the cluster (GCS) address it serves."""

    address: str
    pid: int
    uid: int
    user: str


def local_rays() -> list[LocalRay]:
    """Every raylet process of this machine that names its GCS address, with its owner."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "pid", "uids", "username"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if not cmdline or "raylet" not in os.path.basename(cmdline[0]):
                continue
            flags = [a for arg in cmdline for a in arg.split(" ")
                     if a.startswith("--gcs-address=")]
            address = flags[0].split("=", 1)[1] if flags else ""
            if address and address != "None":
                uids = proc.info["uids"]
                found.append(LocalRay(address, proc.info["pid"], uids.real if uids else -1,
                                      proc.info["username"] or "?"))
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
    return found


def resolve_auto(source: str, rays: list[LocalRay] | None = None,
                 uid: int | None = None) -> str:
    """The GCS address ``auto`` stands for: that of the one Ray this user runs here.

    Raises:
        BadInput: no Ray runs here, only other users' do, or this user runs several; the
            message names what was found and what to do instead.
    """
    rays = local_rays() if rays is None else rays
    uid = os.getuid() if uid is None else uid
    mine = sorted({r.address for r in rays if r.uid == uid})
    if len(mine) == 1:
        return mine[0]
    if mine:
        raise BadInput(f"{source} auto: you run {len(mine)} Rays on this machine "
                       f"({', '.join(mine)}); name one with --address <host:port>")
    others = sorted({f"{r.user} (PID {r.pid}, at {r.address})" for r in rays})
    if others:
        raise BadInput(
            f"{source} auto: the only Ray on this machine is another user's: "
            f"{'; '.join(others)}; a sweep joins only a Ray you started. Start yours "
            "(`ray start --head`), name a cluster with --address <head>:6379, or leave "
            "--address and RAY_ADDRESS unset for a Ray of the sweep's own")
    raise BadInput(f"{source} auto: no Ray runs on this machine; start one (`ray start "
                   "--head`), name a cluster with --address <head>:6379, or leave --address "
                   "and RAY_ADDRESS unset for a Ray of the sweep's own")
