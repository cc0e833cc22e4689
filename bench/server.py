"""Start the extender exactly as deployed (gunicorn, `-c python:extender.ops.gunicorn_conf`, env settings)
on loopback, and find its worker process to read its resident memory."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.cluster import REPO
from tests.server import free_port

MEMORY_TMP = "/dev/shm"


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_rss_kib: int = 0
    """Worker VmRSS when /readyz first answered 200."""

    def worker_pid(self) -> int:
        """The gunicorn worker: the one child of the master process."""
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid:
                children.append(int(entry))
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker under pid {self.process.pid}, found {children}")
        return children[0]

    def worker_memory_kib(self) -> dict[str, int]:
        """VmRSS (resident now) and VmHWM (peak resident) of the worker, in KiB."""
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}

    def readyz(self) -> dict:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", "/readyz")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve(log_dir: Path, env: Mapping[str, str], timeout: float = 60.0) -> Iterator[Server]:
    """gunicorn with `env` over the process environment; up once /readyz answers 200."""
    port = free_port()
    log_path = log_dir / f"gunicorn-{port}.log"
    full_env = {**os.environ, "SITE_EXTENDER_HOST": "127.0.0.1", "SITE_EXTENDER_PORT": str(port), **env}
    if Path(MEMORY_TMP).is_dir():  # deploy/ puts the worker heartbeat file on a memory-backed emptyDir
        full_env.setdefault("SITE_EXTENDER_WORKER_TMP_DIR", MEMORY_TMP)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:extender.ops.gunicorn_conf"],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
    server = Server("127.0.0.1", port, process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(server):
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn not ready in {timeout}s:\n{server.log()}")
            time.sleep(0.05)
        server.ready_rss_kib = server.worker_memory_kib()["VmRSS"]
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(server: Server) -> bool:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
