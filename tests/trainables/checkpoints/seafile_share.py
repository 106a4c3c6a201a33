"""An imitation of a Seafile server's public folder share on 127.0.0.1, in the shape of the
share-link API the fetch reads (``trainables.checkpoints.share``):

- ``GET /api/v2.1/share-links/<token>/dirents/?path=<folder>``: ``{"dirent_list": [...]}``
  with ``{"is_dir": false, "file_name", "file_path", "size", "last_modified"}`` for files
  and ``{"is_dir": true, "folder_name", "folder_path", ...}`` for folders; an unknown token
  answers 404 ``{"error_msg": "Share link <token> not found."}``, as seahub's
  ``ShareLinkDirents`` does.
- ``GET /d/<token>/files/?p=<path>&dl=1``: a 302 to the file server, ``/seafhttp/files/...``,
  which serves the bytes and answers ``Range: bytes=N-`` with 206.

``cut_after``: the file server sends only that many bytes of a file on its first request
(while announcing the full length), to cut a download off.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit


@dataclass
class Share:
    token: str
    root: Path  # the shared folder's content
    cut_after: dict[str, int] = field(default_factory=dict)  # file path -> bytes, once
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)


def _dirents(share: Share, folder: str) -> list[dict] | None:
    base = share.root / folder.strip("/")
    if not base.is_dir():
        return None
    found = []
    for p in sorted(base.iterdir()):
        rel = "/" + str(p.relative_to(share.root))
        common = {"size": p.stat().st_size if p.is_file() else 0,
                  "last_modified": "2022-03-01T10:00:00+01:00"}
        if p.is_dir():
            found.append({"is_dir": True, "folder_path": rel + "/", "folder_name": p.name,
                          **common})
        else:
            found.append({"is_dir": False, "file_path": rel, "file_name": p.name, **common})
    return found


def _handler(share: Share) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            share.requests.append((url.path, self.headers.get("Range", "")))
            parts = url.path.strip("/").split("/")
            if url.path.startswith("/api/v2.1/share-links/") and parts[-1] == "dirents":
                token = parts[3]
                listing = _dirents(share, query.get("path", ["/"])[0]) if token == \
                    share.token else None
                if listing is None:
                    self._json(404, {"error_msg": f"Share link {token} not found."})
                else:
                    self._json(200, {"dirent_list": listing})
            elif parts[:1] == ["d"] and parts[2:3] == ["files"]:
                if parts[1] != share.token:
                    self._json(404, {"error_msg": "Link does not exist."})
                    return
                self.send_response(302)
                self.send_header("Location", "/seafhttp/files/0a1b2c/" +
                                 quote(query["p"][0].lstrip("/")))
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif url.path.startswith("/seafhttp/files/0a1b2c/"):
                self._file(unquote(url.path[len("/seafhttp/files/0a1b2c/"):]))
            else:
                self._json(404, {"error_msg": "not found"})

        def _file(self, rel: str) -> None:
            data = (share.root / rel).read_bytes()
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes="):
                start = int(ranged[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            cut = share.cut_after.pop("/" + rel, None)
            self.wfile.write(data[start:] if cut is None else data[start:start + cut])
            if cut is not None:
                self.close_connection = True

    return Handler


class SeafileImitation:
    """The server, started in a thread on a free loopback port."""

    def __init__(self, share: Share) -> None:
        self.share = share
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(share))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def link(self, token: str | None = None) -> str:
        return f"{self.server}/d/{token or self.share.token}/"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
