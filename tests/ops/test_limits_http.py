"""Limits under gunicorn: body size (declared, chunked or lied about), method and media type on the
protocol routes, a deadline for the body, worker timeouts below the scheduler's, graceful shutdown."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from extender.config.settings import DEFAULT_MAX_BODY_BYTES
from extender.ops.limits import MESSAGE_INCOMPLETE, MESSAGE_MEDIA, MESSAGE_METHOD, MESSAGE_TIMEOUT, MESSAGE_TOO_LARGE
from tests.conftest import SCHEDULER_FIXTURES
from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

LIMIT = 4096
FILTER_BODY = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()
PROTOCOL = ["/filter", "/prioritize"]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):
    env = {"SITE_EXTENDER_MAX_BODY_BYTES": str(LIMIT), "SITE_EXTENDER_READ_TIMEOUT": "1"}
    with serve(tmp_path_factory.mktemp("limited"), env=env) as served:
        yield served


def _port(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


def exchange(served: Served, raw: bytes, until_close: bool = False) -> bytes:
    """Send raw bytes; read one whole answer, or everything until the server closes."""
    with socket.create_connection(("127.0.0.1", _port(served)), timeout=15) as sock:
        sock.sendall(raw)
        return read_answer(sock, until_close)


def read_answer(sock: socket.socket, until_close: bool = False) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length and not until_close:
                break
    return data


def parse(answer: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers.get("Content-Length", len(body)))
    return int(lines[0].split()[1]), headers, json.loads(body[:length])


def request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 1000) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def too_large_message() -> dict:
    return {"error": MESSAGE_TOO_LARGE.format(limit=LIMIT)}


def padded(size: int) -> bytes:
    """A valid ExtenderArgs body of exactly `size` bytes (padding in an annotation)."""
    args = json.loads(FILTER_BODY)
    args["Pod"]["metadata"]["annotations"]["padding"] = ""
    base = len(json.dumps(args).encode())
    args["Pod"]["metadata"]["annotations"]["padding"] = "x" * (size - base)
    body = json.dumps(args).encode()
    assert len(body) == size
    return body


@pytest.mark.parametrize("path", PROTOCOL)
def test_body_over_the_limit_is_413_with_the_limit_in_the_message(limited: Served, path: str) -> None:
    response = limited.post(path, padded(LIMIT + 1))

    assert response.status == 413
    assert json.loads(response.data) == too_large_message()


def test_body_at_the_limit_is_served(limited: Served) -> None:
    response = limited.post("/filter", padded(LIMIT))

    assert response.status == 200
    assert json.loads(response.data)["NodeNames"] == ["site2", "site1"]


def test_chunked_body_over_the_limit_is_413(limited: Served) -> None:
    body = padded(LIMIT * 3)

    status, _, answer = parse(exchange(limited, request("/filter", chunked(body), {"Transfer-Encoding": "chunked"})))

    assert status == 413
    assert answer == too_large_message()


def test_chunked_body_under_the_limit_is_served(limited: Served) -> None:
    status, _, answer = parse(exchange(limited, request("/filter", chunked(FILTER_BODY), {"Transfer-Encoding": "chunked"})))

    assert status == 200
    assert answer["NodeNames"] == ["site2", "site1"]


def test_content_length_claiming_more_than_the_limit_is_413_before_the_body(limited: Served) -> None:
    status, _, answer = parse(exchange(limited, request("/filter", b"{}", {"Content-Length": str(LIMIT * 100)})))

    assert status == 413
    assert answer == too_large_message()


def test_content_length_claiming_less_is_read_as_that_much_and_no_more(limited: Served) -> None:
    """The bytes past Content-Length are not part of this body: the first answer judges only the
    declared part (a truncated document: 400), whatever follows is not a request, never a 500."""
    body = padded(LIMIT * 3)

    answer = exchange(limited, request("/filter", body, {"Content-Length": "100"}), until_close=True)
    status, _, first = parse(answer)
    statuses = [line.split()[1] for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]

    assert status == 400
    assert first == {"error": "body is not valid JSON: Input data was truncated"}
    assert statuses == [b"400"]  # gunicorn closes the connection on the rest: it is no request


def test_body_that_never_arrives_is_408_after_the_read_timeout(limited: Served) -> None:
    status, _, answer = parse(exchange(limited, request("/filter", b'{"Pod":', {"Content-Length": "1000"})))

    assert status == 408
    assert answer == {"error": MESSAGE_TIMEOUT.format(seconds=1)}


def test_body_cut_short_by_the_client_is_400_incomplete(limited: Served) -> None:
    with socket.create_connection(("127.0.0.1", _port(limited)), timeout=15) as sock:
        sock.sendall(request("/filter", b'{"Pod":', {"Content-Length": "1000"}))
        sock.shutdown(socket.SHUT_WR)
        status, _, answer = parse(read_answer(sock))

    assert status == 400
    assert answer == {"error": MESSAGE_INCOMPLETE}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", PROTOCOL)
def test_other_methods_are_405_with_allow_post(limited: Served, method: str, path: str) -> None:
    response = limited.http.request(method, limited.url + path, body=FILTER_BODY, retries=False,
                                    headers={"Content-Type": "application/json"})

    assert response.status == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    assert json.loads(response.data) == {"error": MESSAGE_METHOD.format(method=method, path=path)}


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        pytest.param("text/plain", "text/plain", id="text"),
        pytest.param("application/x-www-form-urlencoded", "application/x-www-form-urlencoded", id="form"),
        pytest.param("application/yaml", "application/yaml", id="yaml"),
        pytest.param("", "none", id="missing"),
    ],
)
@pytest.mark.parametrize("path", PROTOCOL)
def test_other_media_types_are_415(limited: Served, path: str, content_type: str, shown: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = limited.http.request("POST", limited.url + path, body=FILTER_BODY, headers=headers, retries=False)

    assert response.status == 415
    assert json.loads(response.data) == {"error": MESSAGE_MEDIA.format(path=path, got=shown)}


def test_json_with_a_charset_is_served(limited: Served) -> None:
    response = limited.post("/filter", FILTER_BODY, content_type="application/json; charset=utf-8")

    assert response.status == 200


def test_default_limit_serves_5000_full_nodes(server: Served) -> None:
    """Full-node mode at 5,000 nodes (copies of the biggest recorded node) fits the default limit."""
    args = json.loads((SCHEDULER_FIXTURES / "full-mode" / "filter-0008.json").read_text())
    biggest = max(args["Nodes"]["items"], key=lambda n: len(json.dumps(n)))
    items = []
    for i in range(5000):
        node = copy.deepcopy(biggest)
        node["metadata"]["name"] = f"node-{i}"
        items.append(node)
    args["Nodes"]["items"] = items
    body = json.dumps(args).encode()

    response = server.post("/filter", body)

    assert len(body) < DEFAULT_MAX_BODY_BYTES
    assert response.status == 200
    answer = json.loads(response.data)
    assert len(answer["Nodes"]["items"]) + len(answer["FailedNodes"]) + len(answer["FailedAndUnresolvableNodes"]) == 5000


def test_worker_timeout_is_shorter_than_the_scheduler_http_timeout() -> None:
    config = yaml.safe_load((REPO / "deploy" / "base" / "scheduler-config.yaml").read_text())
    http_timeout = config["extenders"][0]["httpTimeout"]
    assert http_timeout.endswith("s")
    deployment = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (extender,) = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "site-extender"]
    env = {e["name"]: e["value"] for e in extender.get("env", []) if "value" in e}
    settings = subprocess.run(
        [sys.executable, "-c", "import extender.ops.gunicorn_conf as c; print(c.timeout, c.graceful_timeout)"],
        cwd=REPO, env={**{k: v for k, v in os.environ.items() if not k.startswith("SITE_EXTENDER_")}, **env},
        capture_output=True, text=True, check=True,
    ).stdout.split()
    timeout, graceful = int(settings[0]), int(settings[1])
    grace_period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    assert timeout < float(http_timeout[:-1])
    assert graceful < grace_period


def test_sigterm_during_a_request_still_answers_it(tmp_path: Path) -> None:
    """gunicorn stops accepting on SIGTERM and finishes the request in flight before it exits."""
    with serve(tmp_path, env={"SITE_EXTENDER_READ_TIMEOUT": "20"}) as served:
        raw = request("/filter", FILTER_BODY, {"Content-Length": str(len(FILTER_BODY))})
        with socket.create_connection(("127.0.0.1", _port(served)), timeout=15) as sock:
            sock.sendall(raw[:-50])  # the request is in flight: its body is being read
            time.sleep(0.3)
            served.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert served.process.poll() is None
            sock.sendall(raw[-50:])
            status, _, answer = parse(read_answer(sock))
        served.process.wait(timeout=15)

        assert status == 200
        assert answer["NodeNames"] == ["site2", "site1"]
        assert served.process.returncode == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", _port(served)), timeout=2).close()


def test_docs_show_the_refusals_as_the_server_gives_them(server: Served) -> None:
    readme = (REPO / "docs" / "operations.md").read_text()
    get = server.http.request("GET", server.url + "/filter", retries=False)
    text = server.post("/filter", FILTER_BODY, content_type="text/plain")

    for response in (get, text):
        assert f"`{response.status}` `{response.data.decode().strip()}`" in readme
    assert f"with `Allow: {get.headers['Allow']}`" in readme
    too_large = json.dumps({"error": MESSAGE_TOO_LARGE.format(limit=DEFAULT_MAX_BODY_BYTES)}, separators=(",", ":"))
    assert f"`413` `{too_large}`" in readme
    assert f"`408` `{json.dumps({'error': MESSAGE_TIMEOUT.format(seconds=5)}, separators=(',', ':'))}`" in readme


def test_clients_stalled_in_their_headers_do_not_hold_the_server(limited: Served) -> None:
    """As many clients as gunicorn has threads send half a request and stop: each is cut off after
    SITE_EXTENDER_READ_TIMEOUT, and the scheduler's request is answered (without it: never)."""
    stalled = []
    for _ in range(4):  # SITE_EXTENDER_THREADS
        sock = socket.create_connection(("127.0.0.1", _port(limited)), timeout=30)
        sock.sendall(b"POST /filter HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stalled.append(sock)
    try:
        time.sleep(0.3)
        status, _, answer = parse(exchange(limited, request("/filter", FILTER_BODY, {"Content-Length": str(len(FILTER_BODY))})))
        assert status == 200 and answer["NodeNames"] == ["site2", "site1"]
    finally:
        for sock in stalled:
            sock.close()
