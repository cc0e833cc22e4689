"""HTTP routes of the allocation API (`/v1/allocations`): decode, call the service, encode."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from extender.allocation.request import AllocationRequestError
from extender.allocation.service import AllocationExists, AllocationRefused, Allocations, refusal_body
from extender.allocation.store import StoreUnavailable

bp = Blueprint("allocations", __name__, url_prefix="/v1/allocations")

EXTENSION_KEY = "site_extender_allocations"


def allocations() -> Allocations:
    return current_app.extensions[EXTENSION_KEY]


@bp.post("")
def create() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    allocated = allocations().create(request.get_data())
    return jsonify(allocated.answer), 201, {"Location": url_for(".show", allocation_id=allocated.id)}


@bp.put("/<allocation_id>")
def create_with_id(allocation_id: str) -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    allocated = allocations().create(request.get_data(), allocation_id)
    return jsonify(allocated.answer), 201, {"Location": url_for(".show", allocation_id=allocated.id)}


@bp.get("")
def index() -> Response:
    return jsonify(allocations=[stored.answer["allocation"] for stored in allocations().store.list()])


@bp.get("/<allocation_id>")
def show(allocation_id: str) -> tuple[Response, int]:
    stored = allocations().get(allocation_id)
    if stored is None:
        return jsonify(error=f"no allocation {allocation_id}"), 404
    return jsonify(stored.answer), 200


@bp.delete("/<allocation_id>")
def release(allocation_id: str) -> tuple[Response | str, int]:
    if not allocations().delete(allocation_id):
        return jsonify(error=f"no allocation {allocation_id}"), 404
    return "", 204


@bp.errorhandler(AllocationRequestError)
def invalid(exc: AllocationRequestError) -> tuple[Response, int]:
    return jsonify(error=f"invalid allocation request: {exc}",
                   fields=[{"field": path, "message": message} for path, message in exc.problems]), 400


@bp.errorhandler(AllocationExists)
def exists(exc: AllocationExists) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error=str(exc)), 409, {"Location": url_for(".show", allocation_id=exc.allocation_id)}


@bp.errorhandler(AllocationRefused)
def refused(exc: AllocationRefused) -> tuple[Response, int]:
    return jsonify(refusal_body(exc.refusal)), 409


@bp.errorhandler(StoreUnavailable)
def unavailable(exc: StoreUnavailable) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 503
