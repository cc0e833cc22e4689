"""The API calls the extender makes on pods, and `ApiException` translated into `extender.errors` types.

The pod calls (read, bind, patch) are on the bind's critical path: they go through `Transport` (the
official client's pool and credentials, without its generated layer), their bodies read with msgspec
into the wire types. Other calls use the generated API classes inside `api_errors()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import urllib3
from kubernetes.client.exceptions import ApiException

from extender.errors import ApiError
from extender.kube.transport import MERGE_PATCH, Transport, api_error, path
from extender.protocol.wire import Pod

_pod_decoder = msgspec.json.Decoder(Pod)
POD = "/api/v1/namespaces/{namespace}/pods/{name}"


def translate(exc: ApiException) -> ApiError:
    """The error for an `ApiException`: the API server's own message (from its Status body) kept."""
    return api_error(int(exc.status or 0), str(exc.reason or ""), exc.body)


@contextmanager
def api_errors() -> Iterator[None]:
    """Translate client errors (API statuses and connection failures) raised inside the block."""
    try:
        yield
    except ApiException as exc:
        raise translate(exc) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ApiError(0, "Unreachable", f"API server unreachable: {exc}") from exc


def read_pod(api: Transport, namespace: str, name: str, timeout: float) -> Pod:
    body = api.request("GET", path(POD, namespace=namespace, name=name), timeout=timeout)
    try:
        return _pod_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ApiError(200, "OK", f"the API server's answer is not a pod that can be read: {exc}") from exc


def bind_pod(api: Transport, namespace: str, name: str, uid: str, node: str, timeout: float,
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
    api.request("POST", path(POD + "/binding", namespace=namespace, name=name), body, timeout=timeout)


def patch_pod(api: Transport, namespace: str, name: str, patch: dict[str, Any], timeout: float) -> None:
    """A JSON merge patch of the pod's metadata."""
    api.request("PATCH", path(POD, namespace=namespace, name=name), patch, timeout=timeout,
                content_type=MERGE_PATCH)
