"""The API calls the extender makes, with `ApiException` translated into `extender.errors` types.

Bodies are read with msgspec into the wire types (`_preload_content=False`): the generated models'
deserialisation costs more than the whole decision for a pod, and only a few fields are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import urllib3
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from extender.errors import ApiError, ConflictError, GoneError, NotFoundError
from extender.protocol.wire import Pod

_ERRORS: dict[int, type[ApiError]] = {404: NotFoundError, 409: ConflictError, 410: GoneError}
_pod_decoder = msgspec.json.Decoder(Pod)


def translate(exc: ApiException) -> ApiError:
    """The error for an `ApiException`: the API server's own message (from its Status body) kept."""
    status = int(exc.status or 0)
    message = str(exc.reason or "")
    body = exc.body
    if body:
        try:
            decoded = json.loads(body)
            if isinstance(decoded, dict) and decoded.get("message"):
                message = str(decoded["message"])
        except ValueError:
            message = str(body)[:500]
    return _ERRORS.get(status, ApiError)(status, str(exc.reason or ""), message)


@contextmanager
def api_errors() -> Iterator[None]:
    """Translate client errors (API statuses and connection failures) raised inside the block."""
    try:
        yield
    except ApiException as exc:
        raise translate(exc) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ApiError(0, "Unreachable", f"API server unreachable: {exc}") from exc


def read_pod(core: CoreV1Api, namespace: str, name: str, timeout: float) -> Pod:
    with api_errors():
        response = core.read_namespaced_pod(name, namespace, _preload_content=False, _request_timeout=timeout)
        try:
            return _pod_decoder.decode(response.data)
        finally:
            response.release_conn()


def bind_pod(core: CoreV1Api, namespace: str, name: str, uid: str, node: str, timeout: float,
             annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> None:
    """POST pods/NAME/binding with the pod uid as precondition. kube-apiserver copies the Binding's
    annotations onto the pod in the same write (and its labels from 1.35 on, PodTopologyLabelsAdmission);
    older servers ignore the labels."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid}
    if annotations:
        metadata["annotations"] = annotations
    if labels:
        metadata["labels"] = labels
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": metadata,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
    with api_errors():
        response = core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False,
                                                      _request_timeout=timeout)
        _done(response)


def patch_pod(core: CoreV1Api, namespace: str, name: str, patch: dict[str, Any], timeout: float) -> None:
    """A JSON merge patch of the pod's metadata."""
    with api_errors():
        response = core.patch_namespaced_pod(name, namespace, patch, _content_type="application/merge-patch+json",
                                             _preload_content=False, _request_timeout=timeout)
        _done(response)


def _done(response: Any) -> None:
    """Read the rest of the body, then give the connection back: a connection released with its body
    unread would hand that body to the next request as its status line."""
    response.data  # noqa: B018 - reading is the point
    response.release_conn()
