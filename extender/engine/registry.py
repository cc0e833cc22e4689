"""Plugin registries: a map from policy name to a factory that validates its args and builds the plugin.

As in kube-scheduler's `framework/runtime/registry.go`: registering a name twice is an error, and one
literal per kind lists every in-tree plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from extender.engine.framework import FilterPlugin, ScorePlugin
from extender.predicates import (
    eip_availability,
    exclusive_site,
    location_and_operator,
    region_and_az,
    site_availability,
    volume,
)
from extender.predicates import flavor as flavor_predicate
from extender.priorities import flavor as flavor_priority
from extender.priorities import locality_strategy, site_resources_least_allocated, stack_affinity
from extender.priorities import volume as volume_priority

Factory = Callable[[Mapping[str, Any]], Any]


class Registry(dict[str, Factory]):
    """Plugin factories by name."""

    def register(self, name: str, factory: Factory) -> None:
        if name in self:
            raise ValueError(f"a plugin named {name!r} is already registered")
        self[name] = factory

    def unregister(self, name: str) -> None:
        if name not in self:
            raise ValueError(f"no plugin named {name!r} is registered")
        del self[name]


def predicate_registry() -> Registry:
    """Every in-tree predicate, by policy name."""
    return Registry(
        {
            site_availability.NAME: site_availability.new,
            location_and_operator.NAME: location_and_operator.new,
            region_and_az.NAME: region_and_az.new,
            flavor_predicate.NAME: flavor_predicate.new,
            volume.NAME: volume.new,
            eip_availability.NAME: eip_availability.new,
            exclusive_site.NAME: exclusive_site.new,
        }
    )


def priority_registry() -> Registry:
    """Every in-tree priority, by policy name."""
    return Registry(
        {
            flavor_priority.NAME: flavor_priority.new,
            site_resources_least_allocated.NAME: site_resources_least_allocated.new,
            locality_strategy.NAME: locality_strategy.new,
            stack_affinity.NAME: stack_affinity.new,
            volume_priority.NAME: volume_priority.new,
        }
    )


ALIASES: Mapping[str, str] = {
    # Names of the original global scheduler's edgecloud_policy.yaml.
    "NodeAvailability": "SiteAvailability",
    "regionandaz": "RegionAndAZ",
    "NodeResourcesLeastAllocated": "SiteResourcesLeastAllocated",
    "ExclusiveNode": "ExclusiveSite",
}


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


__all__ = ["ALIASES", "FilterPlugin", "Registry", "ScorePlugin", "canonical_name",
           "predicate_registry", "priority_registry"]
