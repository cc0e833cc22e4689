from __future__ import annotations

import pytest

from extender.engine.framework import Status
from extender.predicates import site_availability
from tests.builders import judge, make_inventory, make_request, make_site, make_snapshot


@pytest.mark.parametrize(
    ("status", "site_id", "expected"),
    [
        pytest.param("active", "", None, id="active"),
        pytest.param("Active", "s1", None, id="asked-by-id"),
        pytest.param("Offline", "", Status("SiteAvailability: site s1 is Offline", True), id="offline"),
        pytest.param("sellout", "", Status("SiteAvailability: site s1 is sellout", True), id="sellout"),
        pytest.param("maintenance", "", None, id="other-status-is-available"),
        pytest.param("active", "s2", Status("SiteAvailability: the request asks for site s2, this is site s1", True),
                     id="other-site-asked"),
    ],
)
def test_site_availability(status: str, site_id: str, expected: Status | None) -> None:
    snapshot = make_snapshot(make_inventory(sites=[make_site(status=status)]))

    assert judge(site_availability.new({}), make_request(site_id=site_id), snapshot) == expected
