"""`site-extender import`: put an inventory directory into the cluster as Site and Region objects.

Server-side apply under one field manager, forced: the directory is the authority for every field it
sets, so applying it again changes nothing (the objects keep their resourceVersion) and a field the
directory no longer sets is removed from the object. The spec and the status subresource are applied
separately (the API server ignores status in a write of the object itself). Objects the directory does
not name are left alone, unless `prune` is asked: then the Sites and Regions an earlier import under
the same field manager made and the directory no longer names are deleted, as `kubectl apply --prune`
does (a field manager of its own per inventory keeps several inventories apart).
A Site still holding VM pods or allocations is never pruned: the import stops before any write and
names them (the extender would keep its Node's pods placed on a site it no longer knows). A Region a
Site left in the cluster is still in is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CoreV1Api, CustomObjectsApi

from extender.domain.model import SITE_LABEL, Inventory
from extender.errors import ConfigError
from extender.kube.api import api_errors
from extender.kube.resources import (
    ALLOCATIONS,
    GROUP,
    REGIONS,
    SITES,
    VERSION,
    RegionObject,
    SiteObject,
    inventory_objects,
    manifest,
)

FIELD_MANAGER = "site-extender-import"
APPLY = "application/apply-patch+yaml"
TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Applied:
    kind: str
    """The plural: sites or regions."""
    name: str
    outcome: str
    """created, configured, unchanged, pruned, or kept (with why)."""

    def __str__(self) -> str:
        return f"{self.kind[:-1]}.{GROUP}/{self.name} {self.outcome}"


def import_inventory(custom: CustomObjectsApi, inventory: Inventory, *, dry_run: bool = False,
                     prune: bool = False, core: CoreV1Api | None = None, manager: str = FIELD_MANAGER) -> list[Applied]:
    """Apply every object of `inventory` (regions first, then sites); with `prune`, then delete what an
    earlier import made and `inventory` no longer names (`core` reads the pods that keep a site). With
    `dry_run` the API server validates each write and stores nothing. Raises `ApiError` at the first
    refused write, `ConfigError` (before any write) when a site to prune still holds VMs."""
    existing = {plural: _existing(custom, plural) for plural in (REGIONS, SITES)}
    objects = inventory_objects(inventory)
    named = {SITES: {o.metadata.name for o in objects if isinstance(o, SiteObject)},
             REGIONS: {o.metadata.name for o in objects if isinstance(o, RegionObject)}}
    stale = {plural: sorted(name for name, item in existing[plural].items()
                            if name not in named[plural] and _imported(item, manager)) for plural in (SITES, REGIONS)}
    if prune and stale[SITES]:
        if core is None:
            raise ValueError("pruning sites needs the core API, to see the pods that keep them")
        _refuse_sites_in_use(custom, core, [existing[SITES][name]["spec"]["id"] for name in stale[SITES]])
    done = []
    for obj in objects:
        plural = SITES if isinstance(obj, SiteObject) else REGIONS
        before = existing[plural].get(obj.metadata.name)
        after = _apply(custom, plural, obj, dry_run, exists=before is not None, manager=manager)
        if before is None:
            outcome = "created"
        elif {k: before.get(k) for k in ("spec", "status")} == {k: after.get(k) for k in ("spec", "status")}:
            outcome = "unchanged"
        else:
            outcome = "configured"
        done.append(Applied(plural, obj.metadata.name, outcome))
    if prune:
        done += _prune(custom, existing, stale, dry_run)
    return done


def _imported(item: dict[str, Any], manager: str) -> bool:
    """Made by an import under `manager`: that field manager holds some of its fields."""
    return any(entry.get("manager") == manager for entry in item["metadata"].get("managedFields") or ())


def _refuse_sites_in_use(custom: CustomObjectsApi, core: CoreV1Api, sites: list[str]) -> None:
    """`ConfigError` naming every VM pod (not finished) and allocation still on one of `sites` (ids)."""
    in_use: dict[str, list[str]] = {}
    with api_errors():
        for site in sites:
            pods = core.list_pod_for_all_namespaces(label_selector=f"{SITE_LABEL}={site}", _request_timeout=TIMEOUT_S)
            in_use[site] = [f"pod {p.metadata.namespace}/{p.metadata.name}" for p in pods.items
                            if (p.status.phase if p.status else None) not in ("Succeeded", "Failed")]
        allocations = custom.list_cluster_custom_object(GROUP, VERSION, ALLOCATIONS, _request_timeout=TIMEOUT_S)
    for item in allocations.get("items", []):
        for placement in item.get("spec", {}).get("placements") or ():
            if placement.get("site") in in_use:
                in_use[placement["site"]].append(f"allocation {item['metadata']['namespace']}/{item['spec']['id']}")
    problems = [f"site {site} is not in the directory but still holds {', '.join(sorted(set(held)))}: not pruned"
                for site, held in in_use.items() if held]
    if problems:
        raise ConfigError([*problems, "release or move them first, or import without --prune; nothing was written"])


def _prune(custom: CustomObjectsApi, existing: dict[str, dict[str, dict[str, Any]]],
           stale: dict[str, list[str]], dry_run: bool) -> list[Applied]:
    """Delete the stale Sites, then the stale Regions no Site left in the cluster is in."""
    options: dict[str, Any] = {"_request_timeout": TIMEOUT_S, **({"dry_run": "All"} if dry_run else {})}
    done = []
    with api_errors():
        for name in stale[SITES]:
            custom.delete_cluster_custom_object(GROUP, VERSION, SITES, name, **options)
            done.append(Applied(SITES, name, "pruned"))
        remaining = {name: item for name, item in existing[SITES].items() if name not in stale[SITES]}
        for name in stale[REGIONS]:
            region = existing[REGIONS][name]["spec"]["region"]
            users = sorted(s for s, item in remaining.items() if item.get("spec", {}).get("region") == region)
            if users:
                done.append(Applied(REGIONS, name, f"kept: site {', '.join(users)} is still in it"))
                continue
            custom.delete_cluster_custom_object(GROUP, VERSION, REGIONS, name, **options)
            done.append(Applied(REGIONS, name, "pruned"))
    return done


def _json(response: Any) -> dict[str, Any]:
    """The body of an answer read raw (the generated client does not decode apply answers)."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def _existing(custom: CustomObjectsApi, plural: str) -> dict[str, dict[str, Any]]:
    with api_errors():
        listed = custom.list_cluster_custom_object(GROUP, VERSION, plural, _request_timeout=TIMEOUT_S)
    return {item["metadata"]["name"]: item for item in listed.get("items", [])}


def _apply(custom: CustomObjectsApi, plural: str, obj: SiteObject | RegionObject, dry_run: bool,
           exists: bool, manager: str) -> dict[str, Any]:
    """Apply the spec, then the status; the object as it is (would be) after both. A dry run of a new
    object applies its spec only: its status subresource does not exist until the object does."""
    options: dict[str, Any] = {"field_manager": manager, "force": True, "_content_type": APPLY,
                               "_request_timeout": TIMEOUT_S, "_preload_content": False}
    if dry_run:
        options["dry_run"] = "All"
    name = obj.metadata.name
    with api_errors():
        applied = _json(custom.patch_cluster_custom_object(GROUP, VERSION, plural, name, manifest(obj, "spec"),
                                                           **options))
        if dry_run and not exists:
            return {**applied, "status": manifest(obj, "status")["status"]}
        status = _json(custom.patch_cluster_custom_object_status(GROUP, VERSION, plural, name,
                                                                 manifest(obj, "status"), **options))
    return {**applied, "status": status.get("status")}
