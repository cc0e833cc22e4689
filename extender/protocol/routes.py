"""HTTP routes: the extender verbs and the probes. Each verb decodes, calls the service, encodes."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from extender.errors import PlacementsUnavailable
from extender.ops import buildinfo
from extender.protocol.service import Extender
from extender.protocol.wire import (
    ExtenderBindingResult,
    ExtenderFilterResult,
    WireError,
    decode_binding_args,
    decode_extender_args,
    decode_preemption_args,
    encode,
)

log = logging.getLogger(__name__)

bp = Blueprint("extender", __name__)

JSON = "application/json"


def extender() -> Extender:
    from extender.app import EXTENSION_KEY

    return current_app.extensions[EXTENSION_KEY]


def wire(value: object) -> Response:
    return Response(encode(value), status=200, mimetype=JSON)


@bp.post("/filter")
def filter_() -> Response:
    args = decode_extender_args(request.get_data())
    return wire(extender().filter(args))


@bp.post("/prioritize")
def prioritize() -> Response:
    args = decode_extender_args(request.get_data())
    return wire(extender().prioritize(args))


@bp.post("/bind")
def bind() -> Response:
    args = decode_binding_args(request.get_data())
    return wire(extender().bind(args))


@bp.post("/preempt")
def preempt() -> Response:
    args = decode_preemption_args(request.get_data())
    return wire(extender().preempt(args))


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    detail = extender().ready()
    ready = bool(detail["cluster_synced"]) and detail["placements_error"] is None
    return jsonify(ready=ready, **detail), (200 if ready else 503)


@bp.get("/version")
def version_() -> Response:
    return jsonify(buildinfo.info())


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


REASON_UNAVAILABLE = "site-extender cannot decide: {reason}"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(WireError)
    def bad_request(exc: WireError) -> tuple[Response, int]:
        return _error(400, str(exc))

    @app.errorhandler(PlacementsUnavailable)
    def unavailable(exc: PlacementsUnavailable) -> tuple[Response, int]:
        """What is placed cannot be read: no decision. /filter and /bind say so in their answer (the
        scheduler fails the attempt and retries), the rest answer 503."""
        reason = REASON_UNAVAILABLE.format(reason=exc)
        if request.path == "/filter":
            return wire(ExtenderFilterResult(Error=reason)), 200
        if request.path == "/bind":
            return wire(ExtenderBindingResult(Error=reason)), 200
        return _error(503, reason)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if request.path == "/filter":
            return Response(encode({"Nodes": None, "NodeNames": None, "FailedNodes": {},
                                    "FailedAndUnresolvableNodes": {},
                                    "Error": f"site-extender internal error: {type(exc).__name__}"}),
                            status=200, mimetype=JSON), 200
        if request.path == "/bind":
            return Response(encode({"Error": f"site-extender internal error: {type(exc).__name__}"}),
                            status=200, mimetype=JSON), 200
        return _error(500, f"internal error: {type(exc).__name__}")
