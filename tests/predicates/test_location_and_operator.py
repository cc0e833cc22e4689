from __future__ import annotations

import pytest

from extender.domain.model import GeoLocation, Operator
from extender.engine.framework import Status
from extender.predicates import location_and_operator
from tests.builders import judge, make_inventory, make_request, make_site, make_snapshot


@pytest.mark.parametrize(
    ("geo", "operator", "expected"),
    [
        pytest.param(None, "", None, id="nothing-asked"),
        pytest.param(GeoLocation(country="china", province="guangdong"), "", None, id="country-and-province"),
        pytest.param(GeoLocation(city="Shenzhen"), "", None, id="case-insensitive"),
        pytest.param(GeoLocation(area="huadong"), "",
                     Status("LocationAndOperator: site s1 is in area huanan, the request wants huadong", True), id="area"),
        pytest.param(GeoLocation(country="china", city="guangzhou"), "",
                     Status("LocationAndOperator: site s1 is in city shenzhen, the request wants guangzhou", True),
                     id="city"),
        pytest.param(None, "op1", None, id="operator-id"),
        pytest.param(None, "unicom", None, id="operator-name"),
        pytest.param(None, "telecom",
                     Status("LocationAndOperator: site s1 is run by operator unicom (op1), the request wants telecom", True),
                     id="other-operator"),
    ],
)
def test_location_and_operator(geo, operator, expected) -> None:
    site = make_site(country="china", area="huanan", province="guangdong", city="shenzhen",
                     operator=Operator("op1", "unicom"))
    snapshot = make_snapshot(make_inventory(sites=[site]))

    status = judge(location_and_operator.new({}), make_request(geo=geo, operator=operator), snapshot)

    assert status == expected


def test_site_without_the_field_fails_a_request_that_names_it() -> None:
    snapshot = make_snapshot(make_inventory(sites=[make_site(province="")]))

    status = judge(location_and_operator.new({}), make_request(geo=GeoLocation(province="guangdong")), snapshot)

    assert status == Status('LocationAndOperator: site s1 is in province "", the request wants guangdong', True)
