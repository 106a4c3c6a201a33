"""A Ray cluster of the test's own, started with `ray start --head` as a Ray user does, and
stopped by its own process group: never `ray stop`, which would end every Ray on the machine.

Each head has its own temp dir, its own ports and its own token (``RAY_AUTH_MODE=token``):
clients get ``env`` (the token, ``RAY_ADDRESS``) and talk to it from a subprocess, since a
process's Ray reads its authentication mode once, at import.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Head:
    address: str  # the GCS, host:port
    dashboard: str  # http://127.0.0.1:port (Ray Jobs), or "" without a dashboard
    temp_dir: Path
    env: dict[str, str]  # for clients: PATH, the token, RAY_ADDRESS
    proc: subprocess.Popen

    def python(self, code: str, timeout: float = 120) -> str:
        """Run ``code`` in a fresh Python joined to this cluster; its stdout."""
        done = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"client failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def nodes(self) -> list[dict]:
        code = ("import json, ray; ray.init(logging_level='ERROR'); "
                "print('NODES', json.dumps([{'id': n['NodeID'], 'alive': n['Alive'], "
                "'resources': n['Resources']} for n in ray.nodes()]))")
        for attempt in range(3):  # a client on a loaded machine may time out joining
            try:
                return json.loads(marked(self.python(code), "NODES"))
            except (RuntimeError, subprocess.TimeoutExpired):
                if attempt == 2:
                    raise
                time.sleep(5)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """End every process of this head (its autoscaler's fake nodes too): one group."""
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.5)


def marked(out: str, marker: str) -> str:
    """The text after ``marker`` on the line a client printed it (Ray may print around it)."""
    for line in reversed(out.splitlines()):
        if line.startswith(marker + " "):
            return line[len(marker) + 1:]
    raise RuntimeError(f"no {marker} line in the client's output:\n{out[-2000:]}")


def start_head(*, num_cpus: float = 2, resources: dict | None = None, dashboard: bool = False,
               autoscaling_config: Callable[[str], dict] | None = None,
               extra_env: dict | None = None,
               timeout: float = 120) -> Head:
    """``ray start --head --block`` in a new session (its own process group).

    ``autoscaling_config``: the autoscaler's config, given the GCS address (host:port).
    """
    from ray._private.services import get_node_ip_address

    temp_dir = Path(tempfile.mkdtemp(prefix="st-ray-", dir="/tmp"))
    port = free_port()
    # Ray advertises the machine's address, not 127.0.0.1, whatever it is asked.
    address = f"{get_node_ip_address()}:{port}"
    dash_port = free_port()
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "NM_DISABLE_ANALYTICS": "1"}
    env.pop("RAY_ADDRESS", None)
    head_env = {**env, **(extra_env or {})}
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
           f"--temp-dir={temp_dir}", f"--num-cpus={num_cpus}", "--disable-usage-stats",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
           f"--dashboard-agent-listen-port={free_port()}",
           f"--metrics-export-port={free_port()}",
           f"--include-dashboard={'true' if dashboard else 'false'}"]
    if resources:
        cmd.append(f"--resources={json.dumps(resources)}")
    if autoscaling_config is not None:
        path = temp_dir / "autoscaling.yaml"
        path.write_text(json.dumps(autoscaling_config(address)))
        cmd.append(f"--autoscaling-config={path}")
    log = open(temp_dir / "head.log", "w")
    proc = subprocess.Popen(cmd, env=head_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    head = Head(address=address, dashboard=f"http://127.0.0.1:{dash_port}" if dashboard else "",
                temp_dir=temp_dir, env=env, proc=proc)
    deadline = time.monotonic() + timeout
    try:
        while True:
            text = (temp_dir / "head.log").read_text()
            if "Ray runtime started" in text:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start --head failed:\n{text[-3000:]}")
            time.sleep(0.5)
        env["RAY_ADDRESS"] = head.address
        if dashboard:
            _wait_http(head.dashboard + "/api/version", deadline, proc, temp_dir)
    except BaseException:
        head.stop()
        raise
    return head


def _wait_http(url: str, deadline: float, proc: subprocess.Popen, temp_dir: Path) -> None:
    import urllib.error
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (401 without the token): up
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard did not come up at {url}:\n"
                               f"{(temp_dir / 'head.log').read_text()[-3000:]}")
        time.sleep(1)
