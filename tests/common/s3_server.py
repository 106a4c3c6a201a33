"""A real S3 server on 127.0.0.1 for the storage tests: moto's server mode, started and
stopped by the test, with buckets and (optionally) credentials it checks.

Why moto's server and not its in-process mock: pyarrow's S3 client (C++, the one Ray and the
project use) talks HTTP to an endpoint, so it must be a server; ``AWS_ENDPOINT_URL`` points
pyarrow, Ray's workers and every subprocess at it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

REGION = "us-east-1"


@dataclass
class S3Server:
    """A running server: its endpoint and the environment that reaches it."""

    endpoint: str
    env: dict[str, str]
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def filesystem(self, access_key: str | None = None, secret_key: str | None = None):
        """A pyarrow S3FileSystem on this server (this environment's credentials)."""
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key=access_key or self.env["AWS_ACCESS_KEY_ID"],
            secret_key=secret_key or self.env["AWS_SECRET_ACCESS_KEY"],
            endpoint_override=self.endpoint, scheme="http", region=REGION,
            allow_bucket_creation=True)

    def make_bucket(self, name: str) -> None:
        self.filesystem().create_dir(name)

    def keys(self, prefix: str) -> list[str]:
        """Every object under ``bucket/prefix`` (paths without the bucket)."""
        import pyarrow.fs as pafs

        infos = self.filesystem().get_file_info(pafs.FileSelector(prefix, recursive=True,
                                                                   allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto server did not answer on port {port}: {log.read_text()[-2000:]}")


def start_s3_server(folder: Path, *, check_credentials: bool = False) -> S3Server:
    """Start moto's S3 server on a free loopback port.

    With ``check_credentials`` the server refuses keys it does not know (moto's IAM
    authorisation on): the first requests create a user with every right and its key, which
    the returned environment carries; any other key gets ACCESS_DENIED.
    """
    pytest.importorskip("moto", reason="moto[server] (the test extra) runs the S3 server")
    port = _free_port()
    log = folder / f"moto-{port}.log"
    env = {**os.environ, "MOTO_PORT": str(port)}
    if check_credentials:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"  # create_user, put_user_policy, access key
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=env)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_up(port, proc, log)
        key, secret = ("testing", "testing")
        if check_credentials:
            key, secret = _make_user(endpoint)
    except BaseException:
        proc.kill()
        raise
    client_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key,
                  "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": REGION,
                  "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}
    return S3Server(endpoint, client_env, proc, log)


def _make_user(endpoint: str) -> tuple[str, str]:
    """A user allowed everything, and its access key (the server's first three actions)."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="sweep")
    iam.put_user_policy(UserName="sweep", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="sweep")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def s3_environment(server: S3Server):
    """This process's environment pointed at ``server`` for the block (pyarrow reads it)."""
    return mock.patch.dict(os.environ, server.env)


class Gate:
    """A TCP proxy on 127.0.0.1 in front of a server, which the test can close and open:
    closed, the endpoint refuses connections (a storage that stopped answering) while the
    server behind keeps its objects, so opening it again is the storage coming back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
