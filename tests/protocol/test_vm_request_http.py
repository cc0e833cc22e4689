"""The VM request under gunicorn: typos, a missing request and the Arktos shape never let a VM through
where it must not go (the sample inventory: site4 Sellout, site9 Offline, site5's EIP pool empty)."""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import load_fixture
from tests.protocol.test_placement_http import ALWAYS, SITES, filter_
from tests.server import Served

pytestmark = pytest.mark.process

DEMOVM = "scheduler/cache-mode/filter-0001.json"
PREFIX = "invalid VM request (annotation site-extender.io/vm): "


def vm_pod(annotations: dict[str, str] | None = None, virtual_machine: dict | None = None,
           requests_resource: bool = True) -> dict:
    """The recorded demovm pod with its annotations replaced; requesting site-extender.io/vm as
    deploy/examples/vm-pod.yaml does."""
    pod = copy.deepcopy(load_fixture(DEMOVM)["Pod"])
    pod["metadata"]["annotations"] = annotations or {}
    if virtual_machine is not None:
        pod["spec"]["virtualMachine"] = virtual_machine
    if requests_resource:
        pod["spec"]["containers"][0]["resources"] = {"requests": {"site-extender.io/vm": "1"},
                                                     "limits": {"site-extender.io/vm": "1"}}
    return pod


def everywhere(answer: dict, reason: str) -> None:
    assert answer["NodeNames"] == []
    assert answer["FailedNodes"] == {}
    assert answer["FailedAndUnresolvableNodes"] == dict.fromkeys(SITES, reason)


def test_a_misspelled_field_fails_every_site_naming_the_right_one(server: Served) -> None:
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "needEip": True,
          "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]}}}

    answer = filter_(server, {"Pod": vm_pod({"site-extender.io/vm": json.dumps(vm)}), "NodeNames": SITES})

    # before: needEip was dropped and site5, whose EIP pool is empty, passed
    everywhere(answer, PREFIX + "unknown field needEip (did you mean needEIP?) - at `$`")


def test_a_misspelled_extension_field_names_it(server: Served) -> None:
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "domainId": "domain-finance"}

    answer = filter_(server, {"Pod": vm_pod({"site-extender.io/vm": json.dumps(vm)}), "NodeNames": SITES})

    everywhere(answer, PREFIX + "unknown field domainId (did you mean domain_id?) - at `$`")


def test_a_misspelled_annotation_key_is_not_a_plain_pod(server: Served) -> None:
    vm = {"flavors": [{"flavorID": "c6.large.2"}]}

    answer = filter_(server, {"Pod": vm_pod({"site-extender.io/vms": json.dumps(vm)}), "NodeNames": SITES})

    # before: a "plain pod", which passed every site, the Sellout site4 and the Offline site9 included
    everywhere(answer, "invalid VM request (spec.virtualMachine): the pod requests the resource site-extender.io/vm"
                       " but carries no VM request: set the annotation site-extender.io/vm (or spec.virtualMachine);"
                       " the pod has the annotation site-extender.io/vms: a typo?")


def test_a_pod_without_the_resource_or_a_request_stays_a_plain_pod(server: Served) -> None:
    answer = filter_(server, {"Pod": vm_pod(requests_resource=False), "NodeNames": SITES})

    assert answer["NodeNames"] == SITES


ARKTOS = {
    "name": "vm001", "image": "cirros", "keyPairName": "foobar", "needEIP": False,
    "flavors": [{"flavorID": "c6.large.2", "spot": {"maxPrice": 0.5, "spotDurationHours": 2}}],
    "resourceCommonInfo": {"count": 1, "selector": {
        "regions": [{"region": "region1", "availablityZone": ["az2"]}],
        "geoLocation": {"country": "china"},
        "strategy": {"localStrategy": "discrete"}}},
}


def test_the_arktos_shape_keeps_zone_location_and_strategy(server: Served) -> None:
    args = {"Pod": vm_pod(virtual_machine=ARKTOS), "NodeNames": ["site1", "site2", "site5"]}

    answer = filter_(server, args)

    # before: availablityZone was dropped, and site1 (az1) and site5 (az6) passed
    assert answer["NodeNames"] == ["site2"]
    assert answer["FailedAndUnresolvableNodes"] == {
        "site1": "RegionAndAZ: site site1 is in region1/az1, the request wants zones az2 of region1",
        "site5": "RegionAndAZ: site site5 is in region1/az6, the request wants zones az2 of region1",
    }


def test_the_arktos_location_is_enforced(server: Served) -> None:
    vm = copy.deepcopy(ARKTOS)
    vm["resourceCommonInfo"]["selector"] = {"geoLocation": {"city": "shanghai"}}

    answer = filter_(server, {"Pod": vm_pod(virtual_machine=vm), "NodeNames": ["site1", "site3"]})

    assert answer["NodeNames"] == ["site3"]
    assert answer["FailedAndUnresolvableNodes"] == {
        "site1": "LocationAndOperator: site site1 is in city shenzhen, the request wants shanghai"}


def test_the_arktos_strategy_is_scored(server: Served) -> None:
    """discrete spreads: the emptier site1 ranks first (centralize would put site2 first)."""
    for strategy, best in (("discrete", "site1"), ("centralize", "site2")):
        vm = copy.deepcopy(ARKTOS)
        vm["resourceCommonInfo"]["selector"] = {"strategy": {"localStrategy": strategy}}
        args = {"Pod": vm_pod(virtual_machine=vm), "NodeNames": ["site1", "site2"]}

        scores = json.loads(server.post("/prioritize", json.dumps(args)).data)

        assert max(scores, key=lambda e: e["Score"])["Host"] == best, (strategy, scores)


def test_a_misspelled_arktos_field_names_it(server: Served) -> None:
    vm = copy.deepcopy(ARKTOS)
    vm["resourceCommonInfo"]["selector"]["regions"][0] = {"region": "region1", "availabilityZones": ["az2"]}

    answer = filter_(server, {"Pod": vm_pod(virtual_machine=vm), "NodeNames": SITES})

    everywhere(answer, "invalid VM request (spec.virtualMachine): unknown field availabilityZones"
                       " (did you mean availablityZone?) - at `$.resourceCommonInfo.selector.regions[0]`")


__all__ = ["ALWAYS"]
