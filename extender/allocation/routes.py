"""HTTP routes of the allocation API (`/v1/allocations`): decode, call the service, encode.

Every error body carries the original's `error_code` (`GS.0<type><4 digits>`, its `utils.APIError`)
and `error_message` beside this service's own `error` (and `fields`, `reasons`), so clients written
for the original parse them as they did.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from extender.allocation.request import AllocationRequestError
from extender.allocation.service import AllocationExists, AllocationRefused, Allocations, refusal_body
from extender.allocation.store import StoreUnavailable
from extender.errors import PlacementsUnavailable

bp = Blueprint("allocations", __name__, url_prefix="/v1/allocations")

# The original's codes: InternalServerError (its answer when nothing could be placed, and when the
# scheduler could not serve), RequestBodyParamInvalid, RequestURIParamInvalidError.
INTERNAL = "GS.000001"
BODY_INVALID = "GS.000007"
PATH_PARAM_INVALID = "GS.000030"


def failure(status: int, code: str, error: str, message: str | None = None, **more: object) -> tuple[Response, int]:
    """An error answer: ours (`error`, `more`) with the original's `error_code` and `error_message`."""
    return jsonify(error=error, **more, error_code=code, error_message=message or error), status

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
    if request.method == "HEAD":  # cheap: whether the store can be read, not every allocation encoded
        allocations().store.placements()
        return Response(status=200, mimetype="application/json")
    return jsonify(allocations=[stored.answer["allocation"] for stored in allocations().store.list()])


@bp.get("/<allocation_id>")
def show(allocation_id: str) -> tuple[Response, int]:
    stored = allocations().get(allocation_id)
    if stored is None:
        return failure(404, PATH_PARAM_INVALID, f"no allocation {allocation_id}")
    return jsonify(stored.answer), 200


@bp.delete("/<allocation_id>")
def release(allocation_id: str) -> tuple[Response | str, int]:
    if not allocations().delete(allocation_id):
        return failure(404, PATH_PARAM_INVALID, f"no allocation {allocation_id}")
    return "", 204


@bp.errorhandler(AllocationRequestError)
def invalid(exc: AllocationRequestError) -> tuple[Response, int]:
    return failure(400, BODY_INVALID, f"invalid allocation request: {exc}",
                   f"The request body parameter is illegal: {exc}.",
                   fields=[{"field": path, "message": message} for path, message in exc.problems])


@bp.errorhandler(AllocationExists)
def exists(exc: AllocationExists) -> tuple[Response, int, dict[str, str]]:
    response, status = failure(409, BODY_INVALID, str(exc))
    return response, status, {"Location": url_for(".show", allocation_id=exc.allocation_id)}


@bp.errorhandler(AllocationRefused)
def refused(exc: AllocationRefused) -> tuple[Response, int]:
    # The original answered 500 with this code when the replicas did not fit; 409 says it better.
    body = refusal_body(exc.refusal)
    return failure(409, INTERNAL, body["error"], reasons=body["reasons"])


@bp.errorhandler(PlacementsUnavailable)
def undecidable(exc: PlacementsUnavailable) -> tuple[Response, int]:
    return failure(503, INTERNAL, f"site-extender cannot decide: {exc}")


@bp.errorhandler(StoreUnavailable)
def unavailable(exc: StoreUnavailable) -> tuple[Response, int]:
    return failure(503, INTERNAL, str(exc))
