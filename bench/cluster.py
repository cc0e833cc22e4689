"""Generate a realistic cluster for the benchmark: an inventory of N sites in the shapes of
`policy/inventory/`, one Node per site cloned from the node kube-scheduler really sent
(`tests/fixtures/scheduler/full-mode/`), and VM pods with varied requests cloned from the
recorded pods. Seeded: the same size and seed give the same bytes.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
NODE_TEMPLATE = FIXTURES / "scheduler" / "full-mode" / "filter-0003.json"
"""A full-mode filter body: its Pod and Nodes.items are what kube-scheduler sends."""
SAMPLE_INVENTORY = REPO / "policy" / "inventory"

SITE_LABEL = "site-extender.io/site"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
VM_ANNOTATION = "site-extender.io/vm"
GROUP_LABEL = "site-extender.io/group"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

SITES_PER_REGION = 100
PLACES = (  # (city, province, area), as in the sample inventory
    ("shenzhen", "guangdong", "huanan"), ("guangzhou", "guangdong", "huanan"), ("shanghai", "shanghai", "huadong"),
    ("hangzhou", "zhejiang", "huadong"), ("nanjing", "jiangsu", "huadong"), ("beijing", "beijing", "huabei"),
    ("tianjin", "tianjin", "huabei"), ("chengdu", "sichuan", "xinan"), ("chongqing", "chongqing", "xinan"),
)
OPERATORS = (("opera1", "unicom"), ("opera2", "telecom"), ("opera3", "mobile"))
VOLUME_TYPES = ("SAS", "SSD")
HOST_SHAPES = (  # (total_vcpus, total_mem MiB, resource_type)
    (64, 262144, "general||compute"), (64, 262144, "general"), (32, 131072, "general"),
    (48, 393216, "memory"), (32, 262144, "gpu"), (96, 393216, "general||memory"),
)


@dataclass(frozen=True, slots=True)
class Cluster:
    """A generated cluster: where its inventory lies and the bytes the scheduler would send."""

    inventory_dir: Path
    site_ids: tuple[str, ...]
    nodes: tuple[bytes, ...]
    """One compact JSON Node per site (the node name is the site id)."""
    pods: tuple[bytes, ...]
    """The first VM pods (`pod(0)`, `pod(1)`, ...): what the watched cluster runs."""
    requests: Requests
    names: bytes = b"[]"
    """The site ids as a JSON array (cache mode's NodeNames)."""

    def pod(self, index: int) -> bytes:
        """VM pod number `index`, with its own request drawn from its own seed (same index, same bytes):
        the bench sends a fresh one per call, so that no cache keyed by the request flatters a figure."""
        return self.requests.pod(index)

    def cache_body(self, pod: bytes) -> bytes:
        """`ExtenderArgs` of a `nodeCacheCapable: true` extender: the node names only."""
        return b'{"Pod":' + pod + b',"Nodes":null,"NodeNames":' + self.names + b"}"

    def full_body(self, pod: bytes) -> bytes:
        """`ExtenderArgs` of a full-mode extender: the whole NodeList."""
        return b'{"Pod":' + pod + b',"Nodes":{"metadata":{},"items":[' + b",".join(self.nodes) + b']},"NodeNames":null}'


def _recorded() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    body = json.loads(NODE_TEMPLATE.read_bytes())
    flavors = json.loads((SAMPLE_INVENTORY / "flavors.json").read_bytes())["flavors"]
    return body["Pod"], body["Nodes"]["items"][0], flavors


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _node(template: dict[str, Any], site: dict[str, Any], rng: random.Random) -> bytes:
    node = copy.deepcopy(template)
    meta = node["metadata"]
    name = site["id"]
    meta["name"] = name
    meta["uid"] = _uid(rng)
    meta["resourceVersion"] = str(rng.randrange(1000, 10**7))
    labels = {"kubernetes.io/hostname": name, SITE_LABEL: name, REGION_LABEL: site["region"], ZONE_LABEL: site["az"]}
    meta["labels"] = labels
    if LAST_APPLIED in meta.get("annotations", {}):
        applied = {"apiVersion": "v1", "kind": "Node", "metadata": {"annotations": {}, "labels": labels, "name": name}}
        meta["annotations"][LAST_APPLIED] = json.dumps(applied, separators=(",", ":")) + "\n"
    return _compact(node)


def _inventory(n: int, rng: random.Random, sample_flavors: list[dict[str, Any]]) -> dict[str, Any]:
    regions = [f"region{r + 1}" for r in range(max(1, -(-n // SITES_PER_REGION)))]
    sites, site_nodes, volume_pools, zones = [], [], {r: [] for r in regions}, {r: [] for r in regions}
    for i in range(n):
        region = regions[i % len(regions)]
        az = f"az{i + 1}"
        zones[region].append(az)
        city, province, area = PLACES[i % len(PLACES)]
        op_id, op_name = OPERATORS[rng.randrange(len(OPERATORS))]
        roll = rng.random()
        status = "Sellout" if roll < 0.01 else "Offline" if roll < 0.02 else "active"
        attributes = []
        if rng.random() < 0.01:
            attributes.append({"id": f"attr-site{i + 1}-0", "site_attr": "exclusive_domains",
                               "site_attr_value": "domain-finance,domain-gov"})
        site_id = f"site{i + 1}"
        sites.append({
            "id": site_id, "name": site_id, "region": region, "az": az, "status": status,
            "city": city, "province": province, "area": area, "country": "china",
            "operator": {"id": op_id, "name": op_name},
            "eip_type_name": f"{region}-{'static' if rng.random() < 0.2 else 'bgp'}",
            "site_attributes": attributes,
        })
        hosts = []
        for h in range(rng.randint(1, 4)):
            vcpus, mem, rtype = HOST_SHAPES[rng.randrange(len(HOST_SHAPES))]
            hosts.append({
                "host_name": f"s{i + 1}-h{h + 1}", "total_vcpus": vcpus,
                "used_vcpus": rng.randrange(0, vcpus // 2 + 1), "total_mem": mem,
                "used_mem": rng.randrange(0, mem // 2 + 1, 1024), "total_disk": 4000, "used_disk": 0,
                "resource_type": rtype, "cpu_allocation_ratio": rng.choice(["1.0", "2.0", "4.0"]),
                "max_count": rng.choice([100, 200, 500]),
            })
        site_nodes.append({"edge_site_id": site_id, "region": region, "availability_zone": az,
                           "status": status.lower(), "max_count": 1000, "node_infos": hosts})
        for volume_type in VOLUME_TYPES:
            if rng.random() < 0.8:
                total = rng.choice([500, 1000, 2000, 8000])
                provisioned = rng.randrange(0, total)
                volume_pools[region].append({"availability_zone": az, "name": f"{az}-{volume_type.lower()}", "capabilities": {
                    "pool_name": f"{az}-{volume_type.lower()}", "volume_type": volume_type,
                    "total_capacity_gb": total, "free_capacity_gb": total - provisioned,
                    "allocated_capacity_gb": provisioned, "provisioned_capacity_gb": provisioned,
                    "max_over_subscription_ratio": rng.choice([1.0, 1.5, 2.0]),
                    "thin_provisioning_support": rng.random() < 0.7, "reserved_percentage": rng.choice([0, 0, 5]),
                }})
    flavor_shapes = {f["id"]: f for f in sample_flavors if f["region"] == "region1"}
    flavors = [
        {**shape, "region_flavor_id": f"{region}|{fid}", "region": region}
        for region in regions for fid, shape in flavor_shapes.items()
    ]
    eip_pools = [
        {"region": r, "common_pools": [
            {"name": f"{r}-bgp", "status": "active", "size": (size := rng.choice([256, 1024, 4096])),
             "used": rng.randrange(0, size)},
            {"name": f"{r}-static", "status": "active", "size": 64, "used": rng.randrange(0, 64)},
        ]}
        for r in regions
    ]
    return {
        "sites.json": {"sites": sites},
        "site_nodes.json": {"site_nodes": site_nodes},
        "flavors.json": {"flavors": flavors},
        "eip_pools.json": {"eip_pools": eip_pools},
        "volume_pools.json": {"volume_pools": [{"region": r, "pools": p} for r, p in volume_pools.items()]},
        "volume_types.json": {"volume_types": [{"id": t, "name": t, "region": ""} for t in VOLUME_TYPES]},
        "region.yaml": {"regions": [{"region": r, "availability_zones": zones[r]} for r in regions]},
    }


def vm_request(rng: random.Random, regions: list[str], zones: dict[str, list[str]], flavor_ids: list[str]) -> dict[str, Any]:
    """A VM request in the annotation's shape: 1-3 acceptable flavors, EIP, volumes, region and zone
    selectors, strategy, place and operator, each present in some pods only."""
    request: dict[str, Any] = {"name": f"vm{rng.randrange(10**6)}", "image": "cirros-0.3.5-x86_64-disk.img",
                               "flavors": [{"flavorID": f} for f in rng.sample(flavor_ids, rng.randint(1, 3))],
                               "needEIP": rng.random() < 0.5}
    if rng.random() < 0.3:
        request["storage"] = {rng.choice(VOLUME_TYPES): rng.choice([20, 40, 100, 200])}
    selector: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.4:
        picked = rng.sample(regions, min(len(regions), rng.randint(1, 2)))
        selector["regions"] = [{"region": r} for r in picked]
        if rng.random() < 0.3:
            selector["regions"][0]["availability_zone"] = rng.sample(zones[picked[0]], min(3, len(zones[picked[0]])))
    if rng.random() < 0.1:
        selector["geo_location"] = {"area": rng.choice(PLACES)[2]}
    if rng.random() < 0.1:
        selector["operator"] = rng.choice(OPERATORS)[1]
    common: dict[str, Any] = {"selector": selector} if selector else {}
    strategy = rng.choice(["centralize", "discrete", ""])
    if strategy:
        common["strategy"] = {"localStrategy": strategy}
    if common:
        request["resourceCommonInfo"] = common
    if rng.random() < 0.1:
        request["stack_antiaffinity"] = {"matchLabels": {"app": f"stack{rng.randrange(5)}"}}
    return request


def _pod(template: dict[str, Any], request: dict[str, Any], index: int, rng: random.Random) -> bytes:
    pod = copy.deepcopy(template)
    meta = pod["metadata"]
    name = f"benchvm-{index}"
    meta["name"] = name
    meta["uid"] = _uid(rng)
    annotation = json.dumps(request)
    meta.setdefault("labels", {})[GROUP_LABEL] = f"group{index % 7}"
    meta.setdefault("annotations", {})[VM_ANNOTATION] = annotation
    if LAST_APPLIED in meta["annotations"]:
        applied = {"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": {VM_ANNOTATION: annotation},
                                                                 "name": name, "namespace": meta.get("namespace", "default")}}
        meta["annotations"][LAST_APPLIED] = json.dumps(applied, separators=(",", ":")) + "\n"
    return _compact(pod)


@dataclass(frozen=True, slots=True)
class Requests:
    """What VM pods of a generated cluster are made of: the recorded pod and the inventory's names."""

    seed: int
    template: dict[str, Any]
    regions: list[str]
    zones: dict[str, list[str]]
    flavor_ids: list[str]

    def pod(self, index: int) -> bytes:
        rng = random.Random(f"{self.seed}/{index}")
        return _pod(self.template, vm_request(rng, self.regions, self.zones, self.flavor_ids), index, rng)


def generate(sites: int, directory: Path, pods: int = 32, seed: int = 6) -> Cluster:
    """Write the inventory of `sites` sites into `directory` and build their nodes and `pods` VM pods."""
    rng = random.Random(seed * 1_000_003 + sites)
    pod_template, node_template, sample_flavors = _recorded()
    files = _inventory(sites, rng, sample_flavors)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = json.dumps(content, indent=1) if name.endswith(".json") else _yaml(content)
        (directory / name).write_text(text, encoding="utf-8")
    site_list = files["sites.json"]["sites"]
    regions = sorted({s["region"] for s in site_list}, key=lambda r: int(r.removeprefix("region")))
    zones = {r["region"]: r["availability_zones"] for r in files["region.yaml"]["regions"]}
    flavor_ids = sorted({f["id"] for f in files["flavors.json"]["flavors"]})
    requests = Requests(seed * 1_000_003 + sites, pod_template, regions, zones, flavor_ids)
    site_ids = tuple(s["id"] for s in site_list)
    return Cluster(
        inventory_dir=directory,
        site_ids=site_ids,
        nodes=tuple(_node(node_template, s, rng) for s in site_list),
        pods=tuple(requests.pod(i) for i in range(pods)),
        requests=requests,
        names=json.dumps(list(site_ids), separators=(",", ":")).encode(),
    )


def _yaml(content: dict[str, Any]) -> str:
    # JSON is YAML: the loader reads region.yaml with yaml.safe_load.
    return json.dumps(content, indent=1) + "\n"
