"""Helpers for the deploy tests: render the kustomizations with kubectl, look objects up, and check a
document against the known fields of a Go config type (unknown keys are errors, as in kube-scheduler's
strict decoding)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.server import REPO

DEPLOY = REPO / "deploy"
NAMESPACE = "site-extender"
EXTENDER_CONTAINER = "site-extender"


def no_cluster() -> dict[str, str]:
    """What the Deployment's env needs to run without a cluster: the state from the ConfigMaps' files,
    the allocation API on the one port (its own port and its access checks are tested with a cluster,
    tests/allocation/test_allocations_in_cluster.py)."""
    return {"SITE_EXTENDER_STATE": "files", "SITE_EXTENDER_API_PORT": ""}
SCHEDULER_CONTAINER = "kube-scheduler"


# --- rendering -----------------------------------------------------------------------------------

def kubectl() -> str:
    """kubectl's path. Missing kubectl fails the run in CI and skips (with the reason) elsewhere."""
    path = shutil.which("kubectl")
    if path is None:
        message = "kubectl is not installed: the deploy/ kustomizations cannot be rendered"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@cache
def _render(directory: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", directory], capture_output=True, text=True, timeout=60,
        env={**os.environ, "KUBECONFIG": os.devnull},  # rendering is local: no cluster is asked
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize directory` renders (a fresh copy each call)."""
    return [doc for doc in yaml.safe_load_all(_render(str(directory))) if doc]


def find(objects: Iterable[Mapping[str, Any]], kind: str, name: str | None = None,
         namespace: str | None = None) -> list[dict[str, Any]]:
    found = []
    for obj in objects:
        meta = obj.get("metadata", {})
        if obj.get("kind") != kind:
            continue
        if name is not None and meta.get("name") != name:
            continue
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        found.append(obj)  # type: ignore[arg-type]
    return found


def one(objects: Iterable[Mapping[str, Any]], kind: str, name: str | None = None,
        namespace: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def all_containers(pod_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Containers and init containers (native sidecars are init containers)."""
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def container(pod_spec: Mapping[str, Any], name: str) -> dict[str, Any]:
    matches = [c for c in all_containers(pod_spec) if c["name"] == name]
    assert len(matches) == 1, f"expected one container {name!r}"
    return matches[0]


def env_of(c: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def mounts_of(c: Mapping[str, Any]) -> dict[str, str]:
    """mountPath -> volume name."""
    return {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}


def volumes_of(pod_spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec.get("volumes", [])}


# --- known-field schemas -------------------------------------------------------------------------
# A schema is a type name ("str", "bool", "int", "float", "duration", "nanoseconds", "bytes", "any"),
# a dict of field name -> schema (a Go struct: no other key is allowed), or a one-element list (a slice).

GO_DURATION = re.compile(r"^-?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+$|^0$")
"""time.ParseDuration's syntax, as metav1.Duration decodes it from a JSON string."""


def check(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, each with its path; [] when it fits."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        problems = []
        for key, item in value.items():
            if key not in schema:
                problems.append(f"{path}.{key}: unknown field")
            else:
                problems.extend(check(item, schema[key], f"{path}.{key}"))
        return problems
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in check(item, schema[0], f"{path}[{i}]")]
    if value is None or schema == "any":
        return []
    ok = {
        "str": isinstance(value, str),
        "bytes": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "nanoseconds": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "duration": isinstance(value, str) and bool(GO_DURATION.match(value)),
    }[schema]
    return [] if ok else [f"{path}: {value!r} is not a {schema}"]


def parse_duration(text: str) -> float:
    """A Go duration string in seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * units[u] for n, _, u in re.findall(r"(\d+(\.\d*)?)(ns|us|µs|ms|s|m|h)", text))


# k8s.io/component-base/config/v1alpha1
LEADER_ELECTION = {
    "leaderElect": "bool", "leaseDuration": "duration", "renewDeadline": "duration",
    "retryPeriod": "duration", "resourceLock": "str", "resourceName": "str", "resourceNamespace": "str",
}
CLIENT_CONNECTION = {
    "kubeconfig": "str", "acceptContentTypes": "str", "contentType": "str", "qps": "float", "burst": "int",
}

# k8s.io/kube-scheduler/config/v1 (types.go, v1.36)
PLUGIN_SET = {"enabled": [{"name": "str", "weight": "int"}], "disabled": [{"name": "str", "weight": "int"}]}
PLUGINS = {point: PLUGIN_SET for point in (
    "preEnqueue", "queueSort", "preFilter", "filter", "postFilter", "preScore", "score", "reserve", "permit",
    "preBind", "bind", "postBind", "multiPoint", "placementGenerate", "placementScore", "placementFeasible",
    "podGroupPostFilter",
)}
PROFILE = {
    "schedulerName": "str", "percentageOfNodesToScore": "int", "percentageOfPlacementsToScore": "int",
    "plugins": PLUGINS, "pluginConfig": [{"name": "str", "args": "any"}],
}
EXTENDER_TLS_CONFIG = {
    "insecure": "bool", "serverName": "str", "certFile": "str", "keyFile": "str", "caFile": "str",
    "certData": "bytes", "keyData": "bytes", "caData": "bytes",
}
EXTENDER_MANAGED_RESOURCE = {"name": "str", "ignoredByScheduler": "bool"}
EXTENDER = {
    "urlPrefix": "str", "filterVerb": "str", "preemptVerb": "str", "prioritizeVerb": "str", "weight": "int",
    "bindVerb": "str", "enableHTTPS": "bool", "tlsConfig": EXTENDER_TLS_CONFIG, "httpTimeout": "duration",
    "nodeCacheCapable": "bool", "managedResources": [EXTENDER_MANAGED_RESOURCE], "ignorable": "bool",
}
KUBE_SCHEDULER_CONFIGURATION = {
    "apiVersion": "str", "kind": "str",
    "parallelism": "int",
    "leaderElection": LEADER_ELECTION,
    "clientConnection": CLIENT_CONNECTION,
    "enableProfiling": "bool", "enableContentionProfiling": "bool",  # DebuggingConfiguration, inlined
    "percentageOfNodesToScore": "int", "percentageOfPlacementsToScore": "int",
    "podInitialBackoffSeconds": "int", "podMaxBackoffSeconds": "int",
    "profiles": [PROFILE],
    "extenders": [EXTENDER],
    "delayCacheUntilActive": "bool",
}

# The legacy scheduler Policy (kind: Policy, apiVersion: v1) of kube-scheduler < 1.23: LegacyExtender
# spells enableHttps, and its httpTimeout is a time.Duration, i.e. integer nanoseconds in JSON.
LEGACY_EXTENDER = {
    "urlPrefix": "str", "filterVerb": "str", "preemptVerb": "str", "prioritizeVerb": "str", "weight": "int",
    "bindVerb": "str", "enableHttps": "bool", "tlsConfig": EXTENDER_TLS_CONFIG, "httpTimeout": "nanoseconds",
    "nodeCacheCapable": "bool", "managedResources": [EXTENDER_MANAGED_RESOURCE], "ignorable": "bool",
}
LEGACY_POLICY = {
    "kind": "str", "apiVersion": "str",
    "predicates": [{"name": "str", "argument": "any"}],
    "priorities": [{"name": "str", "weight": "int", "argument": "any"}],
    "extenders": [LEGACY_EXTENDER],
    "hardPodAffinitySymmetricWeight": "int",
    "alwaysCheckAllPredicates": "bool",
}

EXTENDED_RESOURCE_NAME = re.compile(
    r"^(?!kubernetes\.io/|requests\.)[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def validate_scheduler_configuration(config: Any) -> list[str]:
    """Known fields and types (KUBE_SCHEDULER_CONFIGURATION), then the rules of kube-scheduler's
    validation that this deployment relies on."""
    problems = check(config, KUBE_SCHEDULER_CONFIGURATION)
    if problems:
        return problems
    if config.get("apiVersion") != "kubescheduler.config.k8s.io/v1":
        problems.append(f"$.apiVersion: {config.get('apiVersion')!r}, want kubescheduler.config.k8s.io/v1")
    if config.get("kind") != "KubeSchedulerConfiguration":
        problems.append(f"$.kind: {config.get('kind')!r}, want KubeSchedulerConfiguration")
    names = [p.get("schedulerName") for p in config.get("profiles") or []]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        problems.append(f"$.profiles: scheduler names must be set and unique, got {names}")
    problems.extend(_validate_extenders(config.get("extenders") or [], "$.extenders"))
    return problems


def _validate_extenders(extenders: list[dict[str, Any]], path: str) -> list[str]:
    problems = []
    binders = [i for i, e in enumerate(extenders) if e.get("bindVerb")]
    if len(binders) > 1:
        problems.append(f"{path}: only one extender may set bindVerb, extenders {binders} do")
    for i, ext in enumerate(extenders):
        where = f"{path}[{i}]"
        if not ext.get("urlPrefix"):
            problems.append(f"{where}.urlPrefix: required")
        if ext.get("prioritizeVerb") and not (ext.get("weight") or 0) > 0:
            problems.append(f"{where}.weight: must be positive when prioritizeVerb is set")
        for j, resource in enumerate(ext.get("managedResources") or []):
            if not EXTENDED_RESOURCE_NAME.match(resource.get("name") or ""):
                problems.append(
                    f"{where}.managedResources[{j}].name: {resource.get('name')!r} is not an extended resource name")
    return problems


def validate_legacy_policy(policy: Any) -> list[str]:
    problems = check(policy, LEGACY_POLICY)
    if problems:
        return problems
    if (policy.get("kind"), policy.get("apiVersion")) != ("Policy", "v1"):
        problems.append(f"$: kind/apiVersion {policy.get('kind')}/{policy.get('apiVersion')}, want Policy/v1")
    problems.extend(_validate_extenders(policy.get("extenders") or [], "$.extenders"))
    return problems


# --- Dockerfile ----------------------------------------------------------------------------------

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context: the last pattern that
    matches the path or one of its parent directories decides; `!` re-includes."""
    excluded = False
    for raw in patterns:
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        regex = _docker_pattern(pattern.strip("/"))
        parts = path.split("/")
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


# --- ConfigMap volumes as the kubelet writes them --------------------------------------------------

def write_configmap_volume(directory: Path, data: Mapping[str, str]) -> None:
    """The kubelet's atomic-writer layout: the files live in a timestamped directory, `..data` links to
    it and each key is a link through `..data`; readers see the dot entries when they list the dir."""
    stamp = directory / "..2026_11_23_10_00_00.000000001"
    stamp.mkdir(parents=True)
    for key, value in data.items():
        (stamp / key).write_text(value)
    (directory / "..data").symlink_to(stamp.name)
    for key in data:
        (directory / key).symlink_to(Path("..data") / key)


# --- a read-only root filesystem, as readOnlyRootFilesystem gives -----------------------------------

_READ_ONLY_ROOT = """
mount -o remount,ro,bind / || exit 99
while [ "$1" != -- ]; do mount -t tmpfs -o size=16m tmpfs "$1" || exit 98; shift; done
shift
exec "$@"
"""
_NAMESPACE = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]


def read_only_root(writable: Iterable[Path]) -> list[str]:
    """A command prefix that runs the rest in a private mount namespace where / is read-only and each
    `writable` directory (which must exist) is a fresh tmpfs, like an emptyDir with medium Memory.
    Skips the test where mount namespaces are not allowed (they need root)."""
    probe = None
    if shutil.which("unshare"):
        probe = subprocess.run([*_NAMESPACE, "mount -o remount,ro,bind / && ! test -w /"], capture_output=True)
    if probe is None or probe.returncode != 0:
        pytest.skip("cannot make a read-only mount namespace here (needs unshare and root)")
    return [*_NAMESPACE, _READ_ONLY_ROOT, "sh", *map(str, writable), "--"]


__all__ = ["REPO"]
