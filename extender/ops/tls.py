"""TLS for gunicorn, with client certificates and reload on rotation.

`SITE_EXTENDER_TLS_CERT` / `_KEY` turn TLS on; `SITE_EXTENDER_TLS_CLIENT_CA` makes the server ask
every client for a certificate signed by that CA (kube-scheduler's `tlsConfig.certFile`/`keyFile`).
A presented certificate that does not verify fails the handshake; a connection without one may only
reach the kubelet's probe paths (`/healthz`, `/readyz`): the app answers 403 everywhere else.

cert-manager rewrites the files in place (Secret volume: an atomic `..data` symlink swap). Every new
connection asks `ReloadingContext.current()`, which rebuilds the `SSLContext` when a file's identity or
mtime changed; connections already open keep the context they started with, so nothing is dropped.
A half-written pair (new certificate, old key) fails to load: the old context stays and the next
connection tries again.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from extender.config.settings import env

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Answered without a client certificate: kubelet probes cannot present one."""
DEFAULT_HANDSHAKE_TIMEOUT = 2.0
"""Seconds for a client to complete the TLS handshake and send its first request's headers (the
scheduler, on loopback, takes milliseconds)."""
MESSAGE_NO_CLIENT_CERT = ("a client certificate signed by SITE_EXTENDER_TLS_CLIENT_CA is required "
                          "(kube-scheduler: tlsConfig.certFile and keyFile)")


@dataclass(frozen=True, slots=True)
class TLSFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None

    @classmethod
    def from_env(cls) -> TLSFiles | None:
        """The files named by the environment; None when TLS is off. Half a configuration is an error."""
        cert, key, client_ca = env("TLS_CERT"), env("TLS_KEY"), env("TLS_CLIENT_CA")
        if not cert and not key:
            if client_ca:
                raise ValueError("SITE_EXTENDER_TLS_CLIENT_CA needs SITE_EXTENDER_TLS_CERT and SITE_EXTENDER_TLS_KEY")
            return None
        if not cert or not key:
            raise ValueError("SITE_EXTENDER_TLS_CERT and SITE_EXTENDER_TLS_KEY must be set together")
        return cls(Path(cert), Path(key), Path(client_ca) if client_ca else None)

    def paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) + ((self.client_ca,) if self.client_ca else ())


def _signature(paths: tuple[Path, ...]) -> tuple[tuple[int, int, int], ...]:
    """What changes when any file is replaced or rewritten (os.stat follows the `..data` symlinks)."""
    result = []
    for path in paths:
        st = os.stat(path)
        result.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(result)


class _DeadlineContext(ssl.SSLContext):
    """Bounds the handshake (and the first request's headers): gunicorn's threads wrap and handshake
    a blocking socket without a timeout, so a few clients sending half a ClientHello would hold every
    thread. gunicorn makes the socket blocking again for each request it reads on a kept-alive connection."""

    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        if self.handshake_timeout > 0:
            sock.settimeout(self.handshake_timeout)
        return super().wrap_socket(sock, *args, **kwargs)


def build_context(files: TLSFiles) -> ssl.SSLContext:
    """A server context: TLS 1.2+, the certificate chain, and client verification when a CA is set."""
    context = _DeadlineContext(ssl.PROTOCOL_TLS_SERVER)
    context.handshake_timeout = float(env("TLS_HANDSHAKE_TIMEOUT", str(DEFAULT_HANDSHAKE_TIMEOUT))
                                      or DEFAULT_HANDSHAKE_TIMEOUT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=files.cert, keyfile=files.key)
    if files.client_ca:
        context.load_verify_locations(cafile=files.client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class ReloadingContext:
    """The current `SSLContext` for `files`, rebuilt when they change."""

    def __init__(self, files: TLSFiles, on_reload: Callable[[bool], None] | None = None) -> None:
        self.files = files
        self.on_reload = on_reload
        self._lock = threading.Lock()
        self._signature = _signature(files.paths())
        self._context = self._build()

    def _build(self) -> ssl.SSLContext:
        context = build_context(self.files)
        # Should a server keep one context for several connections, the handshake still swaps in
        # the current one: sni_callback runs on every ClientHello, with or without SNI.
        context.sni_callback = self._sni_callback
        return context

    def _sni_callback(self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                      context: ssl.SSLContext) -> None:
        current = self.current()
        if current is not context:
            sock.context = current
        return None

    def current(self) -> ssl.SSLContext:
        try:
            signature = _signature(self.files.paths())
        except OSError as exc:  # mid-rotation: a file is briefly missing
            log.warning("TLS files not readable, keeping the current certificate: %s", exc)
            return self._context
        if signature == self._signature:
            return self._context
        with self._lock:
            if signature != self._signature:
                try:
                    context = self._build()
                except (OSError, ssl.SSLError, ValueError) as exc:
                    log.error("TLS files changed but do not load, keeping the current certificate: %s", exc)
                    if self.on_reload:
                        self.on_reload(False)
                    return self._context
                self._context, self._signature = context, signature
                log.info("TLS certificate reloaded", extra={"cert": str(self.files.cert)})
                if self.on_reload:
                    self.on_reload(True)
        return self._context


_reloading: ReloadingContext | None = None
_listener: list[Callable[[bool], None]] = []


def on_reload(listener: Callable[[bool], None]) -> None:
    """Tell `listener` (the metrics) of every reload this worker makes, successful or not."""
    _listener[:] = [listener]


def _reloaded(ok: bool) -> None:
    for listener in _listener:
        listener(ok)


def gunicorn_ssl_context(config: object, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """gunicorn's `ssl_context` hook: called for each new connection in this worker."""
    global _reloading
    if _reloading is None:
        files = TLSFiles.from_env()
        if files is None:
            return default_ssl_context_factory()
        _reloading = ReloadingContext(files, on_reload=_reloaded)
    return _reloading.current()


def init_app(app: Flask) -> None:
    """Refuse requests without a verified client certificate when a client CA is configured.
    Register this before anything that reads the body."""
    files = TLSFiles.from_env()
    if files is None or files.client_ca is None:
        return

    @app.before_request
    def require_client_certificate() -> tuple[Response, int] | None:
        if request.path in OPEN_PATHS:
            return None
        sock = request.environ.get("gunicorn.socket")
        if isinstance(sock, ssl.SSLSocket) and sock.getpeercert():
            return None
        return jsonify(error=MESSAGE_NO_CLIENT_CERT), 403
