"""The extender's RBAC in deploy/ grants every Kubernetes API call the code in extender/ makes.

The calls are found in the source (tests/k8s_calls.py: any method of the official client's *Api classes,
called, passed to a watch, or named for getattr) and turned into (apiGroup, resource, verb) from the
client's own endpoint table, so a call added to extender/ is checked the day it lands.
"""

from __future__ import annotations

from typing import Any

import pytest

from extender.allocation.cluster_store import LEDGER
from tests.deploy_support import DEPLOY, NAMESPACE, REPO, find, one, render
from tests.k8s_calls import (
    Call,
    Permission,
    calls_in_package,
    calls_in_source,
    granted,
    permission,
    raw_access_in_package,
    required,
)

EXTENDER_ROLE = "site-extender"
SITE_NODES_ROLE = "site-extender:site-nodes"
"""The site-node keeper's ClusterRole: the Node writes, deletes included, kept apart from the rest."""
OWN_NAMESPACE_ONLY = {("coordination.k8s.io", "leases")}
"""Namespaced resources the extender uses only in namespaces of its own (its namespace, and
kube-node-lease for the site nodes' heartbeats): a Role there may grant them. Everything else it
touches in any namespace, so its ClusterRoles must."""
LEASE_NAMESPACES = (NAMESPACE, "kube-node-lease")
OWN_NAMESPACE_ONLY |= {("site-extender.io", "allocations"), ("", "configmaps")}
NAMED_ONLY = {("", "configmaps"): [LEDGER]}
"""Resources whose only object the extender reads and writes is this one (the admission ledger): a
rule limited to that name grants what the code needs."""


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(DEPLOY)


def rules_for(objects: list[dict[str, Any]], perm: Permission) -> list[dict[str, Any]]:
    """The extender's rules that may grant `perm`: its ClusterRole, plus the Roles bound in its own
    namespace for OWN_NAMESPACE_ONLY resources."""
    rules = [r for name in (EXTENDER_ROLE, SITE_NODES_ROLE) for r in one(objects, "ClusterRole", name)["rules"]]
    if perm.namespaced and (perm.group, perm.resource.split("/")[0]) in OWN_NAMESPACE_ONLY:
        for namespace in LEASE_NAMESPACES:
            bound = {b["roleRef"]["name"] for b in find(objects, "RoleBinding", namespace=namespace)}
            rules += [r for role in find(objects, "Role", namespace=namespace) if role["metadata"]["name"] in bound
                      for r in role["rules"]]
    named = NAMED_ONLY.get((perm.group, perm.resource))
    return [{k: v for k, v in r.items() if k != "resourceNames"} if named and r.get("resourceNames") == named else r
            for r in rules]


def uncovered(objects: list[dict[str, Any]], calls: list[Call]) -> list[str]:
    return [f"{perm} needed by {', '.join(map(str, needing))}"
            for perm, needing in sorted(required(calls).items())
            if not granted(rules_for(objects, perm), perm)]


COMMANDS = ("cli",)
"""Run by an operator with their own credentials (`site-extender import`), never by the ServiceAccount."""


def test_rbac_covers_every_api_call_in_extender(objects) -> None:
    calls = calls_in_package(REPO / "extender", exclude=COMMANDS)
    missing = uncovered(objects, calls)
    assert not missing, (
        "deploy/base/rbac.yaml (ClusterRole site-extender) does not grant:\n  " + "\n  ".join(missing))


def test_extender_calls_the_api_only_through_typed_client_methods() -> None:
    """Raw calls (ApiClient.call_api, the dynamic client) escape the check above: none in extender/."""
    assert raw_access_in_package(REPO / "extender") == []


def test_extender_role_grants_what_the_deployment_promises(objects) -> None:
    """The issue's list: get/list/watch nodes and pods, create pods/binding, patch pods, create events."""
    rules = one(objects, "ClusterRole", EXTENDER_ROLE)["rules"]
    for perm in [Permission("", "nodes", v, False) for v in ("get", "list", "watch")] + [
        Permission("", "pods", v, False) for v in ("get", "list", "watch", "patch")] + [
        Permission("", "pods/binding", "create", True), Permission("", "events", "create", True),
        Permission("events.k8s.io", "events", "create", True),
    ]:
        assert granted(rules, perm), perm


def test_extender_role_grants_nothing_dangerous(objects) -> None:
    rules = one(objects, "ClusterRole", EXTENDER_ROLE)["rules"]
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
        assert "secrets" not in rule["resources"], rule


def test_the_site_node_role_deletes_nodes_and_nothing_else(objects) -> None:
    rules = one(objects, "ClusterRole", SITE_NODES_ROLE)["rules"]
    assert {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
            if v in ("delete", "deletecollection", "escalate", "bind", "impersonate")} == {("", "nodes", "delete")}
    for rule in rules:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule


SOURCES = [
    ("informer", """
from kubernetes import client, watch
api = client.CoreV1Api()
nodes = api.list_node()
for event in watch.Watch().stream(api.list_pod_for_all_namespaces, resource_version="1"):
    pass
""", []),
    ("binder", """
from kubernetes import client
api = client.CoreV1Api()
api.create_namespaced_pod_binding(name="p", namespace="ns", body={}, _preload_content=False)
api.patch_namespaced_pod("p", "ns", {"metadata": {"annotations": {}}})
""", []),
    ("deletes-pods", """
from kubernetes import client
client.CoreV1Api().delete_namespaced_pod("p", "ns")
""", ["delete core/pods needed by CoreV1Api.delete_namespaced_pod (x.py:3)"]),
    ("namespace-wide-binding", """
from kubernetes import client
client.CoreV1Api().create_namespaced_binding("ns", {})
""", ["create core/bindings needed by CoreV1Api.create_namespaced_binding (x.py:3)"]),
    ("reads-secrets-by-getattr", """
from kubernetes import client
getattr(client.CoreV1Api(), "read_namespaced_secret")("s", "ns")
""", ["get core/secrets needed by CoreV1Api.read_namespaced_secret (x.py:3)"]),
    ("lease-of-its-own", """
from kubernetes import client
client.CoordinationV1Api().replace_namespaced_lease("extender", "ns", {})
""", ["update coordination.k8s.io/leases needed by CoordinationV1Api.replace_namespaced_lease (x.py:3)"]),
    ("watch-of-nodes-by-flag", """
from kubernetes import client
client.CoreV1Api().list_node(watch=True)
""", []),
    ("watch-of-configmaps", """
from kubernetes import client, watch
api = client.CoreV1Api()
w = watch.Watch()
stream = w.stream(api.list_namespaced_config_map, "ns")
""", ["list core/configmaps needed by CoreV1Api.list_namespaced_config_map (x.py:5)",
      "watch core/configmaps needed by CoreV1Api.list_namespaced_config_map (x.py:5)"]),
]


@pytest.mark.parametrize(("source", "missing"), [s[1:] for s in SOURCES], ids=[s[0] for s in SOURCES])
def test_uncovered_calls_are_reported(objects, source: str, missing: list[str]) -> None:
    assert uncovered(objects, calls_in_source(source, "x.py")) == missing


@pytest.mark.parametrize(("api", "method", "watched", "expected"), [
    ("CoreV1Api", "list_node", False, Permission("", "nodes", "list", False)),
    ("CoreV1Api", "list_node", True, Permission("", "nodes", "watch", False)),
    ("CoreV1Api", "read_namespaced_pod", False, Permission("", "pods", "get", True)),
    ("CoreV1Api", "create_namespaced_pod_binding", False, Permission("", "pods/binding", "create", True)),
    ("CoreV1Api", "create_namespaced_binding", False, Permission("", "bindings", "create", True)),
    ("CoreV1Api", "patch_namespaced_pod_status", False, Permission("", "pods/status", "patch", True)),
    ("CoreV1Api", "delete_collection_namespaced_pod", False, Permission("", "pods", "deletecollection", True)),
    ("CoordinationV1Api", "replace_namespaced_lease", False,
     Permission("coordination.k8s.io", "leases", "update", True)),
    ("EventsV1Api", "create_namespaced_event", False, Permission("events.k8s.io", "events", "create", True)),
], ids=lambda v: v if isinstance(v, str) else None)
def test_permission_is_read_from_the_client_endpoint(api, method, watched, expected) -> None:
    assert permission(api, method, watched) == expected
