"""TLS under gunicorn: only clients with a certificate of the client CA reach the extender, and the
server certificate is reloaded when cert-manager rotates it, without failing a request."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509

from extender.ops.tls import MESSAGE_NO_CLIENT_CERT, ReloadingContext, TLSFiles
from tests.certs import CA, Issued, client_context
from tests.metrics_support import scrape, value
from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

FILTER_BODY = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()


class SecretMount:
    """A directory laid out as kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`, `..data -> ..<version>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.versions = 0

    def publish(self, ca: CA, name: str) -> Issued:
        self.versions += 1
        version = self.root / f"..2026_11_23_{self.versions:02d}"
        version.mkdir()
        issued = ca.issue(name, server=True, cert_path=version / "tls.crt", key_path=version / "tls.key")
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version.name)
        os.replace(tmp, self.root / "..data")  # the atomic swap
        for key in ("tls.crt", "tls.key"):
            if not (self.root / key).is_symlink():
                (self.root / key).symlink_to(f"..data/{key}")
        return issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, stranger_ca = CA(base / "server-ca", "server-ca"), CA(base / "client-ca", "client-ca"), CA(base / "stranger", "stranger-ca")
    return {
        "server_ca": server_ca,
        "client_ca": client_ca,
        "scheduler": client_ca.issue("kube-scheduler", server=False),
        "stranger": stranger_ca.issue("intruder", server=False),
    }


@pytest.fixture(scope="module")
def mount(tmp_path_factory: pytest.TempPathFactory, pki) -> SecretMount:
    secret = SecretMount(tmp_path_factory.mktemp("secret") / "tls")
    secret.publish(pki["server_ca"], "site-extender")
    return secret


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki, mount: SecretMount):
    env = {
        "SITE_EXTENDER_TLS_CERT": str(mount.root / "tls.crt"),
        "SITE_EXTENDER_TLS_KEY": str(mount.root / "tls.key"),
        "SITE_EXTENDER_TLS_CLIENT_CA": str(pki["client_ca"].path),
    }
    context = client_context(pki["server_ca"], pki["scheduler"])
    with serve(tmp_path_factory.mktemp("tls-server"), env=env, ssl_context=context) as served:
        yield served


def _port(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


def _post(served: Served, context: ssl.SSLContext, path: str = "/filter") -> tuple[int, dict]:
    conn = http.client.HTTPSConnection("127.0.0.1", _port(served), context=context, timeout=10)
    try:
        conn.request("POST", path, body=FILTER_BODY, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _served_serial(served: Served, context: ssl.SSLContext) -> int:
    with context.wrap_socket(socket.create_connection(("127.0.0.1", _port(served)), timeout=10),
                             server_hostname="127.0.0.1") as sock:
        return x509.load_der_x509_certificate(sock.getpeercert(binary_form=True)).serial_number


def test_scheduler_certificate_is_served(tls_server: Served, pki) -> None:
    status, answer = _post(tls_server, client_context(pki["server_ca"], pki["scheduler"]))

    assert status == 200
    assert answer["NodeNames"] == ["site2", "site1"]


def test_request_without_client_certificate_is_refused(tls_server: Served, pki) -> None:
    status, answer = _post(tls_server, client_context(pki["server_ca"]))

    assert status == 403
    assert answer == {"error": MESSAGE_NO_CLIENT_CERT}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_without_client_certificate(tls_server: Served, pki, path: str) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", _port(tls_server), context=client_context(pki["server_ca"]),
                                       timeout=10)
    conn.request("GET", path)

    assert conn.getresponse().status == 200
    conn.close()


@pytest.mark.parametrize("path", ["/metrics", "/version"])
def test_other_reads_need_a_client_certificate(tls_server: Served, pki, path: str) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", _port(tls_server), context=client_context(pki["server_ca"]),
                                       timeout=10)
    conn.request("GET", path)

    assert conn.getresponse().status == 403
    conn.close()


def test_certificate_of_another_ca_fails_the_handshake(tls_server: Served, pki) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _post(tls_server, client_context(pki["server_ca"], pki["stranger"]))


def test_a_serving_certificate_of_the_client_ca_cannot_call(tls_server: Served, pki, tmp_path: Path) -> None:
    """Only certificates with the clientAuth usage: the extender's own serving certificate comes from
    the same CA in deploy/tls/, and must not open the door."""
    serving = pki["client_ca"].issue("site-extender", server=True, cert_path=tmp_path / "s.crt", key_path=tmp_path / "s.key")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _post(tls_server, client_context(pki["server_ca"], serving))


def test_stalled_handshakes_do_not_hold_the_server(tls_server: Served, pki) -> None:
    """As many clients as gunicorn has threads send half a ClientHello and stop: the handshake
    deadline frees the threads, the scheduler's request is answered (without it: never)."""
    stalled = []
    for _ in range(4):  # SITE_EXTENDER_THREADS
        sock = socket.create_connection(("127.0.0.1", _port(tls_server)), timeout=30)
        sock.sendall(b"\x16\x03\x01\x00\xff")  # a TLS record header announcing more than comes
        stalled.append(sock)
    try:
        time.sleep(0.3)
        conn = http.client.HTTPSConnection("127.0.0.1", _port(tls_server), timeout=15,
                                           context=client_context(pki["server_ca"], pki["scheduler"]))
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        for sock in stalled:
            sock.close()


def test_plain_http_gets_no_answer(tls_server: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", _port(tls_server), timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("POST", "/filter", body=FILTER_BODY, headers={"Content-Type": "application/json"})
        conn.getresponse()
    conn.close()


def test_rotated_certificate_is_served_without_failing_a_request(tls_server: Served, pki, mount: SecretMount) -> None:
    context = client_context(pki["server_ca"], pki["scheduler"])
    before = _served_serial(tls_server, context)
    outcomes: list[object] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                outcomes.append(_post(tls_server, context)[0])
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                outcomes.append(exc)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        while len(outcomes) < 5:
            time.sleep(0.01)
        rotated = mount.publish(pki["server_ca"], "site-extender")
        deadline = time.monotonic() + 10
        while (serial := _served_serial(tls_server, context)) != rotated.serial and time.monotonic() < deadline:
            time.sleep(0.05)
        during = len(outcomes)
        while len(outcomes) < during + 5:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join()

    assert before != rotated.serial
    assert serial == rotated.serial
    assert outcomes and all(o == 200 for o in outcomes), [o for o in outcomes if o != 200][:3]
    assert "TLS certificate reloaded" in tls_server.log()
    assert value(scrape(tls_server), "site_extender_tls_reloads_total", result="success") >= 1


def test_half_written_pair_keeps_the_current_certificate(tmp_path: Path, pki) -> None:
    directory = tmp_path / "plain"
    directory.mkdir()
    first = pki["server_ca"].issue("site-extender", server=True, cert_path=directory / "tls.crt",
                                   key_path=directory / "tls.key")
    env = {"SITE_EXTENDER_TLS_CERT": str(directory / "tls.crt"), "SITE_EXTENDER_TLS_KEY": str(directory / "tls.key")}
    context = client_context(pki["server_ca"])
    with serve(tmp_path, env=env, ssl_context=context) as served:
        # A writer that replaces the certificate first and the key a moment later.
        other = pki["server_ca"].issue("next", server=True, cert_path=tmp_path / "next.crt", key_path=tmp_path / "next.key")
        (directory / "tls.crt").write_bytes(other.cert.read_bytes())
        assert _served_serial(served, context) == first.serial
        (directory / "tls.key").write_bytes(other.key.read_bytes())
        deadline = time.monotonic() + 10
        while (serial := _served_serial(served, context)) != other.serial and time.monotonic() < deadline:
            time.sleep(0.05)

        assert serial == other.serial
        assert "TLS files changed but do not load, keeping the current certificate" in served.log()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"SITE_EXTENDER_TLS_CERT": "/nonexistent/tls.crt"},
                     "SITE_EXTENDER_TLS_CERT and SITE_EXTENDER_TLS_KEY must be set together", id="cert-without-key"),
        pytest.param({"SITE_EXTENDER_TLS_CLIENT_CA": "/nonexistent/ca.crt"},
                     "SITE_EXTENDER_TLS_CLIENT_CA needs SITE_EXTENDER_TLS_CERT and SITE_EXTENDER_TLS_KEY", id="ca-alone"),
        pytest.param({"SITE_EXTENDER_TLS_CERT": "/nonexistent/tls.crt", "SITE_EXTENDER_TLS_KEY": "/nonexistent/tls.key"},
                     "No such file or directory", id="missing-files"),
    ],
)
def test_incomplete_tls_configuration_stops_the_start(env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:extender.ops.gunicorn_conf"], cwd=REPO,
        env={**os.environ, "SITE_EXTENDER_PORT": "0", "SITE_EXTENDER_HOST": "127.0.0.1", **env},
        capture_output=True, text=True, timeout=30,
    )

    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_a_context_held_before_the_rotation_still_hands_out_the_new_certificate(tmp_path: Path, pki) -> None:
    """For a server that keeps one context for every connection: the handshake swaps in the current one."""
    secret = SecretMount(tmp_path / "tls")
    secret.publish(pki["server_ca"], "site-extender")
    reloading = ReloadingContext(TLSFiles(secret.root / "tls.crt", secret.root / "tls.key"))
    held = reloading.current()
    rotated = secret.publish(pki["server_ca"], "site-extender")
    server_sock, client_sock = socket.socketpair()
    served_by = threading.Thread(target=lambda: held.wrap_socket(server_sock, server_side=True).close())
    served_by.start()
    try:
        with client_context(pki["server_ca"]).wrap_socket(client_sock, server_hostname="localhost") as tls:
            serial = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number
    finally:
        served_by.join(timeout=10)
        server_sock.close()

    assert serial == rotated.serial
