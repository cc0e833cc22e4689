"""Request limits: every body is read here, bounded and within a deadline, before any view sees it;
the routes that take a body take only `application/json`; every refusal is answered with a JSON
message that says what to change.

kube-scheduler always sends `POST <urlPrefix>/<verb>` with `Content-Type: application/json`: anything
else is not the scheduler, and is refused before the body is read. The allocation API and
/v1/explain take JSON only as well: a browser form (`text/plain`, `application/x-www-form-urlencoded`)
posted from another site is refused with 415, never acted on.
"""

from __future__ import annotations

import io
import socket
from typing import IO

from flask import Flask, Response, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected, MethodNotAllowed, RequestEntityTooLarge

from extender.config.settings import env_number

PROTOCOL_PATHS = frozenset({"/filter", "/prioritize", "/bind", "/preempt"})
JSON_ONLY_PREFIXES = ("/v1/",)
"""Where a request with a body must be JSON, beside the protocol routes."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON = "application/json"
DEFAULT_READ_TIMEOUT = 5.0
"""Seconds a client gets to send its request line, headers and whole body, counted from its first byte
(`extender.ops.worker`), and the socket timeout while answering: half the scheduler's httpTimeout in
deploy/. A client that trickles or stalls would otherwise hold a thread forever."""

MESSAGE_TOO_LARGE = ("request body exceeds the limit of {limit} bytes "
                     "(SITE_EXTENDER_MAX_BODY_BYTES; use nodeCacheCapable: true to send node names only)")
MESSAGE_METHOD = "method {method} is not allowed on {path}: the extender verbs take POST with Content-Type application/json"
MESSAGE_MEDIA = "Content-Type must be application/json on {path}, got {got}"
MESSAGE_TIMEOUT = "request body not received within {seconds:g}s"
MESSAGE_INCOMPLETE = "request body incomplete: the connection ended before Content-Length bytes arrived"
MESSAGE_CHUNKED = "malformed chunked body: {error}"


def read_timeout() -> float:
    return env_number("READ_TIMEOUT", DEFAULT_READ_TIMEOUT, float, minimum=0)


def init_app(app: Flask) -> None:
    """Register the checks and the error answers on `app` (uses `MAX_CONTENT_LENGTH`)."""
    timeout = read_timeout()

    @app.before_request
    def read_body_within_limits() -> tuple[Response, int] | None:
        if request.method not in BODY_METHODS or request.routing_exception is not None:
            return None  # no route takes it: 404/405 say so, and gunicorn drops the unread body
        if _json_only(request.path) and request.mimetype != JSON:
            return _refuse(415, MESSAGE_MEDIA.format(path=request.path, got=request.content_type or "none"))
        sock = request.environ.get("gunicorn.socket")
        if isinstance(sock, socket.socket) and timeout > 0:
            # Bounds the body read and the answer write of this request; gunicorn resets the
            # socket's mode when the connection goes back to keep-alive.
            sock.settimeout(timeout)
        try:
            if request.content_length is None:
                _buffer_unsized_body(app.config["MAX_CONTENT_LENGTH"])
            body = request.get_data(cache=True)
        except TimeoutError:
            return _refuse(408, MESSAGE_TIMEOUT.format(seconds=timeout))
        except ParseException as exc:  # gunicorn's chunked decoding: a bad size, a missing CRLF
            return _refuse(400, MESSAGE_CHUNKED.format(error=_describe(exc)))
        except (ClientDisconnected, NoMoreData) as exc:  # werkzeug's stream turns a socket error into the first
            if isinstance(exc.__context__, TimeoutError):
                return _refuse(408, MESSAGE_TIMEOUT.format(seconds=timeout))
            if isinstance(exc.__context__, ParseException):
                return _refuse(400, MESSAGE_CHUNKED.format(error=_describe(exc.__context__)))
            return _refuse(400, MESSAGE_INCOMPLETE)
        if request.content_length is not None and len(body) < request.content_length:
            return _refuse(400, MESSAGE_INCOMPLETE)
        if isinstance(sock, socket.socket) and timeout > 0:
            sock.settimeout(timeout)  # the reads used up the request's deadline; the answer gets its own
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
        # gunicorn discards the unread rest of the body before it reads the next request.
        return _refuse(413, MESSAGE_TOO_LARGE.format(limit=app.config["MAX_CONTENT_LENGTH"]))

    @app.errorhandler(MethodNotAllowed)
    def method_not_allowed(exc: MethodNotAllowed) -> tuple[Response, int]:
        if request.path in PROTOCOL_PATHS:
            message = MESSAGE_METHOD.format(method=request.method, path=request.path)
        else:
            message = f"method {request.method} is not allowed on {request.path}"
        response, status = _refuse(405, message)
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or ()))
        return response, status


def _buffer_unsized_body(limit: int | None) -> None:
    """Read a body without Content-Length (chunked) up to `limit`, or refuse it with 413.

    werkzeug caps such a stream at the limit but hands back the first `limit` bytes without an
    error: the body would be judged truncated (400) instead of too large."""
    environ = request.environ
    stream: IO[bytes] = environ["wsgi.input"]
    if not environ.get("wsgi.input_terminated"):
        return  # werkzeug then reads nothing at all: an empty body, answered 400
    chunks, size = [], 0
    while chunk := stream.read(65536):
        size += len(chunk)
        if limit is not None and size > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
    data = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.__dict__.pop("content_length", None)  # a cached property, read above


def _json_only(path: str) -> bool:
    return path in PROTOCOL_PATHS or path.startswith(JSON_ONLY_PREFIXES)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _refuse(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status
