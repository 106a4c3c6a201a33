"""A public Seafile share link, read through the share service's documented share-link API.

The reference code's README links the paper's converted checkpoints as Seafile folder shares
(``https://<server>/d/<token>/``). Seafile lists such a folder at
``GET <server>/api/v2.1/share-links/<token>/dirents/?path=<folder>`` (JSON ``dirent_list``:
files with ``file_name``, ``file_path``, ``size``; folders with ``folder_name``,
``folder_path``) and serves a file at ``<server>/d/<token>/files/?p=<file_path>&dl=1``, a
redirect to the file server, which answers ``Range`` requests: a cut-off download resumes
where its ``.part`` file ends. An unknown or withdrawn share answers 404.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from common.errors import BadInput

TIMEOUT_S = 60
CHUNK = 1 << 20


class ShareUnavailable(BadInput):
    """The share cannot be listed: unknown or withdrawn (404), or not a folder share."""


@dataclass(frozen=True)
class ShareLink:
    """A folder share: its server (``https://host``) and token."""

    server: str
    token: str

    @property
    def url(self) -> str:
        return f"{self.server}/d/{self.token}/"

    def dirents_url(self, folder: str) -> str:
        return (f"{self.server}/api/v2.1/share-links/{self.token}/dirents/"
                f"?path={quote(folder, safe='')}")

    def file_url(self, file_path: str) -> str:
        return f"{self.server}/d/{self.token}/files/?p={quote(file_path, safe='')}&dl=1"


@dataclass(frozen=True)
class ShareFile:
    """One file of a share: its path in the share, name and size in bytes."""

    path: str
    name: str
    size: int


def parse_share_url(url: str) -> ShareLink:
    """``https://host[/prefix]/d/<token>/`` as a ``ShareLink``; anything else is bad input."""
    parts = urlsplit(url)
    found = re.fullmatch(r"(.*)/d/([0-9a-zA-Z]+)/?", parts.path)
    if parts.scheme not in ("http", "https") or not parts.netloc or not found:
        raise BadInput(f"share {url!r}: expected a Seafile folder share link such as "
                       "https://seafile.example.org/d/0123456789abcdef/")
    return ShareLink(f"{parts.scheme}://{parts.netloc}{found.group(1)}", found.group(2))


def _get_json(url: str, share: ShareLink) -> dict:
    """One API request's JSON; a 404 or a non-JSON answer is ``ShareUnavailable``."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:300].decode("utf-8", "replace")
        if e.code in (400, 403, 404):
            raise ShareUnavailable(
                f"the share {share.url} answers {e.code} ({_error_msg(detail)}): it was "
                "withdrawn, moved, or is not a public folder share; check the link in the "
                "reference code's README (IST-DASLab/sparse-imagenet-transfer)") from None
        raise OSError(f"the share {share.url} answered {e.code}: {detail}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise ShareUnavailable(f"the share {share.url} did not answer with the share-link "
                               f"API's JSON (got {body[:80]!r})") from None


def _error_msg(detail: str) -> str:
    try:
        return str(json.loads(detail).get("error_msg", detail))
    except (ValueError, AttributeError):
        return detail.strip() or "no detail"


def list_files(share: ShareLink, folder: str = "/") -> list[ShareFile]:
    """Every file of the share under ``folder``, sub-folders included, in listing order."""
    data = _get_json(share.dirents_url(folder), share)
    found = []
    for entry in data.get("dirent_list", []):
        if entry.get("is_dir"):
            found += list_files(share, entry["folder_path"])
        else:
            found.append(ShareFile(entry["file_path"], entry["file_name"], int(entry["size"])))
    return found


def download(share: ShareLink, item: ShareFile, part: Path,
             progress: Callable[[int], None] | None = None) -> Path:
    """Download ``item`` into ``part``, resuming after the bytes already there; returns
    ``part`` once it holds exactly ``item.size`` bytes.

    A server that ignores ``Range`` (200 instead of 206) sends the whole file again, which
    replaces ``part``. ``progress(n)`` is called with each chunk's size.

    Raises:
        OSError: the connection failed or the download ended short; ``part`` keeps what
            arrived, so the next call resumes.
        BadInput: the file on the share is longer than the listing said.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if have == item.size:
        return part
    if have > item.size:
        part.unlink()
        have = 0
    request = urllib.request.Request(share.file_url(item.path))
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        resumed = response.status == 206
        if progress and have and not resumed:
            progress(-have)  # the server starts over
        with part.open("ab" if resumed else "wb") as out:
            try:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
            except (http.client.IncompleteRead, ConnectionError):
                pass  # cut off: what arrived is kept, the size check below says so
    size = part.stat().st_size
    if size > item.size:
        raise BadInput(f"{item.path} on {share.url}: got {size} bytes, the listing says "
                       f"{item.size}")
    if size < item.size:
        raise OSError(f"{item.path} on {share.url}: the download ended after {size} of "
                      f"{item.size} bytes; run the same command again to resume it")
    return part
