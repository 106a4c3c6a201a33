"""The run options of a sweep, apart from the study itself.

A module of their own because both ends need them: ``orchestrator.sweep`` (the CLI) builds
them and ``orchestrator.runner`` consumes them; in either of the two they made the other
import it back.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from common.errors import BadInput
from common.storage import filesystem, is_uri, join, masked


@dataclass(frozen=True)
class SweepOptions:
    """Everything about a run that is not the study itself."""

    out_dir: Path
    tracking_uri: str | None = None
    address: str | None = None
    retry_failed: bool = False
    num_cpus: int | None = None
    max_concurrent: int | None = None
    max_failures: int = 2
    speed: bool = True
    report: bool = True
    smoke_test: bool = False
    verbose: int = 1  # 0 -q, 1 the sweep's progress lines, 2 -v (Ray Tune's too), 3 -vv
    command: str | None = None  # the command line, printed as the one that resumes a stop
    rehearsal: bool = False  # stand-in trials (trainables.entry.rehearsal), marked as such
    storage: str | None = None  # --storage: the URI under which trials keep their files

    def trials_root(self) -> str | None:
        """Where this study's trials keep their files under ``--storage``: the output
        folder's name below the URI (two studies in one bucket never share a zoo), or None
        (under the output folder, as without ``--storage``)."""
        return join(self.storage, self.out_dir.name) if self.storage else None


def check_count(option: str, value: int | None, lo: int) -> None:
    """A count option (``--num-cpus``, ``--max-concurrent``, ``--max-failures``) must be at
    least ``lo``: ``--num-cpus 0`` would start a Ray that can place no trial and wait
    forever, ``--num-cpus -1`` crashed inside Ray after the output folder was written."""
    if value is not None and value < lo:
        raise BadInput(f"{option}: expected a whole number >= {lo}, got {value}")


def check_out_dir(out_dir: Path, option: str = "--out") -> Path:
    """The output folder, absolute; refused (before anything is written) when it is a file or
    a device (``/dev/null``), or when a part of its path is a file so it can never be made."""
    path = Path(out_dir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise BadInput(f"{option}: {path} exists and is not a folder; expected a folder (new or "
                       "one from an earlier run of the same study)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadInput(f"{option}: {path} cannot be made: {parent} is not a folder")
            break
    check_writable(path, option)
    return path


# What a sweep writes at the top of its output folder, besides new files.
_WRITTEN = ("trials", "mlflow.db", "sweep.lock", "results.parquet", "features", "zoo", "ray")


def check_writable(path: Path, option: str = "--out") -> None:
    """The output folder (or, when it is new, the folder it will be made in) takes a new
    file, and what an earlier run left there can be written again. A read-only folder gave a
    traceback after Ray had started, or MLflow retried a read-only database for minutes
    without a word. A probe file is made and removed at once: permission bits alone do not
    tell (root ignores them; a read-only mount does not)."""
    target = path if path.exists() else next(p for p in path.parents if p.exists())
    try:
        fd, probe = tempfile.mkstemp(dir=target, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        made = "" if target == path else f"{path} cannot be made: "
        raise BadInput(f"{option}: {made}cannot write in {target}: {e.strerror or e}; "
                       "choose a folder you can write to") from None
    if target == path:
        for name in _WRITTEN:
            item = path / name
            if item.exists() and not os.access(item, os.W_OK):
                raise BadInput(f"{option}: {item} (from an earlier run) is read-only; the "
                               "sweep must write it again. Make it writable or choose another "
                               "folder")


def check_runs_name(out_dir: Path, runs: Path, name: str) -> None:
    """The default output folder ``runs/<study name>`` must be a folder inside ``runs/``
    (the schema checks the name; this checks what the path became)."""
    base = runs.resolve()
    if out_dir.resolve().parent != base:
        raise BadInput(f"study name {name!r} would put the output folder at {out_dir}, outside "
                       f"{base}; give the study a plain name or pass --out")


REHEARSAL_MARK = "REHEARSAL"  # in the output folder of a rehearsal, written before any trial


def check_folder_kind(out_dir: Path, rehearsal: bool) -> None:
    """A rehearsal's synthetic results never share an output folder with real ones.

    Why refuse rather than warn: a resumed sweep builds ``results.parquet``, the aggregates
    and the report from every ledger entry in the folder, so one mixed folder would publish
    made-up numbers next to measured ones. A folder is a rehearsal's when it holds the
    ``REHEARSAL`` mark; a real study's when it holds a ledger, a results table or an MLflow
    store without the mark.
    """
    path = Path(out_dir)
    marked = (path / REHEARSAL_MARK).exists()
    trials = path / "trials"
    used = any((path / name).exists() for name in ("results.parquet", "mlflow.db")) or (
        trials.is_dir() and any(p.suffix in (".json", ".jsonl") for p in trials.iterdir()))
    if rehearsal and used and not marked:
        raise BadInput(f"--rehearsal: {path} holds a real study's results; a rehearsal's "
                       "synthetic ones must not mix with them: leave --out unset (default "
                       "runs/<study>-rehearsal) or name a new folder")
    if not rehearsal and marked:
        raise BadInput(f"--out {path} is a rehearsal's folder (synthetic numbers, "
                       f"{REHEARSAL_MARK} mark): run the real study into another folder, or add "
                       "--rehearsal to resume the rehearsal")


def mark_rehearsal_folder(out_dir: Path) -> None:
    """Write the ``REHEARSAL`` mark (idempotent), before the first trial is recorded."""
    from common.atomic import atomic_write_text

    path = Path(out_dir) / REHEARSAL_MARK
    if not path.exists():
        atomic_write_text(path, "This folder holds a rehearsal (python -m orchestrator.sweep "
                          "--rehearsal): every number in it is synthetic, made up by "
                          "trainables/entry/rehearsal.py; none is a result.\n")


# sqlite URIs SQLAlchemy opens in memory: every run is gone when the process exits.
_MEMORY_PATHS = ("", ":memory:")
# Tracking stores MLflow opens (its store registry; a database scheme may name its driver,
# postgresql+psycopg2://), and the URIs without a scheme that are not a file path.
_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks",
            "databricks-uc", "uc")
_NO_SCHEME_STORES = ("databricks", "databricks-uc", "uc")


def check_tracking_uri(uri: str | None, source: str = "--tracking-uri") -> None:
    """Refuse a tracking store that would lose what the sweep logs (an in-memory SQLite
    database: ``sqlite://``, ``sqlite:///``, ``sqlite:///:memory:``; an empty URI) or that
    MLflow cannot open (its file store, a plain path, an unknown scheme) before anything is
    written; whether the store answers is ``orchestrator.tracking.check_store``'s part."""
    if uri is None:
        return
    if not uri.strip():
        raise BadInput(f"{source}: empty tracking URI; leave it unset to use the SQLite file in "
                       "the output folder")
    scheme = urlparse(uri).scheme.lower().split("+")[0]
    if uri in _NO_SCHEME_STORES:
        return
    if scheme in ("", "file") or len(scheme) == 1:  # a plain path (C:\\ on Windows) or file://
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1"):
            return
        plain = scheme != "file"
        what = "a plain path, which MLflow opens as its" if plain else "MLflow's"
        instead = f"sqlite:///{uri}" if plain else "sqlite:////abs/path/mlflow.db"
        raise BadInput(
            f"{source}: {uri!r} is {what} file store, which MLflow 3 refuses to open (it is in "
            f"maintenance mode); use a SQLite file instead, e.g. {instead}, or leave it unset "
            "to use the SQLite file in the output folder (MLFLOW_ALLOW_FILE_STORE=true opens a "
            "file store anyway)")
    if scheme not in _SCHEMES:
        raise BadInput(f"{source}: {uri!r} has the scheme {scheme!r}, which MLflow cannot "
                       f"track to; use one of {', '.join(_SCHEMES)} (e.g. "
                       "http://host:5000 or sqlite:////abs/path/mlflow.db)")
    if scheme == "sqlite":
        rest = uri[len("sqlite:"):]
        path = rest[3:] if rest.startswith("///") else rest[2:] if rest.startswith("//") else rest
        path = path.split("?", 1)[0]
        if path in _MEMORY_PATHS or path.startswith(("file::memory:", ":memory:")):
            raise BadInput(
                f"{source}: {uri!r} is an in-memory SQLite store: every run would be lost when "
                "the sweep exits; name a file (sqlite:////abs/path/mlflow.db) or leave it unset "
                "to use the SQLite file in the output folder")


def check_ray_address(address: str | None, source: str = "--address") -> None:
    """A cluster address (``host:port``, ``ray://host:port``) must answer before the sweep
    joins it: ``ray.init`` retried a dead address for minutes, printing only Ray's warnings.
    ``auto`` (Ray finds the cluster of this node, or says there is none) is left to Ray."""
    if not address or address in ("auto", "local"):
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise BadInput(f"{source} {address!r}: expected the head's address as host:port (e.g. "
                       "10.0.0.5:6379), 'auto' on a node of a running cluster, or 'local'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise BadInput(
            f"{source} {address!r}: nothing answers there ({e.strerror or e}); start the "
            f"cluster (`ray start --head` on the head node) or fix {source} ('auto' on a node "
            "of a running cluster, 'local' for a Ray of the sweep's own)") from None


def redact(uri: str) -> str:
    """The URI with any user:password@ removed, for messages and logs."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


def default_tracking_uri(out_dir: Path) -> str:
    """The SQLite store in the output folder, where a sweep without --tracking-uri logs."""
    return f"sqlite:///{(out_dir / 'mlflow.db').resolve()}"


def check_storage_uri(uri: str | None, option: str = "--storage") -> None:
    """``--storage`` must be a URI of a file system pyarrow opens (``s3://bucket/prefix``,
    ``gs://bucket/prefix``, ``hdfs://...``): a local path is the output folder's job, and a
    typo in the scheme would otherwise fail in the first trial, after Ray has started."""
    if uri is None:
        return
    if not is_uri(uri):
        raise BadInput(f"{option} {uri!r}: expected a URI of cloud storage such as "
                       "s3://bucket/prefix or gs://bucket/prefix; without --storage trials "
                       "keep their files in the output folder (--out), which on a cluster "
                       "must then be a folder every node mounts")
    parts = urlparse(uri)
    if parts.scheme.lower() in _NETWORK_SCHEMES:  # resolved on first use (a network call)
        if not parts.netloc:
            raise BadInput(f"{option} {masked(uri)}: no bucket (or host) after "
                           f"{parts.scheme}://; expected e.g. {parts.scheme}://bucket/prefix")
        return
    try:
        filesystem(uri)
    except (ValueError, OSError) as e:
        raise BadInput(f"{option} {masked(uri)}: {e}") from None


# Schemes of pyarrow's own file systems whose URIs are resolved over the network (S3 asks
# for the bucket's region): checked for their form here, for an answer by ``check_storage``.
_NETWORK_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


# What a storage's refusal says, and what to do about it.
_STORAGE_ADVICE = (
    (("no_such_bucket", "nosuchbucket", "bucket does not exist", "to create buckets"),
     "the bucket does not exist: create it (e.g. `aws s3 mb s3://BUCKET`) or fix the URI"),
    (("access_denied", "accessdenied", "invalid_access_key", "invalidaccesskeyid",
      "signature", "forbidden", "credentials"),
     "the storage refused this machine's credentials: check them (AWS_ACCESS_KEY_ID and "
     "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the instance or pod role; "
     "GOOGLE_APPLICATION_CREDENTIALS for gs://), and that every node has credentials with "
     "read and write access to the prefix"),
    (("network_connection", "could not connect", "couldn't connect", "timed out", "resolve"),
     "nothing answers at the storage's endpoint: check the network, the region, and "
     "AWS_ENDPOINT_URL where the storage is not AWS's own"),
)


def storage_advice(reason: str) -> str:
    """What a storage error means for the user, from pyarrow's message."""
    low = reason.lower()
    for words, advice in _STORAGE_ADVICE:
        if any(w in low for w in words):
            return advice
    return "check the URI and the credentials every node uses"


def check_storage(uri: str | None, option: str = "--storage") -> None:
    """The storage takes, returns and deletes a small object under ``uri``, before anything
    is started: a missing bucket, refused credentials or an endpoint that does not answer is
    one paragraph naming the URI (credentials masked) in seconds, not an error in every
    trial after Ray has started."""
    if uri is None:
        return
    from common import storage

    check_storage_uri(uri, option)
    probe = join(uri, f".storage-check-{socket.gethostname()}-{os.getpid()}")
    try:
        storage.write_bytes(probe, b"sparse-transfer storage check\n")
        if storage.read_bytes(probe) != b"sparse-transfer storage check\n":
            raise OSError("the object read back differs from the one written")
        storage.delete(probe)
    except OSError as e:
        reason = str(e).partition(": ")[2] or str(e)
        raise BadInput(f"{option} {masked(uri)}: {storage_advice(reason)}. The storage "
                       f"said: {reason}") from None


class StorageDown(OSError):
    """``--storage`` stopped answering during the sweep (the message says what is kept)."""


def storage_answers(options: SweepOptions) -> None:
    """Under ``--storage``, before and after each stage and when a trial is retried
    (``progress.StopWhenStorageDown``): the storage still takes and returns an object. Why:
    when it stops answering, every trial fails on it and Tune retries each; stopping says
    why once, and what is kept.

    Raises:
        StorageDown: it does not answer; the ledger and MLflow (the driver's) keep every
            finished trial, and the trials' files already in the storage stay there.
    """
    if not options.storage:
        return
    try:
        check_storage(options.trials_root())
    except BadInput as e:
        raise StorageDown(
            errno.EIO, f"{e}\nthe sweep stopped: every finished trial is kept in "
            f"{options.out_dir / 'trials'} (the ledger) and in MLflow, and what trials wrote "
            "to the storage stays there; rerun the same command once the storage answers "
            "(interrupted full finetuning resumes from its last checkpoint)") from None
