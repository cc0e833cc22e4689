from __future__ import annotations

import pytest

from extender.engine.framework import Status
from extender.predicates import exclusive_site
from tests.builders import judge, make_inventory, make_request, make_site, make_snapshot


@pytest.mark.parametrize(
    ("attributes", "domain", "expected"),
    [
        pytest.param({}, "", None, id="not-exclusive"),
        pytest.param({"other": "x"}, "d1", None, id="other-attribute"),
        pytest.param({"exclusive_domains": ""}, "", None, id="empty-list"),
        pytest.param({"exclusive_domains": "d1, d2"}, "d2", None, id="listed-domain"),
        pytest.param({"exclusive_domains": "d2,d1"}, "d3",
                     Status("ExclusiveSite: site s1 is exclusive to domains d1, d2, not to domain d3", True),
                     id="other-domain"),
        pytest.param({"exclusive_domains": "d1"}, "",
                     Status("ExclusiveSite: site s1 is exclusive to domains d1, the request names no domain_id", True),
                     id="no-domain"),
    ],
)
def test_exclusive_site(attributes, domain, expected) -> None:
    snapshot = make_snapshot(make_inventory(sites=[make_site(attributes=attributes)]))

    assert judge(exclusive_site.new({}), make_request(domain_id=domain), snapshot) == expected
