"""Policy loading: the default policy, the global scheduler's conf/ as it is, and one clear message per mistake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from extender.app import create_app
from extender.config.policy import REASON_EMPTY, REASON_NO_PREDICATES, load_policy
from extender.config.settings import Settings
from extender.engine.registry import predicate_registry, priority_registry
from extender.errors import ConfigError, InventoryError, PolicyError
from tests.conftest import FIXTURES, POLICY_DIR, load_fixture

GLOBAL_CONF = FIXTURES / "global-scheduler-conf"
P_FLAVOR = "predicates: [{name: Flavor}]\n"


def test_default_policy_enables_every_plugin() -> None:
    policy = load_policy(POLICY_DIR)

    assert {p.name for p in policy.predicates} == set(predicate_registry())
    # Volume (the original's free-storage priority) is left out: SiteResourcesLeastAllocated weighs storage.
    assert {p.plugin.name for p in policy.priorities} == set(priority_registry()) - {"Volume"}
    assert all(p.weight > 0 for p in policy.priorities)
    assert len(policy.inventory.sites) == 12


def test_global_scheduler_conf_loads_as_it_is_through_the_aliases() -> None:
    policy = load_policy(GLOBAL_CONF)

    assert policy.path == GLOBAL_CONF / "edgecloud_policy.yaml"
    assert [p.name for p in policy.predicates] == [
        "SiteAvailability", "LocationAndOperator", "RegionAndAZ", "Flavor", "Volume", "EipAvailability", "ExclusiveSite",
    ]
    assert [(p.plugin.name, p.weight) for p in policy.priorities] == [
        ("StackAffinity", 1), ("Flavor", 1), ("SiteResourcesLeastAllocated", 1),
    ]
    site = policy.inventory.sites["site1"]  # site_nodes.json joins by region + zone ("region1|az1" is no site id)
    assert (site.region, site.az, len(site.hosts), site.max_count) == ("region1", "az1", 1, 1000)
    assert policy.inventory.flavor("region1", "c6.large.2").vcpus == 2  # "vcpus": "2" in the file


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    shutil.copytree(POLICY_DIR / "inventory", tmp_path / "inventory")
    return path


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        pytest.param("predicates:\n- name: Nope\n",
                     ["predicates[0].name: unknown predicate 'Nope'; known: EipAvailability, ExclusiveSite, Flavor, "
                      "LocationAndOperator, RegionAndAZ, SiteAvailability, Volume"], id="unknown-predicate"),
        pytest.param(P_FLAVOR + "priorities:\n- name: Flavr\n  weight: 1\n",
                     ["priorities[0].name: unknown priority 'Flavr' (did you mean Flavor?); known: Flavor, "
                      "LocalityStrategy, SiteResourcesLeastAllocated, StackAffinity, Volume"], id="unknown-priority"),
        pytest.param(P_FLAVOR + "priorities:\n- name: Flavor\n  weight: 0\n- name: StackAffinity\n  weight: -2\n",
                     ["priorities[0].weight: must be a positive integer, got 0",
                      "priorities[1].weight: must be a positive integer, got -2"], id="weights"),
        pytest.param("predicates:\n- name: Flavor\n  weight: 2\n", ["predicates[0].weight: predicates take no weight"],
                     id="predicate-weight"),
        pytest.param("predicates:\n- name: NodeAvailability\n- name: SiteAvailability\n",
                     ["predicates[1].name: 'SiteAvailability' is listed twice"], id="listed-twice"),
        pytest.param("predicates:\n- name: SiteAvailability\n- name: NodeAvailability\n",
                     ["predicates[1].name: 'SiteAvailability' is listed twice (NodeAvailability is an alias of "
                      "SiteAvailability)"], id="alias-twice"),
        pytest.param(P_FLAVOR + "priorities:\n- name: SiteResourcesLeastAllocated\n  args: {resources: {gpu: 1}}\n"
                     "- name: Flavor\n  args: {x: 1}\n",
                     ["priorities[0].args: resources.gpu: unknown resource; known: cpu, memory, storage, eip",
                      "priorities[1].args: Flavor takes no args, got x"], id="args"),
        pytest.param("options: {nonVMPods: maybe}\n", ["Invalid enum value 'maybe' - at `$.options.nonVMPods`"],
                     id="bad-option"),
        pytest.param("predicate:\n- name: Flavor\n", ["unknown field predicate (did you mean predicates?) - at `$`"],
                     id="typo-section"),
        pytest.param(P_FLAVOR + "priorities:\n- name: Flavor\n  weigth: 4\n",
                     ["unknown field weigth (did you mean weight?) - at `$.priorities[0]`"], id="typo-weight"),
        pytest.param(P_FLAVOR + "options: {nonVmPods: reject}\n",
                     ["unknown field nonVmPods (did you mean nonVMPods?) - at `$.options`"], id="typo-option"),
        pytest.param("priorities:\n- name: Flavor\n", [REASON_NO_PREDICATES], id="no-predicates"),
        pytest.param("predicates: []\n", [REASON_NO_PREDICATES], id="empty-predicates"),
        pytest.param("", [REASON_EMPTY], id="empty-file"),
        pytest.param("# predicates:\n#  - name: Flavor\n", [REASON_EMPTY], id="comments-only"),
    ],
)
def test_policy_mistakes_each_get_one_message(tmp_path: Path, text: str, problems: list[str]) -> None:
    path = _policy(tmp_path, text)

    with pytest.raises(PolicyError) as raised:
        load_policy(path)

    assert raised.value.problems == [f"{path}: {p}" for p in problems]


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path / "nope.yaml")
    assert raised.value.problems == [f"{tmp_path / 'nope.yaml'}: policy file not found"]


def test_directory_without_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path)
    assert raised.value.problems == [f"{tmp_path}: no policy.yaml or edgecloud_policy.yaml in this directory"]


def test_missing_inventory_files(tmp_path: Path) -> None:
    path = _policy(tmp_path, "predicates: [{name: Flavor}]\noptions: {inventory: inventory}\n")
    (tmp_path / "inventory" / "sites.json").unlink()
    (tmp_path / "inventory" / "flavors.json").unlink()

    with pytest.raises(InventoryError) as raised:
        load_policy(path)

    inventory = tmp_path / "inventory"
    assert raised.value.problems == [f"{inventory / 'sites.json'}: file not found", f"{inventory / 'flavors.json'}: file not found"]


def test_missing_inventory_directory(tmp_path: Path) -> None:
    path = _policy(tmp_path, "predicates: [{name: Flavor}]\noptions: {inventory: elsewhere}\n")

    with pytest.raises(InventoryError) as raised:
        load_policy(path)

    assert raised.value.problems == [f"{tmp_path / 'elsewhere'}: inventory directory not found"]


def test_duplicate_site_ids(tmp_path: Path) -> None:
    path = _policy(tmp_path, "predicates: [{name: Flavor}]\noptions: {inventory: inventory}\n")
    sites = tmp_path / "inventory" / "sites.json"
    text = sites.read_text()
    sites.write_text(text.replace('"id": "site4"', '"id": "site2"'))

    with pytest.raises(ConfigError) as raised:
        load_policy(path)

    assert raised.value.problems == [f"{sites}: duplicate site id 'site2' - at `$.sites[3].id`"]


def test_global_scheduler_conf_places_the_recorded_pod() -> None:
    """The original conf/ dropped in as it is: the recorded demovm (region1, an EIP, a c6.large.2) fits site1."""
    client = create_app({"SETTINGS": Settings(policy=GLOBAL_CONF), "TESTING": True}).test_client()
    args = load_fixture("scheduler/cache-mode/filter-0001.json")
    args["NodeNames"] = ["site1", "site2"]

    answer = client.post("/filter", json=args).get_json()

    assert answer["NodeNames"] == ["site1"]
    assert answer["FailedAndUnresolvableNodes"] == {
        "site2": "SiteAvailability: site site2 (node site2) is not in the inventory"}


def test_no_predicates_loads_when_the_policy_says_so(tmp_path: Path) -> None:
    path = _policy(tmp_path, "predicates: []\noptions: {allowNoPredicates: true, inventory: inventory}\n")

    assert load_policy(path).predicates == ()
