"""`python -m bench` (`make bench`): generate clusters, serve them with gunicorn as deployed, drive
/filter and /prioritize (and, in bind mode, /bind) like kube-scheduler, measure the floor, print and
write bench/RESULTS.md."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.bind_loop import VERBS as BIND_VERBS
from bench.bind_loop import drive_binds
from bench.cluster import REPO, Cluster, generate
from bench.fake_cluster import fake_cluster
from bench.measure import Budget, Client, check_filter, check_prioritize, drive, floor
from bench.report import Memory, Row, keep_sections, render
from bench.server import Server, serve
from tests.fake_apiserver import FakeApiServer

DEFAULT_SIZES = (100, 1000, 5000)
MODES = ("cache", "full", "watch", "bind")
"""watch: cache-mode bodies to an extender that watches a (fake) API server serving the generated
nodes and VM pods bound to them: the deployed setup, placements included. bind: the same, with the
scheduler's whole loop per pod (`bench.bind_loop`): placements change between every two pods."""
VERBS = ("filter", "prioritize")


def bodies_of(cluster: Cluster, mode: str, pods: int) -> Callable[[int], bytes]:
    """Body number i of one mode, built on demand (a full 5,000-node body is megabytes): a fresh VM
    pod each (`Cluster.pod`), or, with `pods`, the first `pods` of them cycled."""
    def pod(i: int) -> bytes:
        return cluster.pod(i % pods if pods else i)
    if mode in ("cache", "watch"):
        return lambda i: cluster.cache_body(pod(i))
    nodes = b',"Nodes":{"metadata":{},"items":[' + b",".join(cluster.nodes) + b']},"NodeNames":null}'
    return lambda i: b'{"Pod":' + pod(i) + nodes


SIZE_SAMPLE = 32
"""Bodies whose mean size the table shows."""


def run_size(sites: int, workdir: Path, budget: Budget, modes: Sequence[str], pods: int, placed_per_site: int,
             log: Callable[[str], None]) -> tuple[list[Row], list[Memory]]:
    cluster = generate(sites, workdir / f"inventory-{sites}")
    env = {"SITE_EXTENDER_POLICY": str(REPO / "policy"), "SITE_EXTENDER_INVENTORY": str(cluster.inventory_dir)}
    rows: list[Row] = []
    memory: list[Memory] = []
    static = [m for m in modes if m in ("cache", "full")]
    if static:
        with serve(workdir, {**env, "SITE_EXTENDER_KUBE": "none"}) as server:
            rows += measure(server, cluster, sites, static, budget, pods, log)
            memory.append(Memory(sites, "no cluster", *server_memory(server)))
    if "watch" in modes:
        with fake_cluster(cluster, placed_per_site) as api:
            kube_env = {**env, "SITE_EXTENDER_KUBE": "kubeconfig", "SITE_EXTENDER_KUBECONFIG": str(api.kubeconfig(workdir))}
            with serve(workdir, kube_env, timeout=300) as server:
                held = server.readyz().get("cluster", {})
                rows += measure(server, cluster, sites, ["watch"], budget, pods, log)
                memory.append(Memory(sites, f"node cache: {held.get('nodes', 0):,} nodes, {held.get('pods', 0):,} pods",
                                     *server_memory(server)))
    if "bind" in modes:
        with fake_cluster(cluster, placed_per_site) as api:
            kube_env = {**env, "SITE_EXTENDER_KUBE": "kubeconfig", "SITE_EXTENDER_KUBECONFIG": str(api.kubeconfig(workdir))}
            with serve(workdir, kube_env, timeout=300) as server:
                rows += measure_binds(server, api, cluster, sites, budget, pods, log)
                memory.append(Memory(sites, "node cache, after the bind loop", *server_memory(server)))
    return rows, memory


def measure_binds(server: Server, api: FakeApiServer, cluster: Cluster, sites: int, budget: Budget, pods: int,
                  log: Callable[[str], None]) -> list[Row]:
    client = Client(server.host, server.port)
    try:
        timings, bodies, refused = drive_binds(client, api, cluster, budget, pods)
    finally:
        client.close()
    rows = []
    for verb in BIND_VERBS:
        sample = bodies[verb]
        if not sample:
            continue
        row = Row(sites, "bind", verb, sum(map(len, sample)) // len(sample), timings[verb],
                  floor(sample.__getitem__, len(sample), budget))
        rows.append(row)
        log(f"{sites:>6} bind  /{verb:<10} p50 {row.extender.p50 * 1000:8.2f} ms"
            f"  p99 {row.extender.p99 * 1000:8.2f} ms  ({row.extender.calls} calls, {refused} binds refused)")
    return rows


def server_memory(server: Server) -> tuple[int, int, int]:
    now = server.worker_memory_kib()
    return server.ready_rss_kib, now["VmRSS"], now["VmHWM"]


def measure(server: Server, cluster: Cluster, sites: int, modes: Sequence[str], budget: Budget, pods: int,
            log: Callable[[str], None]) -> list[Row]:
    rows = []
    client = Client(server.host, server.port)
    count = pods or budget.warmup + budget.max_calls  # never cycled without --pods
    try:
        for mode in modes:
            bodies = bodies_of(cluster, mode, pods)
            size = sum(len(bodies(i)) for i in range(min(count, SIZE_SAMPLE))) // min(count, SIZE_SAMPLE)
            for verb in VERBS:
                check = check_filter if verb == "filter" else check_prioritize
                timings = drive(client, "/" + verb, bodies, count, budget, check)
                row = Row(sites, mode, verb, size, timings, floor(bodies, count, budget))
                rows.append(row)
                log(f"{sites:>6} {mode:<5} /{verb:<10} p50 {row.extender.p50 * 1000:8.2f} ms"
                    f"  p99 {row.extender.p99 * 1000:8.2f} ms  floor {row.floor.timings.p50 * 1000:7.2f} ms"
                    f"  x{row.ratio:.1f}  ({row.extender.calls} calls)")
    finally:
        client.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="site counts, comma separated (default: %(default)s)")
    parser.add_argument("--modes", default=",".join(MODES), help="cache, full or both (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per case (default: %(default)s)")
    parser.add_argument("--min-calls", type=int, default=50, help="calls per case at least (default: %(default)s)")
    parser.add_argument("--max-calls", type=int, default=5000, help="calls per case at most (default: %(default)s)")
    parser.add_argument("--pods", type=int, default=0,
                        help="distinct VM pods, cycled (default: a fresh pod, with its own request, every call)")
    parser.add_argument("--placed-per-site", type=int, default=2,
                        help="watch mode: VM pods bound to each node (default: %(default)s)")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for RESULTS.md's notes, e.g. another run's figures to compare with (repeatable)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md",
                        help="where to write the results (default: bench/RESULTS.md)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode {', '.join(sorted(unknown))}; known: {', '.join(MODES)}")
    budget = Budget(seconds=args.seconds, min_calls=args.min_calls, max_calls=args.max_calls,
                    warmup=min(5, args.min_calls))
    rows: list[Row] = []
    memory: list[Memory] = []
    with tempfile.TemporaryDirectory(prefix="site-extender-bench-") as tmp:
        for sites in sizes:
            size_rows, size_memory = run_size(sites, Path(tmp), budget, modes, args.pods, args.placed_per_site,
                                              lambda line: print(line, file=sys.stderr, flush=True))
            rows += size_rows
            memory += size_memory
    command = "python -m bench " + shlex.join(_without_notes(argv if argv is not None else sys.argv[1:]))
    text = render(rows, memory, command.strip(), notes=[
        "Every call sends a fresh VM pod with its own request (`--pods N` cycles N pods instead), so no"
        " cache keyed by the request can flatter a figure.",
        "Cache mode sends every site's name (the scheduler's worst case, percentageOfNodesToScore 100);"
        " without a cluster the node names are the site ids. Full mode sends one recorded Node object per site.",
        "In cache, full and watch mode /prioritize is sent every node too (the scheduler sends those that"
        " passed filtering: at most as many); in bind mode those that passed.",
        "cache and full: no cluster, nothing placed (stock from the inventory alone). watch: the extender"
        " watches a local fake API server (tests/fake_apiserver.py) that lists one node per site and"
        " VM pods bound to them; their placements count.",
        "bind: as watch, with kube-scheduler's whole loop per pod (deploy/ makes the extender the binder):"
        " /filter over every node, /prioritize over those that passed, /bind to the best. Each bind"
        " changes what is placed, so each /filter meets a new snapshot (a busy cluster's steady state);"
        " /bind includes the extender's call to the fake API server.",
    ] + args.note)
    if args.out.exists():
        text = keep_sections(args.out.read_text(encoding="utf-8"), text)
    args.out.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


def _without_notes(argv: Sequence[str]) -> list[str]:
    """The command line as RESULTS.md shows it: the notes are shown as notes."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            kept.append(arg)
    return kept


if __name__ == "__main__":
    sys.exit(main())
