"""`POST /v1/explain`: the explanation `site-extender simulate` prints, for ExtenderArgs or a Pod manifest
(JSON), over the server's own view, so that everything it has placed counts."""

from __future__ import annotations

import msgspec
from flask import Blueprint, Response, request

from extender.protocol import explain
from extender.protocol.routes import extender
from extender.protocol.wire import WireError, invalid_utf8

bp = Blueprint("explain", __name__)


@bp.post("/v1/explain")
def explain_() -> Response:
    try:
        document = msgspec.json.decode(request.get_data())
    except msgspec.DecodeError as exc:
        raise WireError(f"invalid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise WireError(invalid_utf8(exc)) from None
    except RecursionError:
        raise WireError("invalid JSON: nested too deeply") from None
    service = extender()
    answer = explain.explain(service, explain.args_for(document, service))
    return Response(msgspec.json.encode(answer), status=200, mimetype="application/json")
