"""The VM request schema is strict: an unknown key anywhere makes the pod fit nowhere, with the key and
the nearest known name in the reason; the Arktos spellings fill the same fields as the annotation's."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extender import strict
from extender.app import create_app
from extender.config.settings import Settings
from extender.domain.model import GeoLocation, RegionSelector
from extender.domain.vmrequest import VirtualMachine, parse_vm_request
from extender.errors import VMRequestError
from tests.conftest import POLICY_DIR

SITES = [f"site{i}" for i in range(1, 13)]

ARKTOS = {
    "name": "vm001", "image": "cirros", "keyPairName": "k", "needEIP": True,
    "flavors": [{"flavorID": "c6.large.2", "spot": {"maxPrice": 0.5, "spotDurationHours": 2,
                                                     "spotDurationCount": 1, "interruptionPolicy": "stop"}}],
    "storage": {"SAS": 10},
    "stack_affinity": {"matchLabels": {"stack": "web"},
                       "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
    "resourceCommonInfo": {"count": 1, "selector": {
        "regions": [{"region": "region1", "availablityZone": ["az1", "az2"]}],
        "geoLocation": {"country": "china", "city": "shenzhen"}, "operator": "unicom",
        "strategy": {"localStrategy": "discrete"}}},
}
OLD_SPELLING = {
    "flavors": [{"flavorID": "c6.large.2"}], "needEIP": True, "storage": {"SAS": 10},
    "resourceCommonInfo": {"selector": {
        "regions": [{"region": "region1", "availability_zone": ["az1", "az2"]}],
        "geo_location": {"country": "china", "city": "shenzhen"}, "operator": "unicom"},
        "strategy": {"localStrategy": "discrete"}},
}


def test_arktos_and_older_spellings_read_alike() -> None:
    arktos, old = parse_vm_request(ARKTOS), parse_vm_request(OLD_SPELLING)

    assert arktos.regions == (RegionSelector("region1", ("az1", "az2")),)
    assert arktos.geo_location == GeoLocation(country="china", city="shenzhen")
    assert (arktos.strategy, arktos.operator, arktos.need_eip) == ("discrete", "unicom", True)
    for name in ("flavors", "need_eip", "storage", "regions", "geo_location", "operator", "strategy"):
        assert getattr(arktos, name) == getattr(old, name), name


@pytest.mark.parametrize(("change", "message"), [
    ({"regions": [{"region": "r", "availablityZone": ["a"], "availability_zone": ["b"]}]},
     "availablityZone and its deprecated spelling availability_zone are both set: keep availablityZone"
     " - at `$.resourceCommonInfo.selector.regions[0]`"),
    ({"geoLocation": {"city": "a"}, "geo_location": {"city": "b"}},
     "geoLocation and its deprecated spelling geo_location are both set: keep geoLocation"
     " - at `$.resourceCommonInfo.selector`"),
])
def test_both_spellings_at_once_are_an_error(change: dict, message: str) -> None:
    vm = {"flavors": [{"flavorID": "f"}], "resourceCommonInfo": {"selector": change}}

    with pytest.raises(VMRequestError) as raised:
        parse_vm_request(vm)
    assert str(raised.value) == message


@pytest.mark.parametrize(("vm", "message"), [
    ({"flavors": [{"flavorID": "f", "flavorId": "g"}]},
     "unknown field flavorId (did you mean flavorID?) - at `$.flavors[0]`"),
    ({"flavors": [{"flavorID": "f"}], "resourceCommonInfo": {"selector": {"strategy": {"local_strategy": "x"}}}},
     "unknown field local_strategy (did you mean localStrategy?) - at `$.resourceCommonInfo.selector.strategy`"),
    ({"flavors": [{"flavorID": "f"}], "stack_affinity": {"matchLabel": {}}},
     "unknown field matchLabel (did you mean matchLabels?) - at `$.stack_affinity`"),
    ({"flavors": [{"flavorID": "f"}], "zzz": 1}, "unknown field zzz (known: flavors, needEIP, resourceCommonInfo,"
     " storage, domain_id, stack_affinity, stack_antiaffinity, name, image, resources, resourcesAllocated,"
     " resizePolicy, volumeMounts, imagePullPolicy, keyPairName, publicKey, userData, trustedImageCertificate,"
     " shutdownBehavior, bootVolume, powerSpec, volumeDevices, cloudInitUserDataScript, securityGroupId) - at `$`"),
    ({"flavors": [{"flavorID": "f" * 254}]}, "Expected `str` of length <= 253 - at `$.flavors[0].flavorID`"),
    ({"flavors": [{"flavorID": "f"}] * 65}, "Expected `array` of length <= 64 - at `$.flavors`"),
])
def test_errors_name_the_field_and_the_fix(vm: dict, message: str) -> None:
    with pytest.raises(VMRequestError) as raised:
        parse_vm_request(vm)
    assert str(raised.value) == message


# --- The property: one unknown key anywhere lets no node pass ------------------------------------------


def _objects(value: object, path: tuple = ()) -> list[tuple]:
    """Paths of every JSON object inside `value` that the schema types as a Struct."""
    found = []
    if isinstance(value, dict):
        if strict.known_fields(VirtualMachine, "$" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)):
            found.append(path)
        for key, item in value.items():
            found += _objects(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _objects(item, (*path, i))
    return found


OBJECTS = _objects(ARKTOS)
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner,
                                                                                      max_size=2), max_leaves=4)


@pytest.fixture(scope="module")
def http():
    return create_app({"SETTINGS": Settings(policy=POLICY_DIR, kube="none"), "TESTING": True}).test_client()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(OBJECTS), key=st.text(min_size=1, max_size=12), value=JSON_VALUES,
       spec=st.booleans())
def test_one_unknown_key_anywhere_lets_no_node_pass(http, where: tuple, key: str, value: object, spec: bool) -> None:
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
    if key in strict.known_fields(VirtualMachine, path):
        return
    vm = copy.deepcopy(ARKTOS)
    target = vm
    for step in where:
        target = target[step]
    target[key] = value
    pod = {"metadata": {"name": "p", "uid": "u"}, "spec": {}}
    if spec:
        pod["spec"]["virtualMachine"] = vm
    else:
        pod["metadata"]["annotations"] = {"site-extender.io/vm": json.dumps(vm)}

    answer = http.post("/filter", json={"Pod": pod, "NodeNames": SITES}).get_json()

    assert answer["NodeNames"] == []
    assert answer["FailedNodes"] == {}
    assert set(answer["FailedAndUnresolvableNodes"]) == set(SITES)
    reason = answer["FailedAndUnresolvableNodes"]["site1"]
    assert "unknown field" in reason and f"at `{path}`" in reason, reason


def test_the_valid_request_passes_somewhere(http) -> None:
    """The property's base request is placeable: it is the unknown key that fails it."""
    pod = {"metadata": {"name": "p", "uid": "u"}, "spec": {"virtualMachine": ARKTOS}}
    answer = http.post("/filter", json={"Pod": pod, "NodeNames": SITES}).get_json()

    assert answer["NodeNames"] == ["site1"]
