"""The allocation service: validate, plan over the engine and the inventory, keep in the store.

Knows the store, the extender's policy and placement sources, and the allocator; not HTTP. The
route and the `allocate` command both call it, so they answer alike.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from extender.allocation import planner
from extender.allocation.request import AllocationRequest, AllocationRequestError, parse_allocation_request
from extender.allocation.store import AllocationStore, StoredAllocation, StoreUnavailable
from extender.engine.snapshot import Snapshot
from extender.errors import ExtenderError
from extender.protocol.service import Extender

GROUP_PREFIX = "allocation/"
STACK_AFFINITY = "StackAffinity"
ADMISSION_ATTEMPTS = 8
"""Admissions lost to other replicas' (a store in a cluster) before the API answers 503."""


ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AdmissionConflict(ExtenderError):
    """Another replica admitted between this admission's check and its write: nothing was kept, plan again."""


class AllocationExists(ExtenderError):
    """An allocation with the id asked for exists already (a retried PUT): nothing new was allocated."""

    def __init__(self, allocation_id: str) -> None:
        self.allocation_id = allocation_id
        super().__init__(f"allocation {allocation_id} exists; nothing new was allocated")


class AllocationRefused(ExtenderError):
    """The replicas cannot all be placed: nothing was allocated."""

    def __init__(self, refusal: planner.Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.message)


@dataclass(frozen=True, slots=True)
class Allocated:
    id: str
    answer: dict[str, Any]


def answer(allocation_id: str, request: AllocationRequest, plan: planner.Plan) -> dict[str, Any]:
    """The original API's answer: one resource group entry per replica."""
    groups = []
    for option, count in plan.shares:
        site = option.site
        entry = {
            "name": request.group_name,
            "resources": [
                {"name": r.name, "flavor_id": f.id, "count": r.count}
                for r, f in zip(request.resources, option.flavors)
            ],
            # node_id as the original answered; site_id and cluster_name as its later versions do.
            "selected": {"node_id": site.id, "region": site.region, "availability_zone": site.az,
                         "site_id": site.id, "cluster_name": site.name},
        }
        groups += [entry] * count
    return {"allocation": {"id": allocation_id, "resource_groups": groups}}


def refusal_body(refusal: planner.Refusal) -> dict[str, Any]:
    return {"error": f"nothing allocated: {refusal.message}", "reasons": dict(refusal.reasons)}


class Allocations:
    """Allocate, show and release allocations over the extender's view of stock."""

    def __init__(self, extender: Extender, store: AllocationStore) -> None:
        self.extender = extender
        self.store = store

    def parse(self, body: bytes | Mapping[str, Any]) -> AllocationRequest:
        policy = self.extender.policies.current()
        inventory = policy.inventory
        request = parse_allocation_request(body, inventory.flavor_ids(), inventory.volume_types.keys() or None)
        if request.stack_affinity or request.stack_antiaffinity:
            # Selectors only a priority reads: without it they would be accepted and do nothing.
            if not any(p.plugin.name == STACK_AFFINITY for p in policy.priorities):
                fields = [f"allocation.selector.{name}" for name in ("stack_affinity", "stack_antiaffinity")
                          if getattr(request, name)]
                raise AllocationRequestError([(f, f"the policy ({policy.path}) has no {STACK_AFFINITY} priority to"
                                                  " weigh it; add it to the policy's priorities or leave this out")
                                              for f in fields])
        return request

    def create(self, body: bytes | Mapping[str, Any], allocation_id: str | None = None) -> Allocated:
        """Allocate every replica or nothing, under `allocation_id` (else the body's `allocation.id`,
        else a new uuid). Raises
        `AllocationRequestError` (invalid), `AllocationExists` (the id is taken: a retry never
        allocates twice), `AllocationRefused` (does not fit), `StoreUnavailable` (no writable store)."""
        if allocation_id is not None and not ID_PATTERN.fullmatch(allocation_id):
            raise AllocationRequestError([("id", f"{allocation_id!r} is not an allocation id: 1 to 64 letters, digits,"
                                                  " '.', '_' or '-', starting with a letter or digit")])
        request = self.parse(body)
        if allocation_id is not None and request.allocation_id and request.allocation_id != allocation_id:
            raise AllocationRequestError([("allocation.id", f"{request.allocation_id!r} differs from the id in the"
                                                            f" path {allocation_id!r}; give one of them")])
        # As the original: the body's id when it names one (checked as a uuid), else a new uuid.
        allocation_id = allocation_id or request.allocation_id or str(uuid.uuid4())
        for _ in range(ADMISSION_ATTEMPTS - 1):
            try:
                return self._admit(request, allocation_id)
            except AdmissionConflict:  # another replica admitted meanwhile: plan again with it counted
                continue
        try:
            return self._admit(request, allocation_id)
        except AdmissionConflict as exc:
            raise StoreUnavailable(f"allocation store busy: {ADMISSION_ATTEMPTS} admissions in a row lost to other "
                                   f"replicas ({exc}); try again") from exc

    def _admit(self, request: AllocationRequest, allocation_id: str) -> Allocated:
        group = GROUP_PREFIX + allocation_id
        # The extender's admission lock (held by /bind between its check and its reservation) and
        # the store's write transaction: neither a bind nor another allocation can take the same
        # stock between this check and the insert below.
        with self.extender.admission, self.store.transaction() as txn:
            if txn.exists(allocation_id):
                raise AllocationExists(allocation_id)
            policy, current = self.extender.view()
            others = self.extender.placements_except(self.store)
            # Once per key: a bind the store holds in flight may be a pod the cluster view shows too.
            taken = {p.key for p in others}
            held = [p for p in txn.placements() if p.key not in taken]
            snapshot = Snapshot.build(policy.inventory, (*others, *held), previous=current)
            plan = planner.plan(policy, snapshot, request, group)
            if isinstance(plan, planner.Refusal):
                raise AllocationRefused(plan)
            result = answer(allocation_id, request, plan)
            txn.insert(allocation_id, result, planner.placements(plan, request, allocation_id, group))
        return Allocated(allocation_id, result)

    def get(self, allocation_id: str) -> StoredAllocation | None:
        return self.store.get(allocation_id)

    def delete(self, allocation_id: str) -> bool:
        return self.store.delete(allocation_id)
