"""The hot-path requests (`Transport`) against the real kube-apiserver: they carry the client's
credentials, and every error status arrives as the `extender.errors` type with the server's own words."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from extender.errors import ApiError, ConflictError, NotFoundError
from extender.kube.api import bind_pod, patch_pod, read_pod
from extender.kube.transport import Transport
from tests.server import free_port

pytestmark = pytest.mark.process


@pytest.fixture
def pending_pod(k8s):
    """A pod of no scheduler in a namespace of its own, and a node to bind it to."""
    namespace, node = f"transport-{uuid.uuid4().hex[:8]}", f"transport-node-{uuid.uuid4().hex[:6]}"
    with k8s.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": namespace}})
        core.create_node({"metadata": {"name": node}})
        created = core.create_namespaced_pod(namespace, {
            "metadata": {"name": "vm"},
            "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "registry.k8s.io/pause"}]}})
    return namespace, node, created.metadata.uid


def test_a_pod_is_read_bound_with_its_placement_and_patched(k8s, pending_pod) -> None:
    namespace, node, uid = pending_pod
    with k8s.api_client() as api:
        transport = Transport(api)
        assert read_pod(transport, namespace, "vm", 4.0).metadata.uid == uid
        bind_pod(transport, namespace, "vm", uid, node, 4.0, annotations={"site-extender.io/site": "site1"},
                 labels={"site-extender.io/site": "site1"})
        patch_pod(transport, namespace, "vm", {"metadata": {"labels": {"checked": "yes"}}}, 4.0)
        pod = client.CoreV1Api(api).read_namespaced_pod("vm", namespace)
    assert pod.spec.node_name == node
    assert pod.metadata.annotations["site-extender.io/site"] == "site1"
    assert pod.metadata.labels == {"site-extender.io/site": "site1", "checked": "yes"}


def test_error_statuses_keep_the_api_servers_message(k8s, pending_pod) -> None:
    namespace, node, uid = pending_pod
    with k8s.api_client() as api:
        transport = Transport(api)
        with pytest.raises(NotFoundError) as missing:
            read_pod(transport, namespace, "nope", 4.0)
        with pytest.raises(ConflictError) as replaced:
            bind_pod(transport, namespace, "vm", str(uuid.uuid4()), node, 4.0)
    assert missing.value.status == 404
    assert missing.value.message == 'pods "nope" not found'
    assert replaced.value.status == 409
    assert "Precondition failed: UID in precondition" in replaced.value.message


def test_the_clients_credentials_are_used_and_a_refusal_names_the_user(k8s, pending_pod) -> None:
    namespace, _, _ = pending_pod
    k8s.apply_extender_access()
    token = k8s.token_for("site-extender", "site-scheduler")
    with k8s.api_client(k8s.kubeconfig_for_token(token, "transport")) as api:
        assert read_pod(Transport(api), namespace, "vm", 4.0).metadata.name == "vm"  # may get pods
        with pytest.raises(ApiError) as denied:
            Transport(api).request("GET", f"/api/v1/namespaces/{namespace}/secrets", timeout=4.0)
    assert denied.value.status == 403
    assert 'User "system:serviceaccount:site-extender:site-scheduler" cannot list resource "secrets"' \
        in denied.value.message


def test_no_answer_at_all_is_status_0() -> None:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = False
    with client.ApiClient(configuration) as api:
        with pytest.raises(ApiError) as unreachable:
            read_pod(Transport(api), "default", "vm", 1.0)
    assert unreachable.value.status == 0
    assert unreachable.value.message.startswith("API server unreachable:")



def test_an_answer_that_is_no_pod_is_an_api_error_not_a_crash() -> None:
    """What a proxy in the way may answer: 200 and a page."""
    import http.server
    import threading

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>login</html>")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with client.ApiClient(configuration) as api:
            with pytest.raises(ApiError) as unreadable:
                read_pod(Transport(api), "default", "vm", 2.0)
    finally:
        server.shutdown()
        server.server_close()
    assert unreadable.value.message.startswith("the API server's answer is not a pod that can be read:")
