"""The `site-extender` command line: serve, check-policy, simulate, allocate, release, resources.

Exit codes (the same for every command, so scripts can trust them):
  0  done: served; the policy is valid; some site passes; allocated; released
  1  done, but the answer is no: no site passes (simulate); the replicas do not fit, nothing was
     allocated (allocate); no such allocation (release)
  2  invalid input: a bad option or argument, a file that cannot be read, an invalid policy,
     inventory, ExtenderArgs or allocation request (every problem is printed, with file and field)
  3  the allocation store cannot be used (the data directory is not writable)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec
import yaml

from extender.allocation.request import AllocationRequestError
from extender.allocation.service import AllocationExists, AllocationRefused, Allocations, refusal_body
from extender.allocation.store import AllocationStore, StoreUnavailable
from extender.config.policy import Policy, load_policy, resolve_policy_file
from extender.config.policy_store import EMPTY_INVENTORY, PolicyStore
from extender.config.settings import STATE_CLUSTER, Settings, SettingsError
from extender.domain.inventory import load_inventory
from extender.errors import ConfigError, PolicyError
from extender.kube.view import StaticCluster
from extender.protocol.service import Extender
from extender.protocol.wire import encode

EXIT_OK = 0
EXIT_NO = 1
EXIT_INVALID = 2
EXIT_CONFIG_ERROR = EXIT_INVALID
EXIT_STORE = 3

EXIT_CODES_HELP = """\b
Exit codes:
  0  done (valid, passes, allocated, released)
  1  the answer is no (no site passes, does not fit, no such allocation)
  2  invalid input (option, file, policy, inventory, request)
  3  the allocation store cannot be used"""

POLICY_HELP = ("Policy file, or a directory with policy.yaml (or edgecloud_policy.yaml). "
               "Default: SITE_EXTENDER_POLICY, else CONFIG_BASE's scheduler_policy_file, else ./policy.")
INVENTORY_HELP = "Inventory directory. Default: SITE_EXTENDER_INVENTORY, else CONFIG_BASE, else the policy's options.inventory."


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    click.echo(f"site-extender: {message}", err=True)
    sys.exit(code)


def settings() -> Settings:
    try:
        return Settings()
    except SettingsError as exc:
        fail(str(exc))
    except ConfigError as exc:
        fail(f"CONFIG_BASE does not load:\n{exc}")


def policy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--inventory", "inventory", type=click.Path(path_type=Path), help=INVENTORY_HELP)(func)
    return click.option("--policy", "-p", "policy", type=click.Path(path_type=Path), help=POLICY_HELP)(func)


def load(policy: Path | None, inventory: Path | None) -> tuple[Path, Path | None]:
    """The policy and inventory paths: the options, else the settings (environment, CONFIG_BASE)."""
    if policy is None or inventory is None:
        defaults = settings()
        policy = policy or defaults.policy
        inventory = inventory or (defaults.inventory if policy == defaults.policy else None)
    return policy, inventory


def policy_store(policy: Path, inventory: Path | None) -> PolicyStore:
    try:
        return PolicyStore(policy, inventory)
    except ConfigError as exc:
        fail(f"the policy does not load:\n{exc}")


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


# --- shared by the commands -----------------------------------------------------------------------


def data_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                        help="Where the allocations are kept (allocations.db). Default: SITE_EXTENDER_DATA_DIR, "
                             "else ./data. Use the server's to allocate next to it.")(func)


ERR_STATE_IN_CLUSTER = ("SITE_EXTENDER_STATE=cluster keeps the allocations in the cluster, where this command "
                        "cannot take its turn with the replicas: use the extender's allocation API "
                        "(POST /v1/allocations, DELETE /v1/allocations/ID on its API port) instead")


def refuse_state_in_cluster() -> None:
    """`allocate` and `release` work on the data directory's store: with the state in the cluster they
    would allocate where no replica looks."""
    if settings().state == STATE_CLUSTER:
        fail(ERR_STATE_IN_CLUSTER)


def allocations(policy: Path | None, inventory: Path | None, data_dir: Path | None) -> Allocations:
    refuse_state_in_cluster()
    policy_path, inventory_path = load(policy, inventory)
    store = AllocationStore(data_dir or settings().data_dir)
    return Allocations(Extender(policy_store(policy_path, inventory_path), StaticCluster(), sources=(store,)), store)


OUTPUT_FORMATS = ("table", "json", "yaml")


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--output", "-o", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
                        help="table for people; json is exactly the HTTP answer; yaml the same as YAML.")(func)


def server_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--server", metavar="URL",
                        help="Ask a running extender (e.g. http://localhost:8888), so that what it has placed "
                             "counts. Default: work it out here from the policy, inventory and allocations.")(func)


def remote_json(server: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    from extender.cli.remote import RemoteError, call

    try:
        return call(server, path, body)
    except RemoteError as exc:
        fail(str(exc))


def emit(value: Any, output: str, table_lines: Callable[[], list[str]]) -> None:
    if output == "json":
        click.echo(json.dumps(value, separators=(",", ":")))
    elif output == "yaml":
        click.echo(yaml.safe_dump(value, sort_keys=False, allow_unicode=True), nl=False)
    else:
        click.echo("\n".join(table_lines()))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=EXIT_CODES_HELP)
@click.version_option(package_name="site-extender", prog_name="site-extender", message="%(prog)s %(version)s")
def main() -> None:
    """site-extender: a kube-scheduler extender that places VM pods onto sites, and the global
    scheduler's allocation API. Settings come from SITE_EXTENDER_* variables or CONFIG_BASE."""


@main.command(epilog=EXIT_CODES_HELP)
@click.option("--host", help="Address to listen on (SITE_EXTENDER_HOST; default 0.0.0.0, or CONFIG_BASE's address).")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port to listen on (SITE_EXTENDER_PORT; default 8888, or CONFIG_BASE's port).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the extender under gunicorn with the package's gunicorn config.

    Settings come from SITE_EXTENDER_* variables (POLICY, INVENTORY, HOST, PORT, WORKERS, THREADS,
    DATA_DIR, ...), or from the original service's conf.yaml in CONFIG_BASE (address, port,
    scheduler_policy_file; its data files are the inventory); --host and --port win over both.
    The policy is validated first: a bad one stops here with every problem listed.
    """
    # gunicorn's config module reads the address from the environment (extender.config.settings.listen)
    if host is not None:
        if not host.strip():
            fail("--host: must not be empty (0.0.0.0 listens on every address)")
        os.environ["SITE_EXTENDER_HOST"] = host
    if port is not None:
        os.environ["SITE_EXTENDER_PORT"] = str(port)
    # gunicorn's settings first: a bad one ends here in one line with exit code 2 (the module says it).
    import extender.ops.gunicorn_conf  # noqa: F401
    config = settings()
    try:
        # With the state in the cluster, the inventory is watched there: only the policy is checked here.
        load_policy(config.policy, config.inventory,
                    inventory=EMPTY_INVENTORY if config.state == STATE_CLUSTER else None)
    except ConfigError as exc:
        fail(f"cannot start, the policy does not load:\n{exc}", EXIT_CONFIG_ERROR)
    # The cluster access too: a kubeconfig that does not load stops here, never a start without a cluster.
    from extender.errors import KubeConfigError
    from extender.kube import config as kube_config

    try:
        target = kube_config.choose(config.kube, os.environ, config.kubeconfig, config.master)
        if target.mode == kube_config.KUBECONFIG:
            with kube_config.api_client(target):  # loads the kubeconfig; no request is sent
                pass
    except KubeConfigError as exc:
        fail(f"cannot start: {exc}", EXIT_CONFIG_ERROR)
    from gunicorn.app.wsgiapp import run

    sys.argv = ["site-extender", "-c", "python:extender.ops.gunicorn_conf"]
    run()


# --- check-policy ------------------------------------------------------------------------------------


def summary(policy: Policy) -> list[str]:
    inventory = policy.inventory
    lines = [f"policy {policy.path}: valid", f"inventory {policy.options.inventory_dir}", ""]
    lines.append("predicates: " + ", ".join(p.name for p in policy.predicates))
    lines.append("priorities: " + ", ".join(f"{p.plugin.name} (weight {p.weight})" for p in policy.priorities))
    by_region: dict[str, list[str]] = {}
    for site in inventory.sites.values():
        by_region.setdefault(site.region, []).append(site.id if site.available else f"{site.id} ({site.status})")
    lines += ["", f"sites: {len(inventory.sites)} in {len(by_region)} region(s)"]
    lines += [f"  {region} ({len(ids)}): {', '.join(ids)}" for region, ids in sorted(by_region.items())]
    flavors: dict[str, list[str]] = {}
    for region, flavor_id in inventory.flavors:
        flavors.setdefault(region, []).append(flavor_id)
    lines += ["", f"flavors: {len(inventory.flavor_ids())} ({len(inventory.flavors)} by region)"]
    lines += [f"  {region}: {', '.join(ids)}" for region, ids in sorted(flavors.items())]
    lines += ["", f"EIP pools: {len(inventory.eip_pools)}"]
    lines += [f"  {p.region}/{p.name}: {p.size - p.used} free of {p.size}" for p in inventory.eip_pools.values()]
    lines += ["", f"volume pools: {len(inventory.volume_pools)}"]
    lines += [f"  {p.region}/{p.availability_zone}/{p.name}: {p.volume_type}, {p.total_capacity_gb:g} GB"
              f" ({p.provisioned_capacity_gb:g} provisioned)" for p in inventory.volume_pools]
    return lines


@main.command("check-policy", epilog=EXIT_CODES_HELP)
@click.argument("directory", required=False, type=click.Path(path_type=Path), metavar="[DIR]")
@click.option("--inventory", "inventory", type=click.Path(path_type=Path), help=INVENTORY_HELP)
def check_policy(directory: Path | None, inventory: Path | None) -> None:
    """Validate a policy and its inventory and print a summary (sites per region, flavors, pools),
    or every problem found, each with its file and field.

    DIR is a policy file or a directory holding policy.yaml or edgecloud_policy.yaml (the original
    conf/ directory works as it is). Default: the policy `serve` would use.
    """
    policy_path, inventory_path = load(directory, inventory)
    try:
        policy = load_policy(policy_path, inventory_path)
    except ConfigError as exc:
        problems = list(exc.problems)
        if isinstance(exc, PolicyError):  # the inventory was not read: read it too, to list its problems as well
            problems += inventory_problems(policy_path, inventory_path)
        click.echo(f"{len(problems)} problem(s):", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo("\n".join(summary(policy)))


def inventory_problems(policy: Path, inventory: Path | None) -> list[str]:
    """The problems of the inventory a policy that failed to load would have used."""
    if inventory is None:
        try:
            file = resolve_policy_file(policy)
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
            named = ((data or {}).get("options") or {}).get("inventory", ".")
            inventory = file.parent / str(named)
        except (ConfigError, OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
            return []
    try:
        load_inventory(inventory)
    except ConfigError as exc:
        return list(exc.problems)
    return []


# --- simulate ----------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> list[str]:
    """The summary: per node, /filter's verdict and reason, each priority's part, the final score."""
    priorities = result["priorities"]
    headers = ["SITE", "RESULT", *priorities, "FINAL", "REASON"]
    rows = []
    for row in result["nodes"]:
        name = row["node"] if row["node"] == row["site"] else f"{row['node']} ({row['site']})"
        scores = [f"{row['scores'][p]:.1f}" if p in row["scores"] else "-" for p in priorities]
        rows.append([name, row["result"], *scores, str(row["final"]), row["reason"]])
    return columns(headers, rows, numeric=set(range(2, len(headers) - 1)))


def rules_table(result: dict[str, Any]) -> list[str]:
    """Every predicate's verdict for every node, then the reason of every failing one."""
    explained = [row for row in result["nodes"] if row["rules"]]
    if not explained:
        return []
    headers = ["SITE", *result["predicates"]]
    rows = [[row["node"], *(verdict["result"] for verdict in row["rules"])] for row in explained]
    lines = ["", *columns(headers, rows + [["", *([""] * len(result["predicates"]))]], numeric=set())[:-1]]
    reasons = [f"{row['node']}: {verdict['reason']}" for row in explained for verdict in row["rules"] if verdict["reason"]]
    return lines + ([""] + reasons if reasons else [])


def columns(headers: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    """Aligned columns; the last one is left as it is (a reason)."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers) - 1)]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join([*parts, cells[-1]]).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def read_document(path: Path) -> Any:
    """A JSON or YAML file of one document (a Pod manifest as `kubectl apply -f` takes it, or ExtenderArgs)."""
    raw = read_file(path)
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        documents = [d for d in yaml.safe_load_all(raw) if d is not None]
    except yaml.YAMLError as exc:
        fail(f"{path}: neither JSON nor YAML: {' '.join(str(exc).split())}")
    if len(documents) != 1:
        fail(f"{path}: holds {len(documents)} documents; simulate takes one Pod or one ExtenderArgs")
    return documents[0]


@main.command("simulate", epilog=EXIT_CODES_HELP)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE")
@server_option
@click.option("--output", "-o", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
              help="table for people; json is exactly the POST /v1/explain answer; yaml the same as YAML.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the exact wire answers instead: the /filter answer on the first line, "
                   "the /prioritize answer on the second, byte for byte what the HTTP routes answer.")
@policy_options
@data_dir_option
def simulate_command(file: Path, server: str | None, output: str, as_json: bool, policy: Path | None,
                     inventory: Path | None, data_dir: Path | None) -> None:
    """Explain where a pod would go: for every node, its site, pass or fail, the reason /filter gives,
    every predicate's verdict (not only the first failure), each priority's score (normalized 0..100
    over the nodes that pass) and the final 0..10 score.

    FILE is a Pod manifest, YAML or JSON as `kubectl apply -f` takes it (asked about every node the
    server knows, else every site of the inventory; deploy/examples/vm-pod.yaml), or a saved
    ExtenderArgs (a kube-scheduler request body: policy/samples/*.json, or one captured from a cluster).

    With --server the running extender answers (POST /v1/explain): the pods and allocations it has
    placed count. Without it, what counts as placed is the inventory and the allocations of the data
    directory; in cache mode a node name is its site id. Exit 0 when some node passes, 1 when none does.
    """
    from extender.protocol import explain
    from extender.protocol.wire import WireError

    document = read_document(file)
    if server:
        status, answer = remote_json(server, "/v1/explain", json.dumps(document).encode())
        if status != 200:
            fail(f"{file}: {answer.get('error', answer) if isinstance(answer, dict) else answer}")
        filter_bytes, prioritize_bytes = msgspec.json.encode(answer["filter"]), msgspec.json.encode(answer["prioritize"])
    else:
        service = allocations(policy, inventory, data_dir).extender
        try:
            args = explain.args_for(document, service)
        except WireError as exc:
            fail(f"{file}: {exc}")
        result = explain.explain(service, args)
        filter_bytes, prioritize_bytes = encode(result.filter), encode(result.prioritize)
        answer = msgspec.json.decode(msgspec.json.encode(result))
    if as_json:
        sys.stdout.buffer.write(filter_bytes + b"\n" + prioritize_bytes + b"\n")
        sys.stdout.flush()
    else:
        passed = sum(row["result"] == "pass" for row in answer["nodes"])
        emit(answer, output, lambda: [
            f"pod {answer['pod']}, policy {answer['policy']}", *([answer["note"]] if answer["note"] else []),
            *table(answer), f"{passed} of {len(answer['nodes'])} node(s) pass", *rules_table(answer)])
    sys.exit(EXIT_OK if any(row["result"] == "pass" for row in answer["nodes"]) else EXIT_NO)


# --- allocate / release ------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, separators=(",", ":")))


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("request_file", type=click.Path(path_type=Path, dir_okay=False), metavar="REQUEST.json")
@click.option("--id", "allocation_id", help="The allocation's id (default: a new uuid). An id that exists"
              " already allocates nothing (exit 1): a retried command never allocates twice.")
@policy_options
@data_dir_option
def allocate(request_file: Path, allocation_id: str | None, policy: Path | None, inventory: Path | None,
             data_dir: Path | None) -> None:
    """Allocate what REQUEST.json asks (the body of POST /v1/allocations) and print the answer the
    API gives (201). All or nothing: when the replicas do not fit, nothing is kept and each site's
    reason is printed (exit 1).

    The allocation is kept in the data directory like the server's: a server using the same one
    counts it (SQLite locks make the two take turns; no stock is taken twice). The command counts
    the inventory and the allocations, not the pods of a cluster: next to a server that watches a
    cluster, use its API (POST /v1/allocations) instead.
    """
    service = allocations(policy, inventory, data_dir)
    body = read_file(request_file)
    try:
        allocated = service.create(body, allocation_id)
    except AllocationRequestError as exc:
        click.echo(f"site-extender: {request_file}: invalid allocation request:", err=True)
        for path, message in exc.problems:
            click.echo(f"  {path or '(body)'}: {message}", err=True)
        sys.exit(EXIT_INVALID)
    except AllocationRefused as exc:
        print_json(refusal_body(exc.refusal))
        fail(f"nothing allocated: {exc.refusal.message}", EXIT_NO)
    except AllocationExists as exc:
        fail(str(exc), EXIT_NO)
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_STORE)
    print_json(allocated.answer)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("allocation_id")
@data_dir_option
def release(allocation_id: str, data_dir: Path | None) -> None:
    """Release an allocation (DELETE /v1/allocations/ID): its stock is free again. Exit 1 when there
    is no allocation by that id."""
    refuse_state_in_cluster()
    store = AllocationStore(data_dir or settings().data_dir)
    try:
        released = store.delete(allocation_id)
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_STORE)
    if not released:
        fail(f"no allocation {allocation_id} in {store.path}", EXIT_NO)
    click.echo(f"released {allocation_id}")


# --- stock -------------------------------------------------------------------------------------------


def stock_table(sites: list[dict[str, Any]]) -> list[str]:
    """One row per site and flavor; the site's own columns on its first row only."""
    headers = ["SITE", "STATUS", "REGION/ZONE", "FLAVOR", "TOTAL", "PLACED", "LEFT", "EIP LEFT", "VMS"]
    rows = []
    for site in sites:
        eip = site["eip"]
        first = [site["id"], site["status"], f"{site['region']}/{site['availability_zone']}"]
        own = [str(eip["left"]) if eip else "-", str(site["placed"]["vms"])]
        for i, flavor in enumerate(site["flavors"] or [{"flavor": "-", "total": "-", "placed": "-", "left": "-"}]):
            counts = [str(flavor["total"]), str(flavor["placed"]), str(flavor["left"])]
            rows.append([*(first if i == 0 else ["", "", ""]), flavor["flavor"], *counts, *(own if i == 0 else ["", ""])])
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    numeric = {4, 5, 6, 7, 8}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def placements_table(site: dict[str, Any]) -> list[str]:
    placed = site.get("placements") or []
    if not placed:
        return ["nothing placed"]
    rows = [["KIND", "NAME", "FLAVOR", "EIP", "STORAGE"]]
    for p in placed:
        storage = ", ".join(f"{t} {gb} GB" for t, gb in p["storage"].items()) or "-"
        rows.append([p["kind"], p["name"] or p["key"], p["flavor"], "yes" if p["need_eip"] else "no", storage])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[4]]).rstrip() for r in rows]


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("site_id", required=False, metavar="[SITE]")
@server_option
@output_option
@policy_options
@data_dir_option
def stock(site_id: str | None, server: str | None, output: str, policy: Path | None, inventory: Path | None,
          data_dir: Path | None) -> None:
    """Show what each site has left: per flavor the stock (TOTAL), what is placed on the hosts serving
    it (PLACED) and what is LEFT, as the Flavor predicate counts it; the EIP pool's left; the VMs placed.
    With SITE: that site, its volume pools and everything placed there (GET /v1/sites/SITE).

    Without --server nothing counts as placed but the inventory and the allocations in the data
    directory. Exit 1 when SITE is not in the inventory.
    """
    from extender.protocol import sites

    path = "/v1/sites" + (f"/{site_id}" if site_id else "")
    if server:
        status, answer = remote_json(server, path)
        if status == 404:
            fail(answer.get("error", f"no site {site_id}"), EXIT_NO)
        if status != 200:
            fail(f"{server}{path} answered {status}: {answer.get('error', answer)}")
    else:
        service = allocations(policy, inventory, data_dir).extender
        found = sites.site_answer(service, site_id) if site_id else sites.sites_answer(service)
        if found is None:
            fail(f"no site {site_id!r} in the inventory", EXIT_NO)
        answer = sites.as_builtins(found)
    if site_id:
        emit(answer, output, lambda: [*stock_table([answer]), "", *placements_table(answer)])
    else:
        emit(answer, output, lambda: stock_table(answer["sites"]))


# --- resources ---------------------------------------------------------------------------------------


def vm_request_of(document: Any, policy: Policy, path: Path) -> Any:
    """The VM request in `document`: a Pod's, a pod template's (Deployment, Job, ...), or the document
    itself when it is a VM request (no `kind`)."""
    from extender.domain.vmrequest import parse_vm_request
    from extender.engine.decide import read_request
    from extender.errors import VMRequestError
    from extender.protocol.wire import Pod

    inventory = policy.inventory
    try:
        if not isinstance(document, dict) or "kind" not in document:
            return parse_vm_request(document, inventory.flavor_ids(), inventory.volume_types.keys() or None)
        pod = document if document["kind"] == "Pod" else (document.get("spec") or {}).get("template")
        if not isinstance(pod, dict):
            fail(f"{path}: a {document['kind']} without spec.template: give a Pod, an object with a pod "
                 "template, or a VM request")
        request = read_request(policy, msgspec.convert({"metadata": {}, "spec": {}, **pod}, Pod, strict=False))
    except (VMRequestError, msgspec.ValidationError) as exc:
        fail(f"{path}: {exc}")
    if request is None:
        fail(f"{path}: not a VM pod: no {policy.options.vm_annotation} annotation and no spec.virtualMachine")
    return request


@main.command("resources", epilog=EXIT_CODES_HELP)
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False), metavar="[FILE]")
@click.option("--site", "site_id", metavar="SITE", help="Only this site's node (without FILE).")
@policy_options
def resources_command(file: Path | None, site_id: str | None, policy: Path | None, inventory: Path | None) -> None:
    """The extended resources kube-scheduler counts, so that it sees a site fill up and can preempt
    (docs/preemption.md), as YAML.

    With FILE (a VM Pod manifest, an object with a pod template such as a Deployment, or a VM request
    itself; JSON or YAML): the `resources` its VM container requests and limits. Without FILE: what each
    site's node advertises as capacity and allocatable (--site: one site; exit 1 when not in the inventory).
    """
    from extender.domain.site_resources import container_resources, node_resources, vm_requests

    loaded = policy_store(*load(policy, inventory)).current()
    if file is not None:
        request = vm_request_of(read_document(file), loaded, file)
        answer: dict[str, Any] = {"resources": container_resources(vm_requests(request, loaded.inventory))}
    else:
        sites = loaded.inventory.sites
        if site_id is not None and site_id not in sites:
            fail(f"no site {site_id!r} in the inventory", EXIT_NO)
        chosen = [sites[site_id]] if site_id else list(sites.values())
        answer = {site.id: {name: str(value) for name, value in node_resources(site).items()} for site in chosen}
    click.echo(yaml.safe_dump(answer, sort_keys=False), nl=False)


# --- import ------------------------------------------------------------------------------------------


@main.command("import", epilog=EXIT_CODES_HELP)
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), metavar="DIR")
@click.option("--dry-run", is_flag=True, help="Have the API server check every write and store nothing.")
@click.option("--prune", is_flag=True,
              help="Also delete the Sites and Regions an earlier import made that DIR no longer names "
                   "(never a Site that still holds VM pods or allocations).")
@click.option("--field-manager", "manager", default="site-extender-import", show_default=True,
              help="The server-side apply field manager: one of its own per inventory keeps --prune to it.")
def import_command(directory: Path, dry_run: bool, prune: bool, manager: str) -> None:
    """Load an inventory directory (the global scheduler's conf/ shape: sites.json, site_nodes.json,
    flavors.json, eip_pools.json, volume_pools.json, volume_types.json, region.yaml) into the cluster
    as Site and Region objects (site-extender.io), by server-side apply. Importing the same directory
    again changes nothing; objects it does not name are left alone unless --prune. The cluster is the
    one SITE_EXTENDER_KUBE selects (KUBECONFIG on a laptop). Exit 2 when a site to prune still holds
    VMs, 3 when the cluster cannot be reached or refuses a write."""
    from kubernetes.client import CoreV1Api, CustomObjectsApi

    from extender.errors import ClusterError
    from extender.kube import config as kube_config
    from extender.cli.importer import import_inventory

    try:
        inventory = load_inventory(directory)
    except ConfigError as exc:
        fail(f"the inventory does not load:\n{exc}")
    try:
        config = settings()
        target = kube_config.choose(config.kube, os.environ, config.kubeconfig, config.master)
        if target.mode == kube_config.NONE:
            fail("no cluster to import into: set KUBECONFIG (or SITE_EXTENDER_KUBE)", EXIT_STORE)
        with kube_config.api_client(target) as api:
            applied = import_inventory(CustomObjectsApi(api), inventory, dry_run=dry_run, prune=prune,
                                       core=CoreV1Api(api), manager=manager)
    except ConfigError as exc:
        fail(str(exc))
    except ClusterError as exc:
        fail(f"import stopped: {exc}", EXIT_STORE)
    suffix = " (server dry run)" if dry_run else ""
    for item in applied:
        click.echo(f"{item}{suffix}")


if __name__ == "__main__":
    main()
