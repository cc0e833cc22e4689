"""The fast path (`decide.filter_nodes`, `decide.prioritize_nodes`: each plugin's check over every
site at once, reasons only for the nodes that fail, fact columns per snapshot) answers exactly what the
straightforward one (`decide.reference_filter_nodes`, `decide.reference_prioritize_nodes`: every
plugin's check on every node alone) answers, on seeded random inventories, placements, pods and nodes."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

from extender.config.policy import Policy, load_policy
from extender.domain.model import (
    GROUP_LABEL,
    REGION_LABEL,
    SITE_LABEL,
    VM_ANNOTATION,
    ZONE_LABEL,
    Inventory,
    NodeRef,
    Operator,
    Placement,
    node_ref,
)
from extender.engine import decide
from extender.engine.snapshot import Snapshot
from extender.errors import VMRequestError
from extender.protocol.wire import ObjectMeta, Pod
from tests.builders import (
    judge_every_site,
    make_eip_pool,
    make_flavor,
    make_host,
    make_inventory,
    make_placement,
    make_site,
    make_volume_pool,
    score_at,
)

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
REGIONS = ("r1", "r2", "r3")
ZONES = {"r1": ("z1", "z2"), "r2": ("z3",), "r3": ("z4", "z5")}
FLAVORS = ("f.small", "f.big", "f.mem", "f.any")
TYPES = ("general", "memory", "gpu")
AREAS = ("huanan", "huadong", "huabei")
CASES = 150


def random_inventory(rng: random.Random) -> Inventory:
    sites = []
    for i in range(rng.randint(1, 25)):
        region = rng.choice(REGIONS)
        hosts = [
            make_host(f"h{i}-{h}", vcpus=rng.choice([2, 8, 32]), used_vcpus=rng.choice([0, 1, 4]),
                      mem=rng.choice([8, 32, 128]), used_mem=rng.choice([0, 4, 16]),
                      types=rng.sample(TYPES, rng.randint(1, 2)), ratio=rng.choice([1.0, 2.0]),
                      max_count=rng.choice([None, None, 1, 5]))
            for h in range(rng.randint(0, 3))
        ]
        attributes = {"exclusive_domains": rng.choice(["d1", "d1,d2"])} if rng.random() < 0.2 else {}
        if rng.random() < 0.1:
            attributes["other"] = "x"
        sites.append(make_site(
            f"s{i}", region=region, az=rng.choice(ZONES[region] + ("zx",)),
            status=rng.choice(["active", "active", "active", "Sellout", "offline", "maintenance"]),
            hosts=hosts, max_count=rng.choice([None, None, 2, 10]),
            eip=rng.choice([f"{region}-bgp", f"{region}-bgp", f"{region}-static", "", "nowhere"]),
            attributes=attributes, area=rng.choice(AREAS), city=rng.choice(["a", "B", "c"]),
            operator=rng.choice([Operator("op1", "unicom"), Operator("op2", "Telecom"), Operator()]),
        ))
    flavors = [
        make_flavor(f, vcpus=rng.choice([1, 2, 8]), ram=rng.choice([2, 4, 16]), region=r,
                    resource_type="" if f == "f.any" else rng.choice(TYPES))
        for r in REGIONS for f in FLAVORS if rng.random() < 0.8
    ]
    pools = [make_eip_pool(f"{r}-{kind}", size=rng.choice([0, 1, 3, 10]), used=rng.choice([0, 1, 2]), region=r)
             for r in REGIONS for kind in ("bgp", "static") if rng.random() < 0.8]
    volumes = [make_volume_pool(rng.choice(["SAS", "SSD"]), total=rng.choice([0, 50, 500]),
                                provisioned=rng.choice([0, 20, 100]), ratio=rng.choice([0.5, 1.0, 2.0]),
                                thin=rng.random() < 0.5, reserved=rng.choice([0, 10]), region=r, az=z, name=f"p{k}")
               for k, (r, z) in enumerate((r, z) for r in REGIONS for z in ZONES[r] for _ in range(2)) if rng.random() < 0.7]
    return make_inventory(sites, flavors, pools, volumes)


def random_placements(rng: random.Random, inventory: Inventory) -> list[Placement]:
    site_ids = [*inventory.sites, "gone"]
    return [
        make_placement(site=rng.choice(site_ids), flavor=rng.choice((*FLAVORS, "f.old")), vcpus=rng.choice([1, 2, 8]),
                       ram=rng.choice([2, 4, 16]), eip=rng.random() < 0.4,
                       storage=rng.choice([None, {"SAS": 30}, {"SSD": 200}]), group=rng.choice(["", "g1", "g2"]),
                       labels=rng.choice([None, {"app": "a"}, {"app": "b", "tier": "db"}]))
        for _ in range(rng.randint(0, 60))
    ]


def random_vm(rng: random.Random, site_ids: list[str]) -> dict:
    vm: dict = {"flavors": [{"flavorID": f} for f in rng.sample(FLAVORS, rng.randint(1, 3))], "needEIP": rng.random() < 0.5}
    if rng.random() < 0.05:
        vm["flavors"].append({"flavorID": "f.unknown"})  # not offered anywhere: invalid request
    if rng.random() < 0.4:
        vm["storage"] = {rng.choice(["SAS", "SSD"]): rng.choice([1, 40, 400, 5000])}
    selector: dict = {}
    if rng.random() < 0.5:
        selector["regions"] = [
            {"region": r, **({"availability_zone": rng.sample(ZONES.get(r, ("z9",)), 1)} if rng.random() < 0.4 else {})}
            for r in rng.sample((*REGIONS, "r9"), rng.randint(1, 2))
        ]
    if rng.random() < 0.2:
        selector["geo_location"] = rng.choice([{"area": rng.choice(AREAS)}, {"city": "b"}, {"country": "china"}, {}])
    if rng.random() < 0.2:
        selector["operator"] = rng.choice(["op1", "telecom", "nobody"])
    if rng.random() < 0.1 and site_ids:
        selector["site_id"] = rng.choice(site_ids)
    info: dict = {"selector": selector} if selector else {}
    if (strategy := rng.choice(["", "centralize", "discrete"])):
        info["strategy"] = {"localStrategy": strategy}
    if info:
        vm["resourceCommonInfo"] = info
    if rng.random() < 0.2:
        vm["domain_id"] = rng.choice(["d1", "d2", "d3"])
    if rng.random() < 0.2:
        vm["stack_affinity"] = {"matchLabels": {"app": rng.choice(["a", "b"])}}
    if rng.random() < 0.2:
        vm["stack_antiaffinity"] = rng.choice([{"matchLabels": {"tier": "db"}}, {}])
    return vm


def random_pod(rng: random.Random, site_ids: list[str]) -> Pod:
    annotations = {VM_ANNOTATION: json.dumps(random_vm(rng, site_ids))} if rng.random() < 0.9 else {}
    labels = {GROUP_LABEL: rng.choice(["g1", "g2"])} if rng.random() < 0.5 else {}
    return Pod(metadata=ObjectMeta(name="p", namespace="default", uid="u", labels=labels, annotations=annotations))


def random_nodes(rng: random.Random, site_ids: list[str]) -> list[NodeRef]:
    names = [*site_ids, "ghost"]
    nodes = []
    for _ in range(rng.randint(0, 30)):
        name = rng.choice(names)
        labels: dict[str, str] = {}
        if rng.random() < 0.3:
            labels[SITE_LABEL] = rng.choice(names)
        if rng.random() < 0.3:
            labels[REGION_LABEL] = rng.choice(REGIONS)
        if rng.random() < 0.3:
            labels[ZONE_LABEL] = rng.choice(("z1", "z3", "z4", "zx"))
        nodes.append(node_ref(name, labels or None, known=rng.random() > 0.05))
    return nodes


def answers(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: list[NodeRef], fast: bool) -> tuple:
    filter_nodes = decide.filter_nodes if fast else decide.reference_filter_nodes
    prioritize = decide.prioritize_nodes if fast else decide.reference_prioritize_nodes
    decision = filter_nodes(policy, snapshot, pod, nodes)
    # Dict order is part of the answer: it is the order of the JSON the scheduler gets. The failure
    # counts by rule feed the metrics.
    return (decision.passed, list(decision.failed.items()), list(decision.unresolvable.items()),
            dict(decision.failures), prioritize(policy, snapshot, pod, nodes))


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY_DIR)


@pytest.mark.parametrize("seed", range(CASES), ids=lambda seed: f"seed{seed}")
def test_fast_path_answers_what_the_reference_answers(policy: Policy, seed: int) -> None:
    rng = random.Random(seed)
    inventory = random_inventory(rng)
    reject = rng.random() < 0.2
    policy = dataclasses.replace(policy, inventory=inventory, options=dataclasses.replace(
        policy.options, non_vm_pods="reject" if reject else "pass"))
    snapshot = Snapshot.build(inventory, tuple(random_placements(rng, inventory)))
    site_ids = list(inventory.sites)
    for _ in range(4):
        pod, nodes = random_pod(rng, site_ids), random_nodes(rng, site_ids)
        expected = answers(policy, snapshot, pod, nodes, fast=False)
        assert answers(policy, snapshot, pod, nodes, fast=True) == expected
        # Again with the memos warm, and with the same nodes as new objects (a node cache's update).
        assert answers(policy, snapshot, pod, nodes, fast=True) == expected
        fresh = [dataclasses.replace(node) for node in nodes]
        assert answers(policy, snapshot, pod, fresh, fast=True) == expected


def test_random_cases_reach_every_kind_of_answer(policy: Policy) -> None:
    """The random inputs above are worth something only if they pass, fail and fail unresolvably."""
    seen = {"passed": 0, "failed": 0, "unresolvable": 0, "scored": 0}
    levels: set[int] = set()
    for seed in range(CASES):
        rng = random.Random(seed)
        inventory = random_inventory(rng)
        rng.random()
        local = dataclasses.replace(policy, inventory=inventory)
        snapshot = Snapshot.build(inventory, tuple(random_placements(rng, inventory)))
        pod, nodes = random_pod(rng, list(inventory.sites)), random_nodes(rng, list(inventory.sites))
        passed, failed, unresolvable, _, scores = answers(local, snapshot, pod, nodes, fast=True)
        seen["passed"] += len(passed)
        seen["failed"] += len(failed)
        seen["unresolvable"] += len(unresolvable)
        seen["scored"] += sum(1 for _, score in scores if score)
        levels.update(score for _, score in scores)
    assert all(count >= 15 for count in seen.values()), seen
    assert len(levels) >= 4, levels



@pytest.mark.parametrize("seed", range(0, CASES, 3), ids=lambda seed: f"seed{seed}")
def test_a_snapshot_built_on_the_previous_one_answers_as_a_fresh_one(policy: Policy, seed: int) -> None:
    """After a placement change the new snapshot keeps the previous one's memos for unchanged sites;
    it must answer as one built from scratch."""
    rng = random.Random(seed)
    inventory = random_inventory(rng)
    policy = dataclasses.replace(policy, inventory=inventory)
    before = random_placements(rng, inventory)
    previous = Snapshot.build(inventory, tuple(before))
    site_ids = list(inventory.sites)
    pods = [random_pod(rng, site_ids) for _ in range(4)]
    nodes = [random_nodes(rng, site_ids) for _ in range(4)]
    for pod, asked in zip(pods, nodes):
        answers(policy, previous, pod, asked, fast=True)  # fills the memos
    kept = [p for p in before if rng.random() < 0.7]
    # Some placements keep their key but move or change (a pod rebound, an allocation resized).
    moved = [dataclasses.replace(p, site_id=rng.choice([*site_ids, "gone"]), vcpus=p.vcpus + 1) if rng.random() < 0.2
             else p for p in kept]
    after = moved + random_placements(rng, inventory)[:5]
    if seed % 9 == 0 and after:
        after.append(after[0])  # the same key twice: summed from scratch
    for group in ("g1", "g2"):
        previous.group_sites(group)  # the sites per group are carried over once built
    incremental = Snapshot.build(inventory, tuple(after), previous=previous)
    fresh = Snapshot.build(inventory, tuple(after))
    assert incremental == fresh
    for group in ("g1", "g2", ""):
        assert sorted(zip(*map(list, incremental.group_sites(group)))) == \
            sorted(zip(*map(list, fresh.group_sites(group)))), group
    for pod, asked in zip(pods, nodes):
        assert answers(policy, incremental, pod, asked, fast=True) == answers(policy, fresh, pod, asked, fast=False)


@pytest.mark.parametrize("seed", range(CASES), ids=lambda seed: f"seed{seed}")
def test_every_site_asked_by_its_own_node(policy: Policy, seed: int) -> None:
    """The common case, a node per site that agrees with it, decided by the site columns alone:
    every site of the inventory asked, in a shuffled order, some twice."""
    rng = random.Random(1000 + seed)
    inventory = random_inventory(rng)
    policy = dataclasses.replace(policy, inventory=inventory)
    snapshot = Snapshot.build(inventory, tuple(random_placements(rng, inventory)))
    site_ids = list(inventory.sites)
    for _ in range(3):
        names = site_ids + rng.sample(site_ids, len(site_ids) // 3)
        rng.shuffle(names)
        nodes = [node_ref(name, {REGION_LABEL: inventory.sites[name].region} if rng.random() < 0.5 else None)
                 for name in names]
        assert all(c is not None and c.position >= 0 for c in snapshot.candidates(nodes))
        pod = random_pod(rng, site_ids)
        assert answers(policy, snapshot, pod, nodes, fast=True) == answers(policy, snapshot, pod, nodes, fast=False)


@pytest.mark.parametrize("seed", range(0, CASES, 2), ids=lambda seed: f"seed{seed}")
def test_each_check_says_of_every_site_what_it_says_of_each_node(policy: Policy, seed: int) -> None:
    """Every plugin's one check (and score) over every site at once gives each site what it gives
    that site's node alone: pass or fail, reason, resolvability, score (whatever the other plugins say)."""
    rng = random.Random(2000 + seed)
    inventory = random_inventory(rng)
    snapshot = Snapshot.build(inventory, tuple(random_placements(rng, inventory)))
    site_ids = list(inventory.sites)
    for _ in range(4):
        try:
            request = decide.read_request(dataclasses.replace(policy, inventory=inventory), random_pod(rng, site_ids))
        except VMRequestError:
            continue
        if request is None:
            continue
        for predicate in policy.predicates:
            judge_every_site(predicate, request, snapshot)
        for priority in policy.priorities:
            for site_id in site_ids:
                score_at(priority.plugin, request, snapshot, site_id)
