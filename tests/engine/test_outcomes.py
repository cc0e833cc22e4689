"""How the engine makes reasons out of a check's `Fail`s: one text per value of `by`, joined to each
site's id; a text without a site id as it is; a field that holds the cut marker formatted site by site."""

from __future__ import annotations

import numpy as np

from extender.engine.framework import Fail, Joined, Status
from extender.engine.outcomes import MARK, first_failures, reasons, status_at
from extender.engine.places import every_site
from tests.builders import make_inventory, make_site, make_snapshot

SITES = [make_site("s1", region="r1"), make_site("s2", region="r2"), make_site("s3", region="r1")]


def test_reasons_per_value_of_by_and_marker_in_a_field() -> None:
    at = every_site(make_snapshot(make_inventory(sites=SITES)))
    everywhere = np.array([0, 1, 2], dtype=np.intp)
    by_region = Fail(True, "{site} is in {region}", by=at.region, fields=lambda region: {"region": region})
    assert reasons(by_region, at, everywhere).tolist() == ["s1 is in r1", "s2 is in r2", "s3 is in r1"]
    no_site = Fail(True, "nothing in {region}", by=at.region, fields=lambda region: {"region": region})
    assert reasons(no_site, at, everywhere).tolist() == ["nothing in r1", "nothing in r2", "nothing in r1"]
    marked = Fail(True, "{site}: {odd}", by=at.region, fields=lambda region: {"odd": region + MARK})
    assert reasons(marked, at, everywhere).tolist() == [f"s1: r1{MARK}", f"s2: r2{MARK}", f"s3: r1{MARK}"]


def test_first_failure_decides_and_joined_parts_list_what_holds() -> None:
    at = every_site(make_snapshot(make_inventory(sites=SITES)))
    outcomes = (
        Fail(np.array([False, True, False]), "{site} first", unresolvable=False),
        Joined([Fail(np.array([True, True, False]), "{site} a"), Fail(np.array([True, False, False]), "{site} b",
                                                                       unresolvable=False)]),
    )
    assert first_failures(outcomes, 3).tolist() == [1, 0, -1]
    assert [status_at(outcomes, at, place) for place in range(3)] == [
        Status("s1 a; s1 b", True), Status("s2 first", False), None]
