"""`site-extender import`: put an inventory directory into the cluster as Site and Region objects.

Server-side apply under one field manager, forced: the directory is the authority for every field it
sets, so applying it again changes nothing (the objects keep their resourceVersion) and a field the
directory no longer sets is removed from the object. The spec and the status subresource are applied
separately (the API server ignores status in a write of the object itself). Objects the directory does
not name are left alone: importing adds and updates, it never deletes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CustomObjectsApi

from extender.domain.model import Inventory
from extender.kube.api import api_errors
from extender.kube.resources import (
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
    """created, configured or unchanged."""

    def __str__(self) -> str:
        return f"{self.kind[:-1]}.{GROUP}/{self.name} {self.outcome}"


def import_inventory(custom: CustomObjectsApi, inventory: Inventory, *, dry_run: bool = False) -> list[Applied]:
    """Apply every object of `inventory` (regions first, then sites); with `dry_run` the API server
    validates each write and stores nothing. Raises `ApiError` at the first refused write."""
    existing = {plural: _existing(custom, plural) for plural in (REGIONS, SITES)}
    done = []
    for obj in inventory_objects(inventory):
        plural = SITES if isinstance(obj, SiteObject) else REGIONS
        before = existing[plural].get(obj.metadata.name)
        after = _apply(custom, plural, obj, dry_run, exists=before is not None)
        if before is None:
            outcome = "created"
        elif {k: before.get(k) for k in ("spec", "status")} == {k: after.get(k) for k in ("spec", "status")}:
            outcome = "unchanged"
        else:
            outcome = "configured"
        done.append(Applied(plural, obj.metadata.name, outcome))
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
           exists: bool) -> dict[str, Any]:
    """Apply the spec, then the status; the object as it is (would be) after both. A dry run of a new
    object applies its spec only: its status subresource does not exist until the object does."""
    options: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY,
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
