"""An allocation and a /bind never both take the last stock: both admit under the extender's lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import MappingProxyType

from extender.allocation.service import AllocationRefused, Allocations
from extender.allocation.store import AllocationStore
from extender.config.policy_store import PolicyStore
from extender.domain.model import Placement
from extender.kube.reservations import Reservations
from extender.kube.view import StaticCluster
from extender.protocol.service import Extender
from tests.allocation.test_allocations_http import on_site
from tests.conftest import POLICY_DIR

# site2 holds exactly 2 VMs of the sample request (its thick SAS pool has 100 GB left: 2 x 40 GB).
RESERVED_ON_SITE2 = Placement(key="pod-uid-1", site_id="site2", flavor_id="c6.large.2", vcpus=2, ram=4096,
                              storage=MappingProxyType({"SAS": 40}))


def test_allocation_waits_for_a_bind_admitting_and_then_sees_its_reservation(tmp_path: Path) -> None:
    store = AllocationStore(tmp_path / "data")
    reservations = Reservations()
    extender = Extender(PolicyStore(POLICY_DIR), StaticCluster(), sources=(store, reservations))
    allocations = Allocations(extender, store)
    outcome: list[object] = []

    def allocate() -> None:
        try:
            outcome.append(allocations.create(on_site("site2", replicas=2)))
        except AllocationRefused as exc:
            outcome.append(exc)

    with extender.admission:  # a bind between its check and its reservation
        worker = threading.Thread(target=allocate)
        worker.start()
        time.sleep(0.3)
        assert outcome == [], "the allocation decided while a bind held the admission lock"
        reservations.reserve(RESERVED_ON_SITE2)
    worker.join(timeout=10)

    assert len(outcome) == 1
    assert isinstance(outcome[0], AllocationRefused)
    assert store.list() == []


def test_allocation_fits_when_no_bind_took_the_stock(tmp_path: Path) -> None:
    store = AllocationStore(tmp_path / "data")
    extender = Extender(PolicyStore(POLICY_DIR), StaticCluster(), sources=(store, Reservations()))

    allocated = Allocations(extender, store).create(on_site("site2", replicas=2))

    sites = {g["selected"]["node_id"] for g in allocated.answer["allocation"]["resource_groups"]}
    assert sites == {"site2"}
