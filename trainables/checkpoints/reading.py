"""Reading a checkpoint file safely: what it is, then its object, without running its code.

A file is sniffed first from its first bytes, so that one that is something else (empty,
text, NumPy, HDF5, compressed, a plain pickle, random bytes) is named for what it is instead
of torch's "unsafe" or "corrupt". Torch files are read with ``torch.load(weights_only=True)``:
a file that would need arbitrary code to unpickle is refused, never executed. ``.safetensors``
files are read by the safetensors package (a JSON header, then the raw bytes: no code runs).
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from common import storage
from common.errors import BadInput, MissingInput, machine_error
from trainables.checkpoints.formats import FORMATS
from trainables.checkpoints.formats.base import StateDict

# What torch.load reads (the zip format of torch >= 1.6, or the legacy pickle whose first
# object is torch's magic number), and what other weight files begin with.
_TORCH_ZIP = b"PK\x03\x04"
_TORCH_LEGACY = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_OTHER_FILES = (
    (b"\x93NUMPY", "a NumPy array file (.npy)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras or TensorFlow .h5 weights?)"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"BZh", "bzip2-compressed; decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it first"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; decompress it first"),
)
ACCEPTED_FILES = ("a file written by torch.save (zip or legacy format) holding tensors, in one "
                  "of the formats " + "{formats}" + ", or a .safetensors file")


def accepted() -> str:
    """What a checkpoint file may be, for error messages."""
    return ACCEPTED_FILES.format(formats=", ".join(FORMATS.names()))


def sniff(head: bytes, size: int) -> str | None:
    """What a file that torch cannot read is, from its first bytes: ``"safetensors"``, a
    phrase for the message, or None if it may be a torch file. Random bytes would otherwise
    read as a pickle of unknown opcode, which torch reports as unsafe."""
    if size == 0:
        return "is empty (0 bytes)"
    if head.startswith(_TORCH_ZIP) or _TORCH_LEGACY[4:] in head:  # any pickle protocol
        return None
    if _is_safetensors(head, size):
        return "safetensors"
    for magic, what in _OTHER_FILES:
        if head.startswith(magic):
            return f"is {what}"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return ("is a plain Python pickle, not a file written by torch.save (no torch "
                "header); it was NOT executed (it was not unpickled: unpickling can run code). "
                "Save the weights with torch.save(model.state_dict(), path)")
    if head.startswith(b"PK"):
        return None  # another zip: let torch say what is missing in it
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"is a text file (it starts with {first!r}), not a checkpoint"
    return (f"is not a checkpoint: its first bytes ({head[:8].hex(' ')}) match no known file "
            "type (random or damaged data?)")


def _is_safetensors(head: bytes, size: int) -> bool:
    """8 bytes of header length (little-endian), then a JSON header."""
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _safetensors_problem(error: str, size: int) -> str:
    """The safetensors package's complaint about a damaged file, in the words of a message
    that says what is wrong with it."""
    detail = error.split("Error while deserializing header: ")[-1]
    dtype = re.search(r"unknown variant `(\w+)`, expected one of (.+?) at line", detail)
    if dtype:
        return (f"a tensor has dtype {dtype.group(1)!r}, which safetensors does not read "
                f"(it reads {dtype.group(2).replace('`', '')})")
    if detail.startswith("invalid JSON in header"):
        return f"its header is not JSON safetensors can read ({detail.partition(': ')[2]})"
    if "incomplete metadata" in detail or "invalid header length" in detail:
        return (f"the data its header describes does not fit bytes 0-{size} of the file "
                f"(truncated?): {detail}")
    return f"{detail} (truncated or damaged?)"


def _load_safetensors(path: Path, size: int, name: str) -> StateDict:
    """A ``.safetensors`` file as a state dict, through the safetensors package: the file is
    memory-mapped and each tensor copied once, never the whole file twice."""
    try:
        return load_file(path, device="cpu")
    except SafetensorError as err:
        raise BadInput(f"checkpoint {name} is a damaged safetensors file: "
                       f"{_safetensors_problem(str(err), size)}") from None


def checkpoint_location(path: str | os.PathLike[str]) -> str | Path:
    """A checkpoint's location as the readers keep it: a local ``Path``, or a storage URI
    (``s3://...``, the zoo under ``--storage``) kept as text, which ``Path`` would mangle."""
    return str(path) if storage.is_uri(path) else Path(path)


def read_checkpoint_file(path: str | os.PathLike[str]) -> Any:
    """The object a checkpoint file holds: a torch file's (weights only) or a safetensors
    file's state dict. ``path`` may be a storage URI: the object is read from a temporary
    local copy, removed afterwards, and messages name the URI (credentials masked).

    Raises:
        MissingInput: no such file.
        BadInput: a directory, an unreadable, unsafe, corrupt or foreign file; the message
            names the file, what it is and what is accepted.
        OSError: the machine's fault (EIO, a stale NFS handle, a storage that does not
            answer), so the trial is retried.
    """
    if not storage.is_uri(path):
        return _read_file(Path(path), str(Path(path)))
    name = storage.masked(path)
    try:
        with storage.local_copy(path) as local:
            return _read_file(local, name)
    except FileNotFoundError as e:
        if isinstance(e, BadInput):
            raise
        raise MissingInput(f"checkpoint file {name} does not exist") from None


def _read_file(path: Path, name: str) -> Any:
    """``read_checkpoint_file`` of a local file, its messages naming ``name``."""
    if not path.exists():
        raise MissingInput(f"checkpoint file {name} does not exist")
    if path.is_dir():
        raise BadInput(f"checkpoint path {name} is a directory, expected a file")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(64)
        kind = sniff(head, size)
        if kind == "safetensors":
            return _load_safetensors(path, size, name)
    except OSError as err:
        if machine_error(err):
            raise
        raise BadInput(f"checkpoint {name} cannot be read: {err.strerror or err}") from None
    if kind is not None:
        raise BadInput(f"checkpoint {name} {kind}. Accepted: {accepted()}")
    return _torch_load(path, head, name)


def _torch_load(path: Path, head: bytes, name: str) -> Any:
    """``torch.load(weights_only=True)``, its errors turned into messages naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notices from old files
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(name, head, err) from None
    except Exception as err:  # truncated zip, EOF: torch raises many kinds
        if machine_error(err):
            raise  # EIO, a stale NFS handle: the machine's fault, not the file's; Tune retries
        raise BadInput(
            f"checkpoint {name} could not be read (truncated, corrupt or not a torch file): "
            f"{type(err).__name__}: {err}"
        ) from None


def _refusal(name: str, head: bytes, err: pickle.UnpicklingError) -> BadInput:
    """Why torch's weights-only reader refused a file: an object whose unpickling could run
    code, a legacy file of a pickle protocol it cannot read, or damage."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    if found:
        return BadInput(
            f"checkpoint {name} was refused: it holds a pickled Python object "
            f"({found.group(1)}), and unpickling one could run code; it was NOT executed. "
            "Only tensors and plain containers are read: save a model's weights with "
            "torch.save(model.state_dict(), path), not the model object.")
    if _TORCH_LEGACY[4:] in head and not head.startswith(_TORCH_LEGACY):
        return BadInput(
            f"checkpoint {name} is a legacy-format torch file written with pickle protocol "
            f"{head[1]}, which torch's safe reader cannot read (it reads protocol 2, the "
            "legacy default); load it in a trusted session and save it again with "
            "torch.save(obj, path), which writes the current zip format")
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|Check the|$)", str(err), re.S)
    return BadInput(
        f"checkpoint {name} is corrupt: torch's reader stopped at "
        f"{(detail.group(1) if detail else str(err).splitlines()[0]).strip()!r}. "
        f"Accepted: {accepted()}")
