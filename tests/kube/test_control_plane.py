"""The real control plane the cluster tests share: deploy/'s RBAC applied to it grants the extender's
ServiceAccount what it needs and nothing more (a token from the TokenRequest API, as `kubectl create
token` makes one)."""

from __future__ import annotations

import json

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from tests.server import REPO

pytestmark = pytest.mark.process


def apply_file(api: client.ApiClient, path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            utils.create_from_dict(api, doc)


def test_the_extender_service_account_may_watch_nodes_but_not_delete_them(k8s) -> None:
    with k8s.api_client() as admin:
        apply_file(admin, REPO / "deploy" / "base" / "namespace.yaml")
        apply_file(admin, REPO / "deploy" / "base" / "serviceaccount.yaml")
        apply_file(admin, REPO / "deploy" / "base" / "rbac.yaml")
    token = k8s.token_for("site-extender", "site-scheduler")
    with k8s.api_client(k8s.kubeconfig_for_token(token, "site-scheduler")) as api:
        core = client.CoreV1Api(api)
        assert core.list_node().items == []
        with pytest.raises(ApiException) as denied:
            core.delete_node("site1")
    assert denied.value.status == 403
    assert 'cannot delete resource "nodes"' in json.loads(denied.value.body)["message"]
