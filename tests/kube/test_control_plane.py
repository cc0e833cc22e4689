"""The real control plane the cluster tests share: deploy/'s RBAC applied to it grants the extender's
ServiceAccount what it needs and nothing more (a token from the TokenRequest API, as `kubectl create
token` makes one)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.process


def test_the_extender_service_account_may_watch_nodes_but_not_read_secrets(k8s) -> None:
    k8s.apply_extender_access()
    token = k8s.token_for("site-extender", "site-scheduler")
    with k8s.api_client(k8s.kubeconfig_for_token(token, "site-scheduler")) as api:
        core = client.CoreV1Api(api)
        assert core.list_node().items == []
        with pytest.raises(ApiException) as denied:
            core.list_namespaced_secret("default")
    assert denied.value.status == 403
    assert 'cannot list resource "secrets"' in json.loads(denied.value.body)["message"]
