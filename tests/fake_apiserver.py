"""A local HTTP server that answers the Kubernetes API calls the extender makes with the answers a
real API server gave (`tests/fixtures/apiserver/`), so that the real `kubernetes` client runs.

- `GET /api/v1/nodes`, `GET /api/v1/pods`: the recorded lists (`list-nodes.json`,
  `list-pods-assigned.json`), or what a test put in their place.
- the same with `watch=1`: the next scripted stream for that resource (the recorded
  `watch-*.jsonl`, an ERROR event, a stream cut in the middle, an error status), then live events
  (a binding made here, an event a test pushes) until `timeoutSeconds` or the server stops.
- `GET/PATCH /api/v1/namespaces/NS/pods/NAME`, `POST .../pods/NAME/binding`: pods the server holds
  (the recorded `get-pod-bound.json` shape); binding answers are the recorded 201, 409 (already
  assigned; uid precondition) and 404 bodies, with the pod's name and node put in their messages. A
  binding copies its annotations onto the pod, and its labels unless `copies_binding_labels` is off
  (kube-apiserver before 1.35, or with PodTopologyLabelsAdmission off).

Every request is logged in `requests` (method, path, query) for the tests to assert on.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import FIXTURES

APISERVER = FIXTURES / "apiserver"


def recorded(name: str) -> Any:
    return json.loads((APISERVER / name).read_text())


def recorded_lines(name: str) -> list[str]:
    return [line for line in (APISERVER / name).read_text().splitlines() if line.strip()]


def recorded_status(name: str) -> tuple[int, dict[str, Any]]:
    """A recorded `.txt` answer: the Status body, then the HTTP code on the last line."""
    text = (APISERVER / name).read_text().strip()
    body, _, code = text.rpartition("\n")
    return int(code), json.loads(body)


@dataclass
class Stream:
    """One scripted watch answer: an HTTP status (with `body`), then `lines`; `cut` ends the
    connection in the middle of a chunk (a broken stream) instead of ending it cleanly."""

    lines: list[str] = field(default_factory=list)
    status: int = 200
    body: dict[str, Any] | None = None
    cut: bool = False


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None


class FakeApiServer:
    def __init__(self) -> None:
        self.lists: dict[str, dict[str, Any]] = {
            "nodes": recorded("list-nodes.json"),
            "pods": recorded("list-pods-assigned.json"),
        }
        self.scripts: dict[str, list[Stream]] = {"nodes": [], "pods": []}
        self.live: dict[str, list[tuple[int, str]]] = {"nodes": [], "pods": []}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        for pod in self.lists["pods"]["items"]:
            self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = copy.deepcopy(pod)
        self.requests: list[Request] = []
        self.events: list[Request] = []
        """Writes of events.k8s.io Events: kept apart from `requests`, as they ride beside the pod writes."""
        self.stale: dict[tuple[str, str], dict[str, Any]] = {}
        """A pod as one GET sees it before the next change (e.g. before another binder bound it)."""
        self.binding_status: int | None = None
        self.bind_anyway = False
        """With `binding_status`: make the binding, then answer that status (the answer lost on the way)."""
        self.patch_status: int | None = None
        """Force every patch to answer this status."""
        self.copies_binding_labels = True
        self.lists_open = threading.Event()
        """Cleared, list requests wait until it is set (a slow first sync)."""
        self.lists_open.set()
        """Force every binding to answer this status (e.g. 500) instead of simulating it."""
        self.version = 1000
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # clients hang up
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- test helpers -------------------------------------------------------------------------------

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path

    def push(self, resource: str, event_type: str, obj: dict[str, Any]) -> None:
        """An event for `resource` with a fresh resourceVersion: sent to the watchers (and to later
        watches from an older version) and applied to the list."""
        with self.cond:
            self.version += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.live[resource].append((self.version, json.dumps({"type": event_type, "object": obj})))
            listed = self.lists[resource]
            items = [i for i in listed["items"] if i["metadata"]["uid"] != obj["metadata"]["uid"]]
            if event_type != "DELETED":
                items.append(obj)
            self.lists[resource] = {**listed, "metadata": {"resourceVersion": str(self.version)}, "items": items}
            self.cond.notify_all()

    def add_pod(self, pod: dict[str, Any], watched: bool = True) -> None:
        """A pod the server holds; `watched`: the pods watch delivers it too (else the watch lags)."""
        self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = copy.deepcopy(pod)
        if watched:
            self.push("pods", "ADDED", pod)

    def seen(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def watches(self, resource: str) -> list[Request]:
        return [r for r in self.requests
                if r.path == f"/api/v1/{resource}" and r.query.get("watch") in ("1", "true", "True")]

    def lists_served(self, resource: str) -> list[Request]:
        return [r for r in self.requests if r.path == f"/api/v1/{resource}" and "watch" not in r.query]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout}s; requests: {self.requests}")
            time.sleep(0.01)

    def close(self) -> None:
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # --- answers ------------------------------------------------------------------------------------

    def bind(self, namespace: str, name: str, binding: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.binding_status is not None and not self.bind_anyway:
            return self.binding_status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                         "message": "forced by the test", "code": self.binding_status}
        node = binding["target"]["name"]
        with self.cond:
            pod = self.pods.get((namespace, name))
            if pod is None:
                code, body = recorded_status("post-binding-notfound.txt")
                body["message"] = body["message"].replace('"missing"', f'"{name}"')
                body["details"]["name"] = name
                return code, body
            wanted = (binding.get("metadata") or {}).get("uid")
            if wanted and wanted != pod["metadata"]["uid"]:
                code, body = recorded_status("post-binding-uid-mismatch.txt")
                body["message"] = (body["message"].replace("unbound2", name)
                                   .replace("00000000-0000-0000-0000-000000000000", wanted)
                                   .replace("6ce29373-a1ca-497a-a76f-25f5ab1b82c2", pod["metadata"]["uid"]))
                body["details"]["name"] = name
                return code, body
            if pod["spec"].get("nodeName"):
                code, body = recorded_status("post-binding-conflict.txt")
                body["message"] = (body["message"].replace("unbound", name)
                                   .replace('"site2"', f'"{pod["spec"]["nodeName"]}"'))
                body["details"]["name"] = name
                return code, body
            pod["spec"]["nodeName"] = node
            meta = binding.get("metadata") or {}
            pod["metadata"].setdefault("annotations", {}).update(meta.get("annotations") or {})
            if self.copies_binding_labels:
                pod["metadata"].setdefault("labels", {}).update(meta.get("labels") or {})
        self.push("pods", "MODIFIED", pod)
        if self.binding_status is not None:
            return self.binding_status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                         "message": "forced by the test", "code": self.binding_status}
        return 201, recorded("post-binding-created.json")

    def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.patch_status is not None:
            return self.patch_status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                       "message": "forced by the test", "code": self.patch_status}
        with self.cond:
            pod = self.pods.get((namespace, name))
            if pod is None:
                code, body = recorded_status("post-binding-notfound.txt")
                body["message"] = body["message"].replace('"missing"', f'"{name}"')
                return code, body
            meta = patch.get("metadata", {})
            for key in ("labels", "annotations"):
                pod["metadata"].setdefault(key, {}).update(meta.get(key) or {})
        if pod["spec"].get("nodeName"):
            self.push("pods", "MODIFIED", pod)
        return 200, pod


def _handler(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _request(self, body: Any = None) -> tuple[str, dict[str, str]]:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            api.requests.append(Request(self.command, parts.path, query, body))
            return parts.path, query

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            path, query = self._request()
            parts = path.strip("/").split("/")
            if path in ("/api/v1/nodes", "/api/v1/pods"):
                resource = parts[-1]
                if query.get("watch") in ("1", "true", "True"):
                    return self._watch(resource, query)
                while not api.lists_open.wait(0.05):
                    if api.stopping.is_set():
                        return None
                return self._json(200, api.lists[resource])
            if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
                pod = api.stale.pop((parts[3], parts[5]), None) or api.pods.get((parts[3], parts[5]))
                if pod is None:
                    code, body = recorded_status("post-binding-notfound.txt")
                    body["message"] = body["message"].replace('"missing"', f'"{parts[5]}"')
                    return self._json(code, body)
                return self._json(200, pod)
            self._json(404, {"kind": "Status", "code": 404, "message": f"no fake for {path}"})

        def _event(self, body: Any) -> bool:
            """An Event write, answered as the API server does (created, or patched) and kept apart."""
            parts = urlsplit(self.path)
            if not parts.path.startswith("/apis/events.k8s.io/"):
                return False
            api.events.append(Request(self.command, parts.path, {}, body))
            self._json(201 if self.command == "POST" else 200, body)
            return True

        def do_POST(self) -> None:  # noqa: N802
            body = self._body()
            if self._event(body):
                return
            path, _ = self._request(body)
            parts = path.strip("/").split("/")
            if len(parts) == 7 and parts[4] == "pods" and parts[6] == "binding":
                return self._json(*api.bind(parts[3], parts[5], body))
            self._json(404, {"kind": "Status", "code": 404, "message": f"no fake for {path}"})

        def do_PATCH(self) -> None:  # noqa: N802
            body = self._body()
            if self._event(body):
                return
            path, _ = self._request({"content-type": self.headers.get("Content-Type"), "patch": body})
            parts = path.strip("/").split("/")
            if len(parts) == 6 and parts[4] == "pods":
                return self._json(*api.patch(parts[3], parts[5], body))
            self._json(404, {"kind": "Status", "code": 404, "message": f"no fake for {path}"})

        def _chunk(self, line: str) -> None:
            data = (line + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _watch(self, resource: str, query: dict[str, str]) -> None:
            script = api.scripts[resource].pop(0) if api.scripts[resource] else Stream()
            if script.status != 200:
                return self._json(script.status, script.body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in script.lines:
                self._chunk(line)
            if script.cut:
                self.wfile.write(b"40\r\n{\"type\":\"MODIFIED\",\"object\":{")
                self.wfile.flush()
                self.close_connection = True
                return
            deadline = time.monotonic() + float(query.get("timeoutSeconds") or 5)
            since = int(query["resourceVersion"]) if query.get("resourceVersion", "").isdigit() else 0
            sent = 0
            while not api.stopping.is_set() and time.monotonic() < deadline:
                with api.cond:
                    if len(api.live[resource]) == sent:
                        api.cond.wait(timeout=0.05)
                    pending = api.live[resource][sent:]
                    sent = len(api.live[resource])
                for version, line in pending:
                    if version > since:
                        self._chunk(line)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def vm_pod(name: str, uid: str, node: str | None = None, namespace: str = "default") -> dict[str, Any]:
    """The recorded pod `get-pod-bound.json` (a VM pod: c6.large.2, needEIP, region1) as another pod,
    unbound unless `node` is given."""
    pod = recorded("get-pod-bound.json")
    pod["metadata"].update(name=name, uid=uid, namespace=namespace)
    if node:
        pod["spec"]["nodeName"] = node
    else:
        pod["spec"].pop("nodeName", None)
    return pod


@contextmanager
def fake_apiserver() -> Iterator[FakeApiServer]:
    api = FakeApiServer()
    thread = threading.Thread(target=api.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.close()
