"""Run the extender under gunicorn, exactly as deployed, on a free loopback port."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    http: urllib3.PoolManager

    def post(self, path: str, body: bytes | str, content_type: str = "application/json",
             headers: Mapping[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        data = body.encode() if isinstance(body, str) else body
        return self.http.request(
            "POST", self.url + path, body=data,
            headers={"Content-Type": content_type, **(headers or {})}, retries=False,
        )

    def get(self, path: str) -> urllib3.BaseHTTPResponse:
        return self.http.request("GET", self.url + path, retries=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve(tmp_path: Path, env: Mapping[str, str] | None = None, ready_path: str = "/healthz",
          timeout: float = 20.0, wrap: Sequence[str] = (),
          ssl_context: ssl.SSLContext | None = None, via_cli: bool = False) -> Iterator[Served]:
    """Start `gunicorn -c python:extender.ops.gunicorn_conf` with `env` on top of the defaults; `wrap`
    is a command that runs it (e.g. in a mount namespace). With `ssl_context` (the client's side),
    the server is asked over HTTPS. `via_cli` starts it as `site-extender serve --host --port` instead,
    with the address given as options, not in the environment."""
    port = free_port()
    log_path = tmp_path / f"gunicorn-{port}.log"
    full_env = {
        **os.environ,
        "SITE_EXTENDER_HOST": "127.0.0.1",
        "SITE_EXTENDER_PORT": str(port),
        "SITE_EXTENDER_POLICY": str(REPO / "policy"),
        "SITE_EXTENDER_KUBE": "none",
        **(env or {}),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "python:extender.ops.gunicorn_conf"]
    if via_cli:
        del full_env["SITE_EXTENDER_HOST"], full_env["SITE_EXTENDER_PORT"]
        command = [sys.executable, "-m", "extender.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*wrap, *command],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
    http = urllib3.PoolManager(timeout=urllib3.Timeout(total=10), ssl_context=ssl_context)
    scheme = "https" if ssl_context is not None else "http"
    served = Served(f"{scheme}://127.0.0.1:{port}", process, log_path, http)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{served.log()}")
            try:
                if served.get(ready_path).status < 500:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer {ready_path} in {timeout}s:\n{served.log()}")
            time.sleep(0.05)
        yield served
    finally:
        http.clear()  # idle keep-alive connections would hold gunicorn's graceful stop
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        http.clear()
