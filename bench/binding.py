"""`python -m bench.binding`: what one Binding costs against the real kube-apiserver, three ways side by side.

The same Binding (annotations and uid precondition, as /bind sends it) of fresh pods, the three ways
taking turns so that the API server's drift falls on each alike:
- the official client's generated method (`CoreV1Api.create_namespaced_pod_binding`, answer unread
  into models);
- `extender.kube.transport.Transport` (the client's own pool and credentials, without its generated
  per-call layer), as the extender sends it;
- Python's `http.client` on one kept-alive connection: the floor, below any client.

The figures go to bench/RESULTS.md, in a section of their own.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client

from bench.measure import percentile
from bench.report import replace_section
from extender.kube.api import bind_pod
from extender.kube.transport import Transport
from tests.control_plane import ControlPlane, control_plane, find_binaries

SECTION = "bench-binding"
NODE = "bench-binding-node"


def run(count: int) -> str:
    binaries, why = find_binaries()
    if binaries is None:
        sys.exit(f"bench.binding needs the control-plane binaries: {why}")
    with tempfile.TemporaryDirectory(prefix="bench-binding-") as tmp, control_plane(binaries, Path(tmp)) as plane:
        return measure(plane, count)


def measure(plane: ControlPlane, count: int, namespace: str = "bench-binding") -> str:
    """The section: `count` Bindings each way against `plane`, of pods in `namespace` (made here)."""
    api = plane.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    if not core.list_node(field_selector=f"metadata.name={NODE}").items:
        core.create_node({"metadata": {"name": NODE}})
    names = [f"pod-{i}" for i in range(3 * count)]
    for name in names:
        core.create_namespaced_pod(namespace, {"metadata": {"name": name}, "spec": {
            "schedulerName": "nobody", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
    uids = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_pod(namespace).items}
    annotations = {"site-extender.io/site": "site1"}
    transport = Transport(api)
    context = ssl.create_default_context(cafile=str(plane.workdir / "certs" / "apiserver.crt"))
    context.check_hostname = False
    host, port = plane.url.split("//", 1)[1].rsplit(":", 1)
    connection = http.client.HTTPSConnection(host, int(port), context=context)

    def binding(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Binding", "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
                "metadata": {"name": name, "namespace": namespace, "uid": uids[name], "annotations": annotations}}

    def generated(name: str) -> None:
        answer = core.create_namespaced_pod_binding(name, namespace, binding(name), _preload_content=False)
        answer.data  # noqa: B018 - read, as the extender reads it
        answer.release_conn()

    def pooled(name: str) -> None:
        bind_pod(transport, namespace, name, uids[name], NODE, 4.0, annotations=annotations)

    def floor(name: str) -> None:
        connection.request("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body=json.dumps(binding(name)),
                           headers={"Authorization": f"Bearer {plane.admin_token}", "Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        if answer.status != 201:
            raise RuntimeError(f"binding {name}: {answer.status}")

    ways: list[tuple[str, Callable[[str], None]]] = [
        ("official client, generated method", generated), ("`Transport` (what /bind uses)", pooled),
        ("`http.client`, one connection (the floor)", floor)]
    took: dict[str, list[float]] = {label: [] for label, _ in ways}
    for i, name in enumerate(names):
        label, way = ways[i % len(ways)]
        started = time.perf_counter()
        way(name)
        took[label].append((time.perf_counter() - started) * 1000)
    version = client.VersionApi(api).get_code().git_version
    connection.close()
    api.close()
    floor_p50 = percentile(took[ways[-1][0]], 50)
    lines = [
        "## One Binding against kube-apiserver (`python -m bench.binding`)",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; kube-apiserver {version}, etcd on local disk; {count} "
        "Bindings each way, the ways taking turns",
        "",
        "| way | p50 ms | p99 ms | p50 / floor |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {percentile(t, 50):.2f} | {percentile(t, 99):.2f} | {percentile(t, 50) / floor_p50:.2f}x |"
          for label, t in took.items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.binding", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="Bindings each way (default 200)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md",
                        help="the results file whose section this run replaces (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    section = run(args.count)
    print(section)
    text = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Benchmark results\n"
    args.out.write_text(replace_section(text, SECTION, section), encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
