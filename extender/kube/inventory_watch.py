"""The inventory from the cluster: the Site and Region objects (site-extender.io), watched with the
node/pod cache's discipline, turned into the `Inventory` the policy store serves.

Every change marks the inventory stale; a short timer then builds it once from all the objects known
(a collector that updates every site in a burst costs one build, not thousands) and hands it to the
policy store, which serves it from the next request on. Objects that contradict each other (two Sites
with one id) do not replace the inventory in force: the last good one keeps serving and the problem
is logged and shown under `/readyz` (`inventory_error`), as a bad policy file is. Until both kinds are
listed and one inventory is built, the extender is not ready.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kubernetes.client import CustomObjectsApi

from extender.config.policy_store import PolicyStore
from extender.errors import InventoryError
from extender.kube.cache import KubeCache
from extender.kube.resources import GROUP, REGIONS, SITES, VERSION, RegionObject, SiteObject, inventory_from_objects

log = logging.getLogger(__name__)

COALESCE_S = 0.05
"""How long a change waits for the ones right behind it before the inventory is built."""


class ClusterInventory:
    def __init__(self, custom: CustomObjectsApi, policies: PolicyStore, *, coalesce: float = COALESCE_S) -> None:
        self.custom = custom
        self.policies = policies
        self.coalesce = coalesce
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Any]] = {SITES: {}, REGIONS: {}}
        self._listed: set[str] = set()
        self._timer: threading.Timer | None = None
        self.published = threading.Event()
        """Set once an inventory from the cluster is in force."""
        self.last_error: str | None = None

    def attach(self, cache: KubeCache) -> ClusterInventory:
        """Watch Sites and Regions beside the cache's nodes and pods; the cache is synced only when an
        inventory from them is in force."""
        cache.watch(SITES, self._list_sites, SiteObject, lambda items: self._replace(SITES, items),
                    lambda kind, obj: self._apply(SITES, kind, obj))
        cache.watch(REGIONS, self._list_regions, RegionObject, lambda items: self._replace(REGIONS, items),
                    lambda kind, obj: self._apply(REGIONS, kind, obj))
        cache.require(self.published.is_set, lambda: {"inventory_error": self.last_error,
                                                      "sites": len(self._objects[SITES]),
                                                      "regions": len(self._objects[REGIONS])})
        return self

    def _list_sites(self, watch: bool | None, **kwargs: Any) -> Any:
        return self.custom.list_cluster_custom_object(GROUP, VERSION, SITES, watch=watch, **kwargs)

    def _list_regions(self, watch: bool | None, **kwargs: Any) -> Any:
        return self.custom.list_cluster_custom_object(GROUP, VERSION, REGIONS, watch=watch, **kwargs)

    # --- what the reflectors call --------------------------------------------------------------------

    def _replace(self, kind: str, items: list[Any]) -> None:
        with self._lock:
            self._objects[kind] = {o.metadata.name: o for o in items}
            self._listed.add(kind)
        self._changed()

    def _apply(self, kind: str, event: str, obj: Any) -> None:
        with self._lock:
            objects = self._objects[kind]
            if event == "DELETED":
                if objects.pop(obj.metadata.name, None) is None:
                    return
            else:
                objects[obj.metadata.name] = obj
        self._changed()

    def _changed(self) -> None:
        with self._lock:
            if self._timer is not None or len(self._listed) < 2:
                return
            self._timer = threading.Timer(self.coalesce, self.publish)
            self._timer.daemon = True
            self._timer.start()

    def publish(self) -> bool:
        """Build the inventory from the objects known now and put it in force; False (the last good
        one stays) when they contradict each other."""
        with self._lock:
            self._timer = None
            sites, regions = list(self._objects[SITES].values()), list(self._objects[REGIONS].values())
        try:
            inventory = inventory_from_objects(sites, regions)
        except InventoryError as exc:
            self.last_error = str(exc)
            log.error("inventory from the cluster not used, the last good one keeps serving: %s", exc,
                      extra={"problems": exc.problems})
            return False
        self.last_error = None
        self.policies.use_inventory(inventory, source="cluster")
        self.published.set()
        return True
