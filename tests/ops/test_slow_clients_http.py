"""Slow clients under gunicorn as deployed: quiet connections cost no thread, and a request's headers
and body must arrive within one deadline however the bytes trickle in; the scheduler's /filter is
answered meanwhile, far inside its httpTimeout (10 s in deploy/)."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.ops.test_limits_http import parse, read_answer, request
from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

FILTER_BODY = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()
HEAD = b"POST /filter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def port(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


class Trickler(threading.Thread):
    """Sends a request one byte every `every` seconds until the server closes; records when."""

    def __init__(self, served: Served, payload: bytes, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port(served)), timeout=60)
        self.payload, self.every = payload, every
        self.started = time.monotonic()
        self.cut_after: float | None = None
        self.answer = b""
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for byte in self.payload:
                self.sock.sendall(bytes([byte]))
                readable, _, _ = select.select([self.sock], [], [], self.every)
                if readable or self.stop.is_set():
                    break  # the server answered or closed
        except OSError:
            pass
        self.cut_after = time.monotonic() - self.started
        try:
            self.answer = read_answer(self.sock, until_close=True)
        except OSError:
            pass
        self.sock.close()


def healthy_filter(served: Served) -> tuple[float, dict]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port(served)), timeout=30) as sock:
        sock.sendall(request("/filter", FILTER_BODY, {"Content-Length": str(len(FILTER_BODY))}))
        status, _, answer = parse(read_answer(sock))
    assert status == 200
    return time.monotonic() - started, answer


def deployed_env() -> dict[str, str]:
    """The worker settings deploy/ ships (threads, the request deadline)."""
    deployment = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (extender,) = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "site-extender"]
    env = {e["name"]: e["value"] for e in extender["env"] if "value" in e}
    return {name: env[name] for name in ("SITE_EXTENDER_THREADS", "SITE_EXTENDER_READ_TIMEOUT")}


@pytest.fixture
def deployed(tmp_path: Path):
    env = deployed_env()
    assert env["SITE_EXTENDER_READ_TIMEOUT"] == "5"  # the deadline the assertions below count on
    with serve(tmp_path, env=env) as served:
        yield served


def test_a_healthy_filter_is_fast_beside_30_idle_and_4_trickling_connections(deployed: Served) -> None:
    idle = [socket.create_connection(("127.0.0.1", port(deployed)), timeout=60) for _ in range(30)]
    payload = HEAD + f"Content-Length: {len(FILTER_BODY)}\r\n\r\n".encode() + FILTER_BODY
    tricklers = [Trickler(deployed, payload) for _ in range(4)]
    for t in tricklers:
        t.start()
    try:
        time.sleep(1.0)
        took = [healthy_filter(deployed) for _ in range(3)]

        # before: 34 s behind the idle connections; kube-scheduler gives up after 10 s
        assert max(t for t, _ in took) < 1.0, took
        assert all(answer["NodeNames"] == ["site2", "site1"] for _, answer in took)
    finally:
        for t in tricklers:
            t.stop.set()
        for sock in idle:
            sock.close()


def test_a_trickling_client_is_cut_at_the_deadline(deployed: Served) -> None:
    """One byte every 2 s never trips a per-read timeout; the deadline of the whole request does."""
    for payload in (HEAD + b"X-Slow: " + b"a" * 100,  # headers that never end
                    HEAD + f"Content-Length: {len(FILTER_BODY)}\r\n\r\n".encode() + FILTER_BODY):
        trickler = Trickler(deployed, payload, every=0.5)
        trickler.start()
        trickler.join(timeout=15)

        assert not trickler.is_alive(), "the trickling client was never cut off"
        assert trickler.cut_after is not None and trickler.cut_after < 5 + 1.5, trickler.cut_after
        if trickler.answer:  # cut in its body: the answer says why
            assert b" 408 " in trickler.answer.split(b"\r\n", 1)[0]
            assert b"request body not received within 5s" in trickler.answer


def test_idle_connections_hold_no_thread(deployed: Served) -> None:
    idle = [socket.create_connection(("127.0.0.1", port(deployed)), timeout=60) for _ in range(40)]
    try:
        time.sleep(0.5)
        took, answer = healthy_filter(deployed)

        assert took < 1.0
        assert json.dumps(answer)
    finally:
        for sock in idle:
            sock.close()
