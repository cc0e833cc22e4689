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


@pytest.mark.parametrize(
    ("attributes", "domain", "expected"),
    [
        # The original's ExclusiveNode: the caller's domain fails where exclusive_domains lists it.
        pytest.param({}, "d1", None, id="not-exclusive"),
        pytest.param({"exclusive_domains": "d1,d2"}, "d3", None, id="unlisted-domain-passes"),
        pytest.param({"exclusive_domains": "d1,d2"}, "", None, id="no-domain-passes"),
        pytest.param({"exclusive_domains": "d2, d1"}, "d1",
                     Status("ExclusiveSite: site s1 refuses domains d1, d2, the request's domain d1 among them", True),
                     id="listed-domain-fails"),
    ],
)
def test_exclusive_site_as_the_originals_deny_list(attributes, domain, expected) -> None:
    snapshot = make_snapshot(make_inventory(sites=[make_site(attributes=attributes)]))

    assert judge(exclusive_site.new({"domains": "deny"}), make_request(domain_id=domain), snapshot) == expected


@pytest.mark.parametrize(("args", "message"), [
    ({"domains": "block"}, "domains: expected one of allow, deny, got 'block'"),
    ({"mode": "deny"}, "unknown arg mode; known: domains"),
])
def test_exclusive_site_args(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        exclusive_site.new(args)
