"""Holds the policy in force. A reload that fails validation keeps the last good policy.

The inventory comes with the policy from its files, or, in a cluster keeping its state in custom
resources (`SITE_EXTENDER_STATE=cluster`), from the cluster: then `use_inventory` puts each new one in
force, a reload of the policy file keeps it, and no inventory file is read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from extender.config.policy import Policy, load_policy
from extender.domain.model import Inventory
from extender.errors import ConfigError

EMPTY_INVENTORY = Inventory(sites=MappingProxyType({}), flavors=MappingProxyType({}), eip_pools=MappingProxyType({}))

log = logging.getLogger(__name__)


class PolicyStore:
    """The current policy, loaded at start (errors stop the start) and reloadable."""

    def __init__(self, path: str | Path, inventory_dir: str | Path | None = None, *,
                 cluster_inventory: bool = False) -> None:
        self.path = Path(path)
        self.inventory_dir = Path(inventory_dir) if inventory_dir else None
        self.inventory_source = "cluster" if cluster_inventory else "files"
        """Where the inventory comes from: its files, or the cluster (empty until `use_inventory`)."""
        self._lock = threading.Lock()
        """Held only to read or swap the policy with its generation: never while files are read."""
        self._reload_lock = threading.Lock()
        self._policy = self._load(EMPTY_INVENTORY)
        self.generation = 1
        """Counts successful loads; keys anything derived from the policy (snapshots)."""
        self.loaded_at = time.time()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.reloads = 0
        """Reloads tried since start (successful or not)."""
        self.reload_errors = 0

    def current(self) -> Policy:
        return self._policy

    def versioned(self) -> tuple[int, Policy]:
        """(generation, policy), read together."""
        with self._lock:
            return self.generation, self._policy

    def reload(self) -> bool:
        """Load the policy again; on failure keep the one in force and remember why. True if replaced.

        The files are read and validated outside the lock, so the verbs keep answering with the policy
        in force meanwhile; only the swap takes the lock. Reloads run one at a time."""
        with self._reload_lock:
            try:
                policy = self._load(self._policy.inventory)
            except Exception as exc:  # noqa: BLE001 - whatever breaks a reload, the good policy stays
                if not isinstance(exc, ConfigError):
                    exc = ConfigError([f"{self.path}: cannot be loaded: {type(exc).__name__}: {exc}"])
                with self._lock:
                    self.reloads += 1
                    self.last_error = str(exc)
                    self.last_error_at = time.time()
                    self.reload_errors += 1
                log.error("policy reload failed, keeping the last good policy: %s", exc,
                          extra={"generation": self.generation, "problems": exc.problems})
                return False
            with self._lock:
                if self.inventory_source == "cluster":  # the cluster's newest, put in force meanwhile
                    policy = replace(policy, inventory=self._policy.inventory)
                self.reloads += 1
                self._policy = policy
                self.generation += 1
                self.loaded_at = time.time()
                self.last_error = None
                self.last_error_at = None
            log.info("policy reloaded", extra={"generation": self.generation, "sites": len(policy.inventory.sites)})
            return True

    def _load(self, inventory: Inventory) -> Policy:
        return load_policy(self.path, self.inventory_dir,
                           inventory=inventory if self.inventory_source == "cluster" else None)

    def use_inventory(self, inventory: Inventory, source: str) -> None:
        """Put an inventory from `source` (the cluster) in force with the policy as it is."""
        with self._lock:
            self._policy = replace(self._policy, inventory=inventory)
            self.generation += 1
        log.info("inventory from the %s in force", source, extra={"generation": self.generation,
                                                                   "sites": len(inventory.sites)})

    def status(self) -> dict[str, object]:
        policy = self._policy
        return {
            "path": str(policy.path),
            "inventory": str(policy.options.inventory_dir) if self.inventory_source == "files" else "cluster",
            "sites": len(policy.inventory.sites),
            "loaded_at": self.loaded_at,
            "generation": self.generation,
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "last_reload_error": self.last_error,
            "last_reload_error_at": self.last_error_at,
        }
