"""`GET /v1/sites` and `GET /v1/sites/{id}`: each site's status, what it has left per flavor, its EIP and
volume pools and what is placed there, from the snapshot `/filter` decides on (`extender.engine.stock`)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from flask import Blueprint, Response, jsonify

from extender.allocation.cluster_store import ClusterAllocationStore
from extender.allocation.store import AllocationStore
from extender.engine import stock
from extender.protocol.routes import extender
from extender.protocol.service import Extender

bp = Blueprint("sites", __name__, url_prefix="/v1/sites")


def owners(service: Extender) -> dict[str, stock.Owner]:
    """Who holds each placement, by key: a pod the cluster view shows bound (`namespace/name`), an
    allocation of the store (its id), else a reservation the binder holds for a pod in flight."""
    found: dict[str, stock.Owner] = {}
    _, bound = service.cluster.placements()
    pods = service.cluster.pods(p.key for p in bound)
    for uid, pod in pods.items():
        meta = pod.pod.metadata
        found[uid] = stock.Owner(stock.POD, f"{meta.namespace or 'default'}/{meta.name}")
    for source in service.sources:
        if isinstance(source, (AllocationStore, ClusterAllocationStore)):
            _, placed = source.placements()
            for placement in placed:
                # the planner keys an allocation's VMs `<allocation id>/<replica>/<resource>/<vm>` (the
                # cluster store's other placements are binds in flight, keyed by pod uid)
                if "/" in placement.key:
                    found.setdefault(placement.key, stock.Owner(stock.ALLOCATION, placement.key.split("/", 1)[0]))
    return found


def sites_answer(service: Extender) -> dict[str, object]:
    _, snapshot = service.view()
    generation = service.policies.versioned()[0]
    return {"generation": generation, "sites": stock.all_sites(snapshot, owners(service))}


def site_answer(service: Extender, site_id: str) -> stock.SiteStock | None:
    _, snapshot = service.view()
    site = snapshot.inventory.sites.get(site_id)
    if site is None:
        return None
    return stock.site_stock(snapshot, site, owners(service), detail=True)


def _json(value: object) -> Response:
    return Response(msgspec.json.encode(value), status=200, mimetype="application/json")


@bp.get("")
def index() -> Response:
    return _json(sites_answer(extender()))


@bp.get("/<site_id>")
def show(site_id: str) -> Response | tuple[Response, int]:
    found = site_answer(extender(), site_id)
    if found is None:
        known = extender().policies.current().inventory.sites
        return jsonify(error=f"no site {site_id!r} in the inventory ({len(known)} sites; GET /v1/sites lists them)"), 404
    return _json(found)


def as_builtins(value: object) -> Mapping[str, object] | object:
    """The answer as plain dicts and lists (for YAML and tables)."""
    return msgspec.to_builtins(value)
