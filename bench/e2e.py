"""`python -m bench.e2e` (`make bench-e2e`): the real scheduling loop with the real binaries, measured.

A control plane of its own (etcd, kube-apiserver, kube-scheduler v1.36 from ../shared/k8s or
SITE_EXTENDER_K8S_BIN), kube-scheduler with deploy/'s configuration, the extender as `make run` starts
it, the twelve sites of policy/inventory and 1,000 other nodes (tests/scheduler_e2e.py builds all of it,
as the end-to-end test does). Then, per round, the same number of plain pods and VM pods of the profile
(the order alternates between rounds), each burst timed from its first creation to its last pod bound:

- throughput ratio: plain seconds / VM seconds (1.0: VM pods bind as fast as plain ones);
- /bind latency in the loop: the extender's access-log duration of every /bind the scheduler made, and
  the part of it its Binding write took (the decision line's `api_ms`);
- /bind one at a time: pods of no scheduler bound by direct calls, one after another (the API write with
  nothing else running);
- /filter calls per VM pod (stock is plentiful: every VM pod fits), and the nodes each was sent.

With `--state cluster` the extender keeps its state in the cluster as deploy/ runs it
(SITE_EXTENDER_STATE=cluster: the sample inventory imported as Site and Region objects, every bind
admitted through the admission ledger), and the figures go to a section of their own.

The figures go to bench/RESULTS.md, in a section of their own (`make bench` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client

from bench.measure import percentile
from bench.report import replace_section
from tests.control_plane import ControlPlane, control_plane, find_binaries
from tests.scheduler_e2e import (
    BindWatch,
    Extender,
    STATE_IN_CLUSTER,
    cpu_seconds,
    ensure_namespace,
    filters_per_pod,
    keep_state_in_cluster,
    make_cluster,
    pod,
    remove_pods,
    running_scheduler,
    serve_extender,
    site_node_count,
    time_to_bind,
    vm_request,
)

SECTION = "bench-e2e"
CLUSTER_STATE = {**STATE_IN_CLUSTER, "SITE_EXTENDER_SITE_NODES": "false"}
"""deploy/'s state settings, but for the site nodes: the bench makes them, as for the files state."""
REGIONS = {"region1": [], "region3": [], "region4": []}
"""c6.large.2 in three regions: about 280 in stock, more than a round's VM pods."""


def cached_pods(extender: Extender) -> int:
    with urllib.request.urlopen(extender.url + "/readyz", timeout=5) as answer:
        return int(json.loads(answer.read())["cluster"]["pods"])


def wait_released(core: client.CoreV1Api, extender: Extender, namespace: str, baseline: int) -> None:
    """Delete the round's pods and wait until the extender's cache no longer counts them."""
    remove_pods(core, namespace)
    deadline = time.monotonic() + 60
    while cached_pods(extender) > baseline:
        if time.monotonic() > deadline:
            raise RuntimeError("the extender still counts the deleted pods after 60 s")
        time.sleep(0.1)


def bind_one_at_a_time(core: client.CoreV1Api, extender: Extender, node: str, count: int) -> list[float]:
    """Milliseconds of `count` /bind calls made one after another by this client."""
    namespace = "bench-direct"
    ensure_namespace(core, namespace)
    pods = [pod(f"direct-{i}", vm_request("c6.large.2", REGIONS)) for i in range(count)]
    for body in pods:
        body["spec"]["schedulerName"] = "no-scheduler"  # nobody else binds them
        core.create_namespaced_pod(namespace, body)
    time.sleep(1)  # the extender's watch has them
    uids = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_pod(namespace).items}
    took = []
    for body in pods:
        name = body["metadata"]["name"]
        args = json.dumps({"PodName": name, "PodNamespace": namespace, "PodUID": uids[name], "Node": node}).encode()
        request = urllib.request.Request(extender.url + "/bind", data=args,
                                         headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as answer:
            error = json.loads(answer.read())["Error"]
        took.append((time.perf_counter() - started) * 1000)
        if error:
            raise RuntimeError(f"/bind {name}: {error}")
    remove_pods(core, namespace)
    return took


@contextmanager
def keep_logs(directory: Path | None, plane: ControlPlane, extender: Extender) -> Iterator[None]:
    """Copy the extender's and kube-scheduler's logs into `directory` at the end, failed runs included."""
    try:
        yield
    finally:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copy(extender.log_path, directory / "extender.log")
            (directory / "kube-scheduler.log").write_text(plane.log("kube-scheduler"))


def run(args: argparse.Namespace) -> str:
    binaries, why = find_binaries()
    if binaries is None:
        sys.exit(f"bench-e2e needs the control-plane binaries: {why}")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp, control_plane(binaries, Path(tmp)) as plane:
        core = client.CoreV1Api(plane.api_client())
        started = time.perf_counter()
        cluster = make_cluster(core, "bench", args.other_nodes)
        print(f"{len(cluster.site_nodes)} site nodes and {args.other_nodes:,} other nodes in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        if args.state == "cluster":
            keep_state_in_cluster(plane)
        settings = CLUSTER_STATE if args.state == "cluster" else {}
        with serve_extender(plane, Path(tmp), settings=settings) as extender, \
                running_scheduler(plane, extender, "kube-scheduler") as scheduler, keep_logs(args.logs, plane, extender):
            processes = {"extender": extender.process.pid, "kube-apiserver": plane.processes[1].pid,
                         "etcd": plane.processes[0].pid, "kube-scheduler": scheduler.pid}
            cpu: dict[str, dict[str, float]] = {"plain": dict.fromkeys(processes, 0.0), "vm": dict.fromkeys(processes, 0.0)}
            sites = site_node_count(core)
            baseline = cached_pods(extender)
            ensure_namespace(core, "warm-up")
            warm = BindWatch(core, "warm-up").start()
            time_to_bind(core, warm, "warm-up", [pod(f"plain-{i}") for i in range(20)] +
                         [pod(f"vm-{i}", vm_request("c6.large.2", REGIONS)) for i in range(20)], 120)
            warm.close()
            wait_released(core, extender, "warm-up", baseline)

            ratios, plain_s, vm_s, in_loop, writes, counts, asked = [], [], [], [], [], [], set()
            for r in range(args.rounds):
                namespace = f"round-{r}"
                ensure_namespace(core, namespace)
                watch = BindWatch(core, namespace).start()
                plain = [pod(f"plain-{i}") for i in range(args.pods)]
                vms = [pod(f"vm-{i}", vm_request("c6.large.2", REGIONS)) for i in range(args.pods)]
                seen = len(extender.records())
                took = {}
                for kind, pods in (("plain", plain), ("vm", vms)) if r % 2 == 0 else (("vm", vms), ("plain", plain)):
                    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                    took[kind] = time_to_bind(core, watch, namespace, pods, 300)
                    for name, pid in processes.items():
                        cpu[kind][name] += cpu_seconds(pid) - before[name]
                watch.close()
                time.sleep(0.5)  # the last access lines reach the log
                records = extender.records()[seen:]
                in_loop += [r_["duration_ms"] for r_ in records if r_.get("path") == "/bind" and "duration_ms" in r_]
                writes += [r_["api_ms"] for r_ in records if r_.get("verb") == "bind" and "api_ms" in r_]
                per_pod = filters_per_pod(extender, namespace, (p["metadata"]["name"] for p in vms))
                counts += per_pod.values()
                asked |= {d["nodes_in"] for d in extender.decisions("filter", namespace)}
                plain_s.append(took["plain"])
                vm_s.append(took["vm"])
                ratios.append(took["plain"] / took["vm"])
                print(f"round {r + 1}: {args.pods} plain pods in {took['plain']:.2f} s, {args.pods} VM pods in "
                      f"{took['vm']:.2f} s, ratio {ratios[-1]:.2f}; /filter per VM pod: max {max(per_pod.values())}",
                      flush=True)
                wait_released(core, extender, namespace, baseline)

            direct = bind_one_at_a_time(core, extender, cluster.site_nodes["site1"], args.direct_binds)
        version = client.VersionApi(plane.api_client()).get_code().git_version
    load_after = os.getloadavg()[0]

    per_pod = {kind: {name: 1000 * seconds / (args.pods * args.rounds) for name, seconds in used.items()}
               for kind, used in cpu.items()}
    rows = [
        ("throughput ratio (plain s / VM s), median of rounds", f"{statistics.median(ratios):.2f}",
         f"rounds: {', '.join(f'{r:.2f}' for r in ratios)}; plain {statistics.median(plain_s):.2f} s, "
         f"VM {statistics.median(vm_s):.2f} s for {args.pods} pods", "≥ 0.9"),
        ("/bind in the loop, p50 / p99 ms", f"{percentile(in_loop, 50):.1f} / {percentile(in_loop, 99):.1f}",
         f"{len(in_loop)} binds made by kube-scheduler (extender's access log)", "p50 ≤ 5, p99 ≤ 15"),
        ("of which the Binding write, p50 / p99 ms", f"{percentile(writes, 50):.1f} / {percentile(writes, 99):.1f}",
         "the API server's answer alone (`api_ms` of the bind decision lines): the rest of a /bind is the"
         " extender's", ""),
        ("/bind one at a time, p50 / p99 ms", f"{percentile(direct, 50):.1f} / {percentile(direct, 99):.1f}",
         f"{len(direct)} calls from the bench, nothing else running", "p50 ≤ 5, p99 ≤ 15"),
        ("/filter calls per VM pod (plentiful stock), max / mean",
         f"{max(counts)} / {statistics.mean(counts):.2f}",
         f"{len(counts)} VM pods; nodes per /filter: {', '.join(map(str, sorted(asked)))} "
         f"(site nodes in the cluster: {sites})", "1"),
        *((f"CPU ms per pod, {name}: plain / VM", f"{per_pod['plain'][name]:.1f} / {per_pod['vm'][name]:.1f}",
           "CPU time while the bursts of that kind ran (/proc: the process and its children)", "")
          for name in cpu["vm"]),
    ]
    lines = [
        "## kube-scheduler end to end (`make bench-e2e`)" if args.state == "files" else
        "## kube-scheduler end to end, state in the cluster as deploy/ keeps it (`make bench-e2e BENCH_ARGS=--state=cluster`)",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores shared by everything below (load average "
        f"{load_before:.1f} before the run, {load_after:.1f} after); kube-apiserver and kube-scheduler {version}",
        f"- Command: `make bench-e2e` (`python -m bench.e2e{''.join(' ' + a for a in args.argv)}`)",
        f"- {len(cluster.site_nodes)} site nodes, {args.other_nodes:,} other nodes (capacity, no taint: feasible for "
        f"kube-scheduler's own plugins); deploy/'s profile; {args.rounds} rounds of {args.pods} plain pods and "
        f"{args.pods} VM pods (c6.large.2), each burst timed from its first creation to its last pod bound; "
        + ("state in files (what `make run` serves)" if args.state == "files" else
           "state in the cluster (SITE_EXTENDER_STATE=cluster: Sites and Regions imported, each bind admitted "
           "through the admission ledger, a ConfigMap write before the Binding)"),
        "",
        "| figure | measured | detail | target |",
        "|---|---:|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "- Plain pods are bound by kube-scheduler itself, through its client's rate limit (QPS 50, burst 100:"
        " about 2 s for 200); a VM pod costs three HTTP calls to the extender (/filter, /prioritize, /bind)"
        + (" and the extender's Binding, the one API write of a /bind" if args.state == "files" else
           " and the extender's two writes of a /bind: the admission ledger (one write for the binds checked"
           " while the one before was in flight) and the Binding")
        + "; its Placed Event follows at the"
        " extender's Event pace (SITE_EXTENDER_EVENT_QPS/_BURST, 5/s and 10), so most of a burst's Events"
        " are written after it. The CPU rows show where the rest goes: on two shared cores, CPU per VM pod"
        " (extender, API server, etcd, scheduler together), not sampling, bounds the ratio; /filter calls"
        " per VM pod show the sampling is gone.",
        "- /bind one at a time: one Binding against this API server (etcd on local disk) and the extender's"
        " own work, with nothing else running; in the loop, binds queue behind the scheduler's own API"
        " calls and the other extender requests for the same two cores.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument("--other-nodes", type=int, default=1000, help="nodes that are not sites (default 1000)")
    parser.add_argument("--pods", type=int, default=200, help="plain pods and VM pods per round (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--direct-binds", type=int, default=100, help="/bind calls one at a time (default 100)")
    parser.add_argument("--state", choices=("files", "cluster"), default="files",
                        help="where the extender keeps its state: files (make run, default) or cluster (deploy/)")
    parser.add_argument("--logs", type=Path, help="copy the extender's and kube-scheduler's logs into this directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md",
                        help="the results file whose section this run replaces (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    section = run(args)
    print(section)
    text = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Benchmark results\n"
    name = SECTION if args.state == "files" else f"{SECTION}-cluster"
    args.out.write_text(replace_section(text, name, section), encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
