"""Parsing a pod's VM request: every field the predicates and priorities read, and errors with their path."""

from __future__ import annotations

import pytest

from extender.domain.model import GeoLocation, LabelSelectorRequirement, RegionSelector
from extender.domain.vmrequest import parse_vm_request
from extender.errors import VMRequestError

FULL = {
    "flavors": [{"flavorID": "c6.xlarge.4"}, {"flavorID": "c6.large.2"}],
    "needEIP": True,
    "storage": {"SAS": 40, "SSD": 100},
    "resourceCommonInfo": {
        "selector": {
            "regions": [{"region": "region1", "availability_zone": ["az1", "az2"]}, {"region": "region2"}],
            "geo_location": {"country": "china", "city": "shenzhen"},
            "operator": "unicom",
            "site_id": "site1",
        },
        "strategy": {"localStrategy": "discrete"},
    },
    "domain_id": "domain-finance",
    "stack_affinity": {"matchLabels": {"stack": "web"}},
    "stack_antiaffinity": {"matchExpressions": [{"key": "stack", "operator": "In", "values": ["db"]}]},
}


def test_every_field_is_read() -> None:
    request = parse_vm_request(FULL, {"c6.xlarge.4", "c6.large.2"}, {"SAS", "SSD"})

    assert request.flavors == ("c6.xlarge.4", "c6.large.2")
    assert request.need_eip is True
    assert dict(request.storage) == {"SAS": 40, "SSD": 100}
    assert request.regions == (RegionSelector("region1", ("az1", "az2")), RegionSelector("region2"))
    assert request.geo_location == GeoLocation(country="china", city="shenzhen")
    assert (request.operator, request.site_id, request.strategy, request.domain_id) == (
        "unicom", "site1", "discrete", "domain-finance")
    assert request.stack_affinity is not None and dict(request.stack_affinity.match_labels) == {"stack": "web"}
    assert request.stack_antiaffinity is not None
    assert request.stack_antiaffinity.match_expressions == (LabelSelectorRequirement("stack", "In", ("db",)),)
    assert request.group == ""  # the pod's group is the engine's to add (engine.read_request)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"flavors": [{"flavorID": "c6.large.2"}, {"flavorID": "z9"}]},
                     "unknown flavor 'z9' - at `$.flavors[1].flavorID`", id="unknown-flavor"),
        pytest.param({"storage": {"NVME": 10}}, "unknown volume type 'NVME' - at `$.storage.NVME`", id="unknown-volume-type"),
        pytest.param({"storage": {"SAS": 0}}, "Expected `int` >= 1 - at `$.storage[...]`", id="zero-gb"),
        pytest.param({"domain_id": 7}, "Expected `str`, got `int` - at `$.domain_id`", id="domain-int"),
        pytest.param({"stack_affinity": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
                     "unknown operator 'Near', expected one of In, NotIn, Exists, DoesNotExist"
                     " - at `$.stack_affinity.matchExpressions[0].operator`", id="selector-operator"),
        pytest.param({"resourceCommonInfo": {"selector": {"geo_location": {"city": 1}}}},
                     "Expected `str`, got `int` - at `$.resourceCommonInfo.selector.geo_location.city`", id="city-int"),
    ],
)
def test_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(VMRequestError) as raised:
        parse_vm_request({**FULL, **change}, {"c6.xlarge.4", "c6.large.2"}, {"SAS", "SSD"})
    assert str(raised.value) == message
