"""Flask application factory: builds the extender service from settings and registers the routes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from extender.allocations import Allocations
from extender.cluster import ClusterView, StaticCluster
from extender.policy_store import PolicyStore
from extender.service import Extender
from extender.settings import Settings
from extender.store import AllocationStore, writable_problem_if_used

log = logging.getLogger(__name__)

EXTENSION_KEY = "site_extender"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` may set `SETTINGS` (a `Settings`), `CLUSTER` (a `ClusterView`)
    and any Flask option; nothing is created at import time."""
    app = Flask(__name__)
    app.config.from_mapping(SETTINGS=None, CLUSTER=None)
    if config:
        app.config.from_mapping(config)
    settings: Settings = app.config["SETTINGS"] or Settings()
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    policies = PolicyStore(settings.policy, settings.inventory)
    cluster: ClusterView = app.config["CLUSTER"] or StaticCluster()
    if app.config["CLUSTER"] is None:
        log.warning("no cluster configured: serving from the inventory alone, nothing counts as placed")
    store = AllocationStore(settings.data_dir)
    problem = writable_problem_if_used(settings.data_dir)
    if problem:
        log.error("allocation API unavailable until fixed: %s; set SITE_EXTENDER_DATA_DIR to a writable directory",
                  problem)
    extender = Extender(policies, cluster, sources=(store,))
    app.extensions[EXTENSION_KEY] = extender

    from extender import allocation_routes, routes

    app.extensions[allocation_routes.EXTENSION_KEY] = Allocations(extender, store)
    app.register_blueprint(routes.bp)
    app.register_blueprint(allocation_routes.bp)
    routes.register_error_handlers(app)
    return app
