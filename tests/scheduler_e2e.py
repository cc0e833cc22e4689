"""The real scheduling loop, end to end: kube-scheduler with the configuration deploy/ ships, the
extender started as `make run` starts it, site nodes and many other nodes, on the real control plane
(tests/control_plane.py). Shared by the end-to-end test (tests/kube/test_scheduler_e2e.py) and the
benchmark (`make bench-e2e`, bench/e2e.py).

- `make_cluster`: the twelve sites of policy/inventory as nodes labelled as docs/deploy.md says
  (`site-extender.io/site`, `topology.kubernetes.io/region`, `.../zone`), plus other nodes, all with
  capacity and without the not-ready taint, so that kube-scheduler's own plugins find every one of them
  feasible: only the profile's node affinity tells sites from the rest.
- `serve_extender`: `site-extender serve` with `SITE_EXTENDER_KUBE=kubeconfig` and the control plane's
  kubeconfig, on a free port; its JSON log (decisions and access lines) goes to a file.
- `scheduler_config`: deploy/base/scheduler-config.yaml with `urlPrefix` pointing at that extender.
- `BindWatch`: when each pod of a namespace was first seen bound (one watch, no polling).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from extender.domain.model import REGION_LABEL, SITE_LABEL, VM_ANNOTATION, ZONE_LABEL
from tests.control_plane import ControlPlane
from tests.server import REPO, free_port

SCHEDULER_NAME = "site-scheduler"
VM_RESOURCE = "site-extender.io/vm"
RUN_LABEL = "e2e.site-extender.io/run"
"""Every node a run makes carries it, so that the run removes exactly its own nodes."""
CAPACITY = {"cpu": "1000", "memory": "4Ti", "pods": "5000"}
SITES_FILE = REPO / "policy" / "inventory" / "sites.json"


# --- the cluster ---------------------------------------------------------------------------------

def sites() -> list[dict[str, Any]]:
    return json.loads(SITES_FILE.read_text())["sites"]


def node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"capacity": CAPACITY, "allocatable": CAPACITY,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "E2E", "message": "test node"}]}}


@dataclass
class Cluster:
    """The nodes one run made: `site_nodes` by site id, `other_nodes` by name."""

    run: str
    site_nodes: dict[str, str]
    other_nodes: list[str]


def make_cluster(core: client.CoreV1Api, run: str, others: int, threads: int = 8) -> Cluster:
    """Create the site nodes and `others` other nodes (a Node created through the API gets the taint
    node.kubernetes.io/not-ready:NoSchedule: removed here, as a kubelet's readiness would)."""
    site_nodes = {s["id"]: f"{run}-{s['id']}" for s in sites()}
    bodies = [node(site_nodes[s["id"]], {SITE_LABEL: s["id"], REGION_LABEL: s["region"], ZONE_LABEL: s["az"],
                                          RUN_LABEL: run}) for s in sites()]
    other_nodes = [f"{run}-node-{i:04d}" for i in range(others)]
    bodies += [node(name, {RUN_LABEL: run, "kubernetes.io/hostname": name}) for name in other_nodes]

    def create(body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        _discard(core.create_node(body, _preload_content=False))
        _discard(core.patch_node(name, {"spec": {"taints": None}}, _preload_content=False))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, bodies))
    return Cluster(run, site_nodes, other_nodes)


def remove_cluster(core: client.CoreV1Api, cluster: Cluster) -> None:
    _discard(core.delete_collection_node(label_selector=f"{RUN_LABEL}={cluster.run}", _preload_content=False))


def site_node_count(core: client.CoreV1Api) -> int:
    """Nodes of the whole cluster the profile treats as sites (other tests may have made some)."""
    return len(core.list_node(label_selector=SITE_LABEL).items)


def ensure_namespace(core: client.CoreV1Api, name: str) -> None:
    with suppress(ApiException):
        core.create_namespace({"metadata": {"name": name}})


def remove_pods(core: client.CoreV1Api, namespace: str) -> None:
    """Pods bound to nodes without a kubelet only go when forced (grace period 0)."""
    _discard(core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0, _preload_content=False))


def _discard(response: Any) -> None:
    response.data  # noqa: B018 - read the body so the connection can be reused
    response.release_conn()


# --- pods ----------------------------------------------------------------------------------------

def vm_request(flavor: str, regions: dict[str, list[str]]) -> dict[str, Any]:
    """A VM request for `flavor` in `regions` (region -> its acceptable zones, [] for any), no EIP."""
    selector = [{"region": region, **({"availablityZone": zones} if zones else {})} for region, zones in regions.items()]
    return {"flavors": [{"flavorID": flavor}], "needEIP": False,
            "resourceCommonInfo": {"selector": {"regions": selector}}}


def pod(name: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod of the site-scheduler profile: a VM pod (the annotation and the extended resource) when
    `request` is given, else a plain pod."""
    requests = {"cpu": "10m", "memory": "16Mi"}
    limits = {"memory": "16Mi"}
    annotations = {}
    if request is not None:
        requests[VM_RESOURCE] = limits[VM_RESOURCE] = "1"
        annotations[VM_ANNOTATION] = json.dumps(request)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"schedulerName": SCHEDULER_NAME, "containers": [
                {"name": "vm" if request else "app", "image": "registry.k8s.io/pause:3.10",
                 "resources": {"requests": requests, "limits": limits}}]}}


def create_pods(core: client.CoreV1Api, namespace: str, pods: list[dict[str, Any]], threads: int = 8) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda body: _discard(core.create_namespaced_pod(namespace, body, _preload_content=False)),
                      pods))


@dataclass
class BindWatch:
    """Watches the pods of `namespace` and notes, per pod name, when it was first seen bound and the
    pod as it was then."""

    core: client.CoreV1Api
    namespace: str
    bound: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _watching: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> BindWatch:
        """Start watching; returns once the first watch is open (no binding can be missed after)."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._watching.wait(30):
            raise RuntimeError(f"could not watch the pods of namespace {self.namespace}")
        return self

    def _run(self) -> None:
        """List, then watch from the list's version; again whenever the stream ends (the server may
        end a watch at any time), until closed."""
        while not self._stop.is_set():
            try:
                listed = self.core.list_namespaced_pod(self.namespace, _preload_content=False)
                body = json.loads(listed.data)
                for item in body["items"]:
                    self._seen(item)
                response = self.core.list_namespaced_pod(
                    self.namespace, watch=True, resource_version=body["metadata"]["resourceVersion"],
                    allow_watch_bookmarks=True, timeout_seconds=300, _preload_content=False)
                self._watching.set()
                try:
                    for line in iter_resp_lines(response):
                        if self._stop.is_set():
                            break
                        event = json.loads(line)
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            self._seen(event["object"])
                finally:
                    response.close()
                    response.release_conn()
            except Exception:  # noqa: BLE001 - list and watch again: the figures need every pod
                time.sleep(0.2)

    def _seen(self, obj: dict[str, Any]) -> None:
        name = obj.get("metadata", {}).get("name")
        if obj.get("spec", {}).get("nodeName"):
            with self._cond:
                if name not in self.bound:
                    self.bound[name] = (time.perf_counter(), obj)
                    self._cond.notify_all()

    def wait(self, names: Iterable[str], timeout: float) -> bool:
        """True once every pod of `names` is bound; False after `timeout` seconds."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not wanted <= self.bound.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        self._stop.set()


def time_to_bind(core: client.CoreV1Api, watch: BindWatch, namespace: str, pods: list[dict[str, Any]],
                 timeout: float) -> float:
    """Seconds from the first pod's creation to the last one bound (created from 8 threads at once)."""
    names = [p["metadata"]["name"] for p in pods]
    started = time.perf_counter()
    create_pods(core, namespace, pods)
    if not watch.wait(names, timeout):
        missing = sorted(set(names) - watch.bound.keys())
        raise AssertionError(f"{len(missing)} of {len(names)} pods not bound in {timeout:.0f} s: {missing[:5]}")
    return max(watch.bound[n][0] for n in names) - started


# --- the extender and the scheduler ------------------------------------------------------------

@dataclass
class Extender:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def records(self) -> list[dict[str, Any]]:
        """Its JSON log lines (decisions and gunicorn's access lines)."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    found.append(json.loads(line))
        return found

    def decisions(self, verb: str, namespace: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("msg") == "decision" and r.get("verb") == verb
                and str(r.get("pod", "")).startswith(namespace + "/")]


@contextmanager
def serve_extender(plane: ControlPlane, workdir: Path, timeout: float = 60.0,
                   settings: Mapping[str, str] | None = None) -> Iterator[Extender]:
    """`site-extender serve` (what `make run` runs) watching the control plane, on a free port, with
    `settings` (SITE_EXTENDER_* variables) on top; yielded once /readyz answers 200 (policy loaded,
    nodes and pods listed)."""
    port = free_port()
    log_path = workdir / f"extender-{port}.log"
    data = workdir / f"extender-data-{port}"
    env = {**os.environ, "SITE_EXTENDER_KUBE": "kubeconfig", "SITE_EXTENDER_KUBECONFIG": str(plane.kubeconfig),
           "SITE_EXTENDER_HOST": "127.0.0.1", "SITE_EXTENDER_PORT": str(port),
           "SITE_EXTENDER_POLICY": str(REPO / "policy"), "SITE_EXTENDER_DATA_DIR": str(data), **(settings or {})}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    serve = Path(sys.executable).with_name("site-extender")
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(serve), "serve"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"site-extender serve exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
            with suppress(OSError):
                with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"extender not ready in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Extender(url, log_path, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def scheduler_config(extender_url: str) -> dict[str, Any]:
    """deploy/'s KubeSchedulerConfiguration as it is, but for `urlPrefix` (this extender) and leader
    election (one scheduler here; its lease would outlive a stopped scheduler and hold up the next)."""
    config = yaml.safe_load((REPO / "deploy" / "base" / "scheduler-config.yaml").read_text())
    [extender] = config["extenders"]
    extender["urlPrefix"] = extender_url
    config["leaderElection"] = {"leaderElect": False}
    return config


@contextmanager
def running_scheduler(plane: ControlPlane, extender: Extender, name: str) -> Iterator[subprocess.Popen[bytes]]:
    with plane.scheduler(scheduler_config(extender.url), name=name, extra_args=["--v=1"]) as process:
        time.sleep(0.2)
        if process.poll() is not None:
            raise RuntimeError(f"kube-scheduler exited ({process.returncode}):\n{plane.log(name)[-3000:]}")
        yield process


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and every process it started, from /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        with suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in os.listdir(f"/proc/{current}/task"):
                pending += map(int, Path(f"/proc/{current}/task/{task}/children").read_text().split())
    return total


# --- figures -------------------------------------------------------------------------------------

def filters_per_pod(extender: Extender, namespace: str, names: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for record in extender.decisions("filter", namespace):
        name = record["pod"].split("/", 1)[1]
        if name in counts:
            counts[name] += 1
    return counts


STATE_IN_CLUSTER = {"SITE_EXTENDER_STATE": "cluster", "SITE_EXTENDER_NAMESPACE": "site-extender"}
"""deploy/'s settings for the state in the cluster."""


def keep_state_in_cluster(plane: ControlPlane) -> None:
    """What deploy/ and its set-up give an extender with SITE_EXTENDER_STATE=cluster: the CRDs, the
    namespace, its ServiceAccount and RBAC, the sample inventory imported as Sites and Regions."""
    plane.install_crds()
    plane.apply_extender_access()
    imported = plane.import_inventory(str(REPO / "policy" / "inventory"))
    if imported.returncode != 0:
        raise RuntimeError(f"site-extender import failed ({imported.returncode}):\n{imported.stderr}")
