"""deploy/: the manifests parse, `kubectl kustomize` renders them, and what refers to what holds: the
ConfigMaps and their keys against the volumes and mounts, the env paths against the mounts, the
scheduler configuration (known v1 fields only) against the routes the app serves, the probes against
the real app, and the hardening every container must have."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from extender.config.policy import load_policy
from extender.config.settings import DEFAULT_PORT
from extender.domain.site_resources import container_resources, vm_requests
from extender.domain.vmrequest import parse_vm_request
from extender.predicates.region_and_az import REASON_REGION
from tests.conftest import FIXTURES, POLICY_DIR
from tests.deploy_support import (
    no_cluster,
    DEPLOY,
    EXTENDER_CONTAINER,
    NAMESPACE,
    REPO,
    SCHEDULER_CONTAINER,
    all_containers,
    container,
    env_of,
    find,
    mounts_of,
    one,
    parse_duration,
    read_only_root,
    render,
    validate_legacy_policy,
    validate_scheduler_configuration,
    volumes_of,
    write_configmap_volume,
)
from tests.server import serve

pytestmark = pytest.mark.process

KUSTOMIZATIONS = [DEPLOY, DEPLOY / "legacy"]
MANIFESTS = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
SCHEDULER_NAME = "site-scheduler"
VM_RESOURCE = "site-extender.io/vm"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(DEPLOY)


@pytest.fixture(scope="module")
def legacy_objects() -> list[dict[str, Any]]:
    return render(DEPLOY / "legacy")


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment", "site-scheduler", NAMESPACE)


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return deployment(objects)["spec"]["template"]["spec"]


def configmap_of_mount(objects: list[dict[str, Any]], container_name: str, mount_path: str) -> dict[str, Any]:
    """The ConfigMap behind `mount_path` of the container (volume -> configMap name -> object)."""
    spec = pod_spec(objects)
    volume_name = mounts_of(container(spec, container_name))[mount_path]
    source = volumes_of(spec)[volume_name]["configMap"]
    return one(objects, "ConfigMap", source["name"], NAMESPACE)


def scheduler_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The KubeSchedulerConfiguration kube-scheduler reads: its --config flag, through the mount."""
    c = container(pod_spec(objects), SCHEDULER_CONTAINER)
    flag = next(a for a in c["command"] + c.get("args", []) if a.startswith("--config="))
    path = Path(flag.split("=", 1)[1])
    cm = configmap_of_mount(objects, SCHEDULER_CONTAINER, str(path.parent))
    return yaml.safe_load(cm["data"][path.name])


def the_extender(objects: list[dict[str, Any]]) -> dict[str, Any]:
    extenders = scheduler_config(objects)["extenders"]
    assert len(extenders) == 1
    return extenders[0]


# --- parsing and rendering -----------------------------------------------------------------------

@pytest.mark.parametrize("path", MANIFESTS, ids=[str(p.relative_to(DEPLOY)) for p in MANIFESTS])
def test_every_manifest_parses(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    docs = [json.loads(text)] if path.suffix == ".json" else [d for d in yaml.safe_load_all(text) if d]
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("kind"), doc
        assert doc.get("apiVersion") or path.name == "kustomization.yaml", doc


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=["deploy", "deploy/legacy"])
def test_kustomization_renders(directory: Path) -> None:
    kinds = sorted(o["kind"] for o in render(directory))
    assert kinds.count("Deployment") == 1
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
            "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} <= set(kinds)


API_SCHEMAS = [(DEPLOY, "1.36.0"), (DEPLOY, "1.29.0"), (DEPLOY / "legacy", "1.25.0")]
"""The legacy overlay targets 1.21-1.22, whose schemas kubernetes-validate no longer ships; 1.25 is its
oldest, and the kinds and fields used here are the same there."""


@pytest.mark.parametrize(("directory", "version"), API_SCHEMAS,
                         ids=[f"{d.relative_to(REPO)}@{v}" for d, v in API_SCHEMAS])
def test_rendered_objects_fit_the_kubernetes_api_schema(directory: Path, version: str) -> None:
    """Strict OpenAPI schemas of that Kubernetes version: a misspelt or unknown field fails."""
    for obj in render(directory):
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("path", sorted((DEPLOY / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_fit_the_kubernetes_api_schema(path: Path) -> None:
    for obj in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(obj, "1.36.0", strict=True)


def test_schema_validation_catches_a_misspelt_field(objects) -> None:
    dep = copy.deepcopy(deployment(objects))
    dep["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(dep, "1.36.0", strict=True)


def test_every_base_manifest_is_part_of_the_kustomization() -> None:
    base = DEPLOY / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    used = set(kustomization["resources"])
    used |= {f for generator in kustomization["configMapGenerator"] for f in generator["files"]}
    on_disk = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk <= used, f"not applied by kubectl apply -k: {sorted(on_disk - used)}"


def test_objects_live_in_the_namespace_except_the_kube_system_binding(objects) -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    placed = {(o["kind"], o["metadata"]["name"]): o["metadata"].get("namespace") for o in objects}
    expected = {key: (None if key[0] in cluster_scoped else NAMESPACE) for key in placed}
    expected[("RoleBinding", "site-scheduler:extension-apiserver-authentication-reader")] = "kube-system"
    # The site nodes' heartbeats live where every node's do.
    expected[("Role", "site-extender:node-leases")] = "kube-node-lease"
    expected[("RoleBinding", "site-extender:node-leases")] = "kube-node-lease"
    assert placed == expected


# --- ConfigMaps, volumes, mounts, env ------------------------------------------------------------

def test_every_volume_mount_and_configmap_reference_resolves(objects) -> None:
    spec = pod_spec(objects)
    volumes = volumes_of(spec)
    configmaps = {o["metadata"]["name"] for o in find(objects, "ConfigMap", namespace=NAMESPACE)}
    for c in all_containers(spec):
        for mount in c.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{c['name']} mounts unknown volume {mount['name']}"
    for volume in volumes.values():
        if "configMap" in volume:
            assert volume["configMap"]["name"] in configmaps, volume
    mounted = {m["name"] for c in all_containers(spec) for m in c.get("volumeMounts", [])}
    assert mounted == set(volumes), "every volume is mounted by some container"


def test_policy_env_points_at_the_policy_configmap_holding_the_repo_policy(objects) -> None:
    env = env_of(container(pod_spec(objects), EXTENDER_CONTAINER))
    cm = configmap_of_mount(objects, EXTENDER_CONTAINER, env["SITE_EXTENDER_POLICY"])
    assert env["SITE_EXTENDER_POLICY"] == "/etc/site-extender/policy"
    assert cm["data"] == {"policy.yaml": (POLICY_DIR / "policy.yaml").read_text()}


def test_inventory_env_points_at_the_inventory_configmap_holding_every_inventory_file(objects) -> None:
    env = env_of(container(pod_spec(objects), EXTENDER_CONTAINER))
    cm = configmap_of_mount(objects, EXTENDER_CONTAINER, env["SITE_EXTENDER_INVENTORY"])
    assert env["SITE_EXTENDER_INVENTORY"] == "/etc/site-extender/inventory"
    files = {p.name: p.read_text() for p in (POLICY_DIR / "inventory").iterdir() if p.is_file()}
    assert sorted(cm["data"]) == sorted(files), "policy/kustomization.yaml must list every file of policy/inventory/"
    assert cm["data"] == files


def test_extender_settings_of_the_deployment(objects) -> None:
    env = env_of(container(pod_spec(objects), EXTENDER_CONTAINER))
    assert env["SITE_EXTENDER_KUBE"] == "in-cluster"
    assert env["SITE_EXTENDER_HOST"] == "0.0.0.0", "the kubelet probes the pod IP"


@pytest.mark.parametrize("variable", ["SITE_EXTENDER_WORKER_TMP_DIR", "SITE_EXTENDER_DATA_DIR"])
def test_directories_the_extender_writes_are_emptydir_mounts(objects, variable: str) -> None:
    spec = pod_spec(objects)
    c = container(spec, EXTENDER_CONTAINER)
    path = env_of(c)[variable]
    volume = volumes_of(spec)[mounts_of(c)[path]]
    assert "emptyDir" in volume, f"{variable}={path} is not writable under a read-only root filesystem"


def test_tmp_is_memory_backed_for_the_gunicorn_heartbeat(objects) -> None:
    spec = pod_spec(objects)
    c = container(spec, EXTENDER_CONTAINER)
    assert env_of(c)["SITE_EXTENDER_WORKER_TMP_DIR"] == "/tmp"
    assert volumes_of(spec)[mounts_of(c)["/tmp"]]["emptyDir"]["medium"] == "Memory"


def test_the_rendered_configmaps_serve_under_gunicorn_with_the_deployment_env(objects, tmp_path) -> None:
    """Write the ConfigMaps as the kubelet mounts them (..data links), start gunicorn with the
    Deployment's env (paths moved under tmp_path, no cluster), and filter the recorded request."""
    c = container(pod_spec(objects), EXTENDER_CONTAINER)
    env = env_of(c)
    moved = {}
    for path in mounts_of(c):
        moved[path] = str(tmp_path / path.strip("/").replace("/", "_"))
        if path in (env["SITE_EXTENDER_POLICY"], env["SITE_EXTENDER_INVENTORY"]):
            cm = configmap_of_mount(objects, EXTENDER_CONTAINER, path)
            write_configmap_volume(Path(moved[path]), cm["data"])
        else:
            Path(moved[path]).mkdir(parents=True)
    run_env = {k: moved.get(v, v) for k, v in env.items() if k.startswith("SITE_EXTENDER_")}
    run_env.update(SITE_EXTENDER_KUBE="none", SITE_EXTENDER_HOST="127.0.0.1")
    run_env.update(no_cluster())
    run_env.pop("SITE_EXTENDER_PORT")
    with serve(tmp_path, env=run_env) as served:
        body = (POLICY_DIR / "samples" / "filter-cache.json").read_bytes()
        answer = served.post("/filter", body)
        assert answer.status == 200
        result = json.loads(answer.data)
        assert result["Error"] == ""
        assert sorted(result["NodeNames"]) == ["site1", "site2"]
        assert list(result["FailedAndUnresolvableNodes"]) == ["site3"]


def read_only_run(objects, tmp_path: Path, keep_tmp_dir: bool) -> tuple[list[str], dict[str, str]]:
    """The extender container's env with its mounts moved under tmp_path: ConfigMaps written as the
    kubelet does, emptyDirs as tmpfs in a namespace whose root filesystem is read-only."""
    spec = pod_spec(objects)
    c = container(spec, EXTENDER_CONTAINER)
    volumes = volumes_of(spec)
    moved, writable = {}, []
    for path, volume in mounts_of(c).items():
        moved[path] = tmp_path / path.strip("/").replace("/", "_")
        if "configMap" in volumes[volume]:
            cm = one(objects, "ConfigMap", volumes[volume]["configMap"]["name"], NAMESPACE)
            write_configmap_volume(moved[path], cm["data"])
        else:
            assert "emptyDir" in volumes[volume]
            moved[path].mkdir()
            writable.append(moved[path])
    env = {k: str(moved.get(v, v)) for k, v in env_of(c).items() if k.startswith("SITE_EXTENDER_")}
    env.update(SITE_EXTENDER_KUBE="none", SITE_EXTENDER_HOST="127.0.0.1", TMPDIR=str(moved["/tmp"]))
    env.update(no_cluster())
    env.pop("SITE_EXTENDER_PORT")
    if not keep_tmp_dir:  # no writable temp dir at all: what a read-only root without /tmp gives
        env.pop("SITE_EXTENDER_WORKER_TMP_DIR")
        env.pop("TMPDIR")
    return read_only_root(writable), env


def test_extender_serves_on_a_read_only_root_filesystem(objects, tmp_path) -> None:
    wrap, env = read_only_run(objects, tmp_path, keep_tmp_dir=True)
    with serve(tmp_path, env=env, wrap=wrap) as served:
        assert served.get("/healthz").status == 200
        answer = served.post("/filter", (POLICY_DIR / "samples" / "filter-cache.json").read_bytes())
        assert answer.status == 200 and json.loads(answer.data)["Error"] == ""
        # The allocations store (SQLite in SITE_EXTENDER_DATA_DIR, an emptyDir) takes a write.
        sample = FIXTURES / "global-scheduler-conf" / "sample_allocation_req_body.json"
        allocated = served.post("/v1/allocations", sample.read_bytes())
        assert allocated.status == 201, allocated.data
    assert "Read-only file system" not in served.log()


def test_gunicorn_cannot_boot_without_a_writable_temp_dir(objects, tmp_path) -> None:
    """Why /tmp is an emptyDir: the worker heartbeat file needs a writable directory."""
    wrap, env = read_only_run(objects, tmp_path, keep_tmp_dir=False)
    with pytest.raises(RuntimeError, match="No usable temporary directory"):
        with serve(tmp_path, env=env, wrap=wrap, timeout=10):
            pass


# --- the scheduler configuration -----------------------------------------------------------------

def test_scheduler_configuration_has_only_known_v1_fields(objects) -> None:
    assert validate_scheduler_configuration(scheduler_config(objects)) == []


def test_scheduler_configuration_file_is_what_the_configmap_holds(objects) -> None:
    source = yaml.safe_load((DEPLOY / "base" / "scheduler-config.yaml").read_text())
    assert scheduler_config(objects) == source


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


BROKEN = [
    ("unknown-top-level", ("extender",), [], "$.extender: unknown field"),
    ("legacy-enableHttps-spelling", ("extenders", 0, "enableHttps"), False,
     "$.extenders[0].enableHttps: unknown field"),
    ("unknown-extender-field", ("extenders", 0, "nodeCacheCapabel"), True,
     "$.extenders[0].nodeCacheCapabel: unknown field"),
    ("unknown-managed-resource-field", ("extenders", 0, "managedResources", 0, "ignored"), True,
     "$.extenders[0].managedResources[0].ignored: unknown field"),
    ("unknown-profile-field", ("profiles", 0, "name"), "x", "$.profiles[0].name: unknown field"),
    ("unknown-leader-election-field", ("leaderElection", "leaseName"), "x",
     "$.leaderElection.leaseName: unknown field"),
    ("unknown-tls-field", ("extenders", 0, "tlsConfig"), {"ca": "x"}, "$.extenders[0].tlsConfig.ca: unknown field"),
    ("timeout-as-number", ("extenders", 0, "httpTimeout"), 10, "$.extenders[0].httpTimeout: 10 is not a duration"),
    ("timeout-without-unit", ("extenders", 0, "httpTimeout"), "10",
     "$.extenders[0].httpTimeout: '10' is not a duration"),
    ("weight-as-string", ("extenders", 0, "weight"), "10", "$.extenders[0].weight: '10' is not a int"),
    ("zero-weight", ("extenders", 0, "weight"), 0,
     "$.extenders[0].weight: must be positive when prioritizeVerb is set"),
    ("bad-resource-name", ("extenders", 0, "managedResources", 0, "name"), "vm",
     "$.extenders[0].managedResources[0].name: 'vm' is not an extended resource name"),
    ("old-api-version", ("apiVersion",), "kubescheduler.config.k8s.io/v1beta3",
     "$.apiVersion: 'kubescheduler.config.k8s.io/v1beta3', want kubescheduler.config.k8s.io/v1"),
]


@pytest.mark.parametrize(("path", "value", "problem"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_scheduler_configuration_validation_rejects(objects, path, value, problem) -> None:
    broken = _set(scheduler_config(objects), path, value)
    assert problem in validate_scheduler_configuration(broken)


def test_two_binders_are_rejected(objects) -> None:
    config = scheduler_config(objects)
    config["extenders"].append(dict(config["extenders"][0], urlPrefix="http://127.0.0.1:9999"))
    assert validate_scheduler_configuration(config) == [
        "$.extenders: only one extender may set bindVerb, extenders [0, 1] do"]


def test_profile_and_extender_wiring(objects) -> None:
    config = scheduler_config(objects)
    assert [p["schedulerName"] for p in config["profiles"]] == [SCHEDULER_NAME]
    ext = the_extender(objects)
    assert ext["nodeCacheCapable"] is True
    assert ext["managedResources"] == [{"name": VM_RESOURCE, "ignoredByScheduler": True}]
    assert ext["ignorable"] is False
    assert 1 <= parse_duration(ext["httpTimeout"]) <= 30
    assert ext["weight"] > 0


def test_url_prefix_is_the_extender_port_on_loopback(objects) -> None:
    url = urlsplit(the_extender(objects)["urlPrefix"])
    c = container(pod_spec(objects), EXTENDER_CONTAINER)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert (url.scheme, url.hostname, url.path) == ("http", "127.0.0.1", "")
    assert url.port == DEFAULT_PORT == int(env_of(c)["SITE_EXTENDER_PORT"])
    assert ports == {"extender": DEFAULT_PORT, "allocations": int(env_of(c)["SITE_EXTENDER_API_PORT"])}


def post_routes(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())}


def get_routes(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())}


@pytest.mark.parametrize("key", ["filterVerb", "prioritizeVerb", "bindVerb", "preemptVerb"])
def test_each_verb_is_a_route_the_app_serves(objects, app, key: str) -> None:
    verb = the_extender(objects)[key]
    route = f"/{verb}"
    assert route in post_routes(app), f"{key}: {verb} -> POST {route}, served: {sorted(post_routes(app))}"


def test_leader_election_matches_the_lease_role(objects) -> None:
    election = scheduler_config(objects)["leaderElection"]
    assert election["leaderElect"] is True
    assert election["resourceLock"] == "leases"
    assert election["resourceNamespace"] == NAMESPACE
    role = one(objects, "Role", "site-scheduler:leader-election", NAMESPACE)
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "resourceNames": [election["resourceName"]], "verbs": ["get", "update"]}]
    assert subjects_of(objects, "RoleBinding", role["metadata"]["name"]) == [service_account(objects)]


# --- RBAC bindings -------------------------------------------------------------------------------

def service_account(objects) -> tuple[str, str]:
    spec = pod_spec(objects)
    sa = one(objects, "ServiceAccount", spec["serviceAccountName"], NAMESPACE)
    return sa["metadata"]["name"], sa["metadata"]["namespace"]


def subjects_of(objects, kind: str, role_name: str) -> list[tuple[str, str]]:
    bindings = [b for b in find(objects, kind) if b["roleRef"]["name"] == role_name]
    assert bindings, f"no {kind} for {role_name}"
    return [(s["name"], s["namespace"]) for b in bindings for s in b["subjects"] if s["kind"] == "ServiceAccount"]


@pytest.mark.parametrize(("kind", "role"), [
    ("ClusterRoleBinding", "system:kube-scheduler"),
    ("ClusterRoleBinding", "system:volume-scheduler"),
    ("ClusterRoleBinding", "site-extender"),
    ("RoleBinding", "extension-apiserver-authentication-reader"),
])
def test_roles_are_bound_to_the_pods_service_account(objects, kind: str, role: str) -> None:
    assert subjects_of(objects, kind, role) == [service_account(objects)]


# --- the Deployment: probes, resources, hardening, availability ----------------------------------

def test_extender_probes_are_routes_that_answer_on_the_real_app(objects, app) -> None:
    c = container(pod_spec(objects), EXTENDER_CONTAINER)
    named_ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    client = app.test_client()
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = c[kind]["httpGet"]
        assert named_ports.get(probe["port"], probe["port"]) == DEFAULT_PORT
        assert probe["path"] in get_routes(app), f"{kind} {probe['path']} is not a GET route"
        status = client.get(probe["path"]).status_code
        assert status in (200, 503), f"{kind} GET {probe['path']} answered {status}"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_extender_is_a_native_sidecar_started_before_kube_scheduler(objects) -> None:
    """An init container with restartPolicy Always: kube-scheduler starts once the extender passes its
    startup probe, and the extender stops after kube-scheduler, so no call finds it gone."""
    spec = pod_spec(objects)
    assert [c["name"] for c in spec["initContainers"]] == [EXTENDER_CONTAINER]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"
    assert spec["initContainers"][0]["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert [c["name"] for c in spec["containers"]] == [SCHEDULER_CONTAINER]


def test_legacy_extender_is_a_plain_container(legacy_objects) -> None:
    spec = pod_spec(legacy_objects)
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == [SCHEDULER_CONTAINER, EXTENDER_CONTAINER]
    assert "restartPolicy" not in spec["containers"][1]


def test_only_the_legacy_extender_folds_unresolvable_reasons(objects, legacy_objects) -> None:
    legacy = {e["name"]: e.get("value") for e in container(pod_spec(legacy_objects), EXTENDER_CONTAINER)["env"]}
    current = {e["name"]: e.get("value") for e in container(pod_spec(objects), EXTENDER_CONTAINER)["env"]}
    assert legacy["SITE_EXTENDER_FOLD_UNRESOLVABLE"] == "true"  # kube-scheduler < 1.21 reads FailedNodes only
    assert "SITE_EXTENDER_FOLD_UNRESOLVABLE" not in current


def test_kube_scheduler_probes_use_its_secure_port(objects) -> None:
    c = container(pod_spec(objects), SCHEDULER_CONTAINER)
    named_ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        probe = c[kind]["httpGet"]
        assert (probe["path"], probe["scheme"], named_ports[probe["port"]]) == (path, "HTTPS", 10259)


def test_kube_scheduler_image_is_a_pinned_v1_36_patch_release(objects) -> None:
    image = container(pod_spec(objects), SCHEDULER_CONTAINER)["image"]
    repo, _, tag = image.partition(":")
    assert repo == "registry.k8s.io/kube-scheduler"
    major, minor, patch = tag.removeprefix("v").split(".")
    assert (major, minor) == ("1", "36") and patch.isdigit(), image


@pytest.mark.parametrize("name", [SCHEDULER_CONTAINER, EXTENDER_CONTAINER])
def test_container_is_hardened_and_bounded(objects, name: str) -> None:
    spec = pod_spec(objects)
    c = container(spec, name)
    sc = c["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged", False) is False
    assert (sc.get("seccompProfile") or spec["securityContext"]["seccompProfile"]) == {"type": "RuntimeDefault"}
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{name} {bound}"
    assert "livenessProbe" in c and "readinessProbe" in c
    assert ":" in c["image"] and not c["image"].endswith(":latest")


def test_two_replicas_spread_with_anti_affinity_and_a_disruption_budget(objects) -> None:
    dep = deployment(objects)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] == 2
    anti_affinity = dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    pdb = one(objects, "PodDisruptionBudget", namespace=NAMESPACE)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < dep["spec"]["replicas"]


def test_network_policy_isolates_the_pods(objects) -> None:
    policy = one(objects, "NetworkPolicy", namespace=NAMESPACE)
    labels = pod_spec_labels(objects)
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    # The allocation API's port alone (what the Service exposes); never the extender verbs' port.
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "allocations", "protocol": "TCP"}]}]
    service = one(objects, "Service", "site-extender", NAMESPACE)
    assert service["spec"]["selector"].items() <= labels.items()
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8889, "allocations")]


def pod_spec_labels(objects) -> dict[str, str]:
    return deployment(objects)["spec"]["template"]["metadata"]["labels"]


def test_namespace_enforces_the_restricted_pod_security_standard(objects) -> None:
    ns = one(objects, "Namespace", NAMESPACE)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- examples ------------------------------------------------------------------------------------

EXAMPLES = DEPLOY / "examples"


def example_pods() -> list[tuple[str, dict[str, Any]]]:
    """(name, pod template) of every example: Pods as they are, Deployments' templates."""
    pods = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Pod":
                pods.append((path.name, doc))
            else:
                pods.append((path.name, doc["spec"]["template"]))
    return pods


EXAMPLE_PODS = example_pods()
VM_EXAMPLES = [(n, p) for n, p in EXAMPLE_PODS if VM_RESOURCE in p["metadata"].get("annotations", {})]


def test_examples_are_the_demo_vm_a_plain_pod_and_a_deployment_of_vms() -> None:
    assert sorted(n for n, _ in EXAMPLE_PODS) == ["plain-pod.yaml", "vm-deployment.yaml", "vm-pod.yaml"]
    assert sorted(n for n, _ in VM_EXAMPLES) == ["vm-deployment.yaml", "vm-pod.yaml"]


@pytest.mark.parametrize(("name", "pod"), EXAMPLE_PODS, ids=[n for n, _ in EXAMPLE_PODS])
def test_example_uses_the_site_scheduler_profile(objects, name: str, pod: dict[str, Any]) -> None:
    assert pod["spec"]["schedulerName"] in [p["schedulerName"] for p in scheduler_config(objects)["profiles"]]
    wants_vm = name in dict(VM_EXAMPLES)
    for c in pod["spec"]["containers"]:
        resources = c.get("resources", {})
        requested = resources.get("requests", {}).get(VM_RESOURCE)
        assert requested == (str(1) if wants_vm else None), "the managed resource routes the pod to the extender"
        assert resources.get("limits", {}).get(VM_RESOURCE) == requested, "extended resources need limits == requests"


@pytest.mark.parametrize(("name", "pod"), VM_EXAMPLES, ids=[n for n, _ in VM_EXAMPLES])
def test_example_vm_requests_its_share_of_the_site_figures(name: str, pod: dict[str, Any]) -> None:
    """What docs/preemption.md says a VM pod requests, from its own annotation."""
    inventory = load_policy(POLICY_DIR).inventory
    request = parse_vm_request(yaml.safe_load(pod["metadata"]["annotations"][VM_RESOURCE]), inventory.flavor_ids())
    [vm] = pod["spec"]["containers"]
    ours = {kind: {k: v for k, v in vm["resources"][kind].items() if k.startswith("site-extender.io/")}
            for kind in ("requests", "limits")}
    assert ours == container_resources(vm_requests(request, inventory))


@pytest.mark.parametrize(("name", "pod"), VM_EXAMPLES, ids=[n for n, _ in VM_EXAMPLES])
def test_example_vm_is_placed_in_region1_by_the_extender(client, name: str, pod: dict[str, Any]) -> None:
    pod = copy.deepcopy(pod)
    pod["metadata"].setdefault("name", name)
    pod["metadata"].setdefault("namespace", "default")
    body = {"Pod": pod, "Nodes": None, "NodeNames": ["site1", "site2", "site3"]}
    answer = client.post("/filter", json=body)
    assert answer.status_code == 200
    result = answer.get_json()
    assert result["Error"] == ""
    assert sorted(result["NodeNames"]) == ["site1", "site2"]
    assert result["FailedAndUnresolvableNodes"] == {
        "site3": REASON_REGION.format(site="site3", region="region2", wanted="region1")}


# --- legacy (before 1.23) ------------------------------------------------------------------------

def legacy_policy(legacy_objects) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Policy kube-scheduler reads through --policy-config-file, its kube-scheduler container)."""
    c = container(pod_spec(legacy_objects), SCHEDULER_CONTAINER)
    flags = dict(a.split("=", 1) for a in c["command"][1:])
    path = Path(flags["--policy-config-file"])
    cm = configmap_of_mount(legacy_objects, SCHEDULER_CONTAINER, str(path.parent))
    return json.loads(cm["data"][path.name]), c


def test_legacy_policy_has_only_known_fields(legacy_objects) -> None:
    policy, _ = legacy_policy(legacy_objects)
    assert validate_legacy_policy(policy) == []
    assert "predicates" not in policy and "priorities" not in policy, "keep the default predicates and priorities"


def test_legacy_policy_rejects_the_v1_spelling(legacy_objects) -> None:
    policy, _ = legacy_policy(legacy_objects)
    policy["extenders"][0]["enableHTTPS"] = False
    assert validate_legacy_policy(policy) == ["$.extenders[0].enableHTTPS: unknown field"]


def test_legacy_policy_says_what_the_v1_configuration_says(objects, legacy_objects) -> None:
    policy, _ = legacy_policy(legacy_objects)
    legacy, current = policy["extenders"][0], the_extender(objects)
    assert legacy.pop("httpTimeout") == int(parse_duration(current.pop("httpTimeout")) * 1e9)
    assert legacy.pop("enableHttps") == current.pop("enableHTTPS", False)
    assert legacy == current


def test_legacy_flags_select_the_policy_the_profile_and_the_lease(objects, legacy_objects) -> None:
    _, c = legacy_policy(legacy_objects)
    flags = dict(a.split("=", 1) for a in c["command"][1:])
    election = scheduler_config(objects)["leaderElection"]
    assert c["command"][0] == "kube-scheduler" and "--config" not in flags, "the deprecated flags need no --config"
    assert flags["--use-legacy-policy-config"] == "true"
    assert flags["--scheduler-name"] == SCHEDULER_NAME
    assert flags["--leader-elect"] == "true"
    assert flags["--leader-elect-resource-lock"] == election["resourceLock"]
    assert flags["--leader-elect-resource-name"] == election["resourceName"]
    assert flags["--leader-elect-resource-namespace"] == election["resourceNamespace"]
    major, minor, _ = c["image"].rpartition(":")[2].removeprefix("v").split(".")
    assert (int(major), int(minor)) < (1, 23), c["image"]
    assert not find(legacy_objects, "ConfigMap", "site-scheduler-config"), "the v1 configuration is not shipped there"


# --- docs/deploy.md ------------------------------------------------------------------------------

DEPLOY_DOC = REPO / "docs" / "deploy.md"


def test_deploy_doc_names_files_that_exist() -> None:
    text = DEPLOY_DOC.read_text()
    for token in text.replace("`", " ").split():
        if token.startswith("deploy/") and not token.endswith(":"):
            assert (REPO / token.rstrip(".,)")).exists(), token
    for needle in ("kubectl apply -k deploy/", "kubectl get pod", "FailedScheduling", "docker build"):
        assert needle in text
    assert "kustomize edit" not in text, "the doc must work with kubectl alone"


def test_deploy_doc_overlay_sets_both_images(tmp_path: Path) -> None:
    """The overlay the doc shows, built on the repository's deploy/, runs the images it names."""
    text = DEPLOY_DOC.read_text()
    overlay = text.split("# my-site-scheduler/kustomization.yaml\n", 1)[1].split("```", 1)[0]
    directory = tmp_path / "my-site-scheduler"
    directory.mkdir()
    # kustomize takes relative paths only: the same overlay, from its temporary directory
    (directory / "kustomization.yaml").write_text(overlay.replace("../deploy", os.path.relpath(DEPLOY, directory)))

    spec = pod_spec(render(directory))

    assert container(spec, SCHEDULER_CONTAINER)["image"] == "registry.k8s.io/kube-scheduler:v1.35.4"
    assert container(spec, EXTENDER_CONTAINER)["image"] == "registry.example.com/site-extender:0.1.0"
    for command in ("set image deployment/site-scheduler kube-scheduler=", "set image deployment/site-scheduler site-extender="):
        assert command in text
    assert f"{SCHEDULER_CONTAINER}=" in text and f"{EXTENDER_CONTAINER}=" in text
