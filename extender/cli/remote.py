"""Asking a running extender from the command line (`--server URL`): plain HTTP(S) with the standard
library, an answer that is not JSON or a connection that fails is said as such."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 30


class RemoteError(Exception):
    """The server could not be asked, or did not answer what was expected."""


def call(server: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """(status, decoded JSON) of GET (or POST with `body`) `server` + `path`."""
    if not server.startswith(("http://", "https://")):
        raise RemoteError(f"--server {server!r}: expected a URL such as http://localhost:8888")
    url = server.rstrip("/") + path
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - the user's URL
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(f"cannot reach {url}: {reason}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        raise RemoteError(f"{url} answered {status} with something that is not JSON: {raw[:200]!r}") from None
