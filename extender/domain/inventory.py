"""Load the site inventory from a directory in the global scheduler's file shapes.

The files are read as they ship from the original `conf/` directory: numbers may arrive as strings
(`"vcpus": "2"`, `"cpu_allocation_ratio": "2.0"`), unknown keys are ignored. Every problem is
reported with its file and field path, all of them at once, in one `InventoryError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import msgspec
import yaml
from msgspec import Struct

from extender.domain.model import (
    EipPool,
    Flavor,
    Host,
    Inventory,
    Operator,
    Region,
    Site,
    VolumePool,
    VolumeType,
)
from extender.errors import InventoryError

SITES_FILE = "sites.json"
SITE_NODES_FILE = "site_nodes.json"
FLAVORS_FILE = "flavors.json"
EIP_POOLS_FILE = "eip_pools.json"
VOLUME_POOLS_FILE = "volume_pools.json"
VOLUME_TYPES_FILE = "volume_types.json"
REGIONS_FILE = "region.yaml"

REQUIRED_FILES = (SITES_FILE, FLAVORS_FILE)
"""Without sites or flavors nothing can be placed; the other files may be absent (no pools)."""

RESOURCE_TYPE_SEPARATOR = "||"


# --- File shapes -----------------------------------------------------------------------------------


class _Operator(Struct):
    id: str = ""
    name: str = ""


class _SiteAttribute(Struct):
    site_attr: str
    site_attr_value: str = ""


class _Site(Struct):
    id: str
    region: str
    az: str
    name: str = ""
    status: str = "active"
    city: str = ""
    province: str = ""
    area: str = ""
    country: str = ""
    operator: _Operator | None = None
    eip_type_name: str = ""
    site_attributes: list[_SiteAttribute] | None = None


class _SitesFile(Struct):
    sites: list[_Site]


class _NodeInfo(Struct):
    host_name: str = ""
    total_vcpus: float = 0
    used_vcpus: float = 0
    total_mem: float = 0
    used_mem: float = 0
    total_disk: float = 0
    used_disk: float = 0
    resource_type: str = ""
    cpu_allocation_ratio: float = 1.0
    max_count: int | None = None


class _SiteNodes(Struct):
    region: str
    availability_zone: str
    edge_site_id: str = ""
    status: str = "active"
    max_count: int | None = None
    node_infos: list[_NodeInfo] | None = None


class _SiteNodesFile(Struct):
    site_nodes: list[_SiteNodes]


class _FlavorSpecs(Struct):
    resource_type: str = ""
    operation_status: str = msgspec.field(name="cond:operation:status", default="")
    operation_az: str = msgspec.field(name="cond:operation:az", default="")


_ZONE_FLAG = re.compile(r"([\w-]+)\(([\w]+)\)")
"""One `zone(flag)` of `cond:operation:az`, as the original's regular expression reads it (others are skipped)."""


def zone_flags(value: str) -> tuple[tuple[str, str], ...]:
    """(zone, flag) pairs, sorted by zone; a zone given twice keeps its last flag (as the original's map)."""
    return tuple(sorted({m.group(1): m.group(2) for part in value.split(",") if (m := _ZONE_FLAG.search(part))}.items()))


class _Flavor(Struct):
    id: str
    region: str
    vcpus: int
    ram: int
    disk: int = 0
    os_extra_specs: _FlavorSpecs | None = None


class _FlavorsFile(Struct):
    flavors: list[_Flavor]


class _EipCommonPool(Struct):
    name: str
    size: int
    used: int = 0
    status: str = "active"


class _EipRegion(Struct):
    region: str
    common_pools: list[_EipCommonPool] | None = None


class _EipPoolsFile(Struct):
    eip_pools: list[_EipRegion]


class _Capabilities(Struct):
    volume_type: str
    total_capacity_gb: float
    free_capacity_gb: float = 0
    allocated_capacity_gb: float = 0
    provisioned_capacity_gb: float = 0
    max_over_subscription_ratio: float = 1.0
    thin_provisioning_support: bool = False
    reserved_percentage: float = 0


class _VolumePool(Struct):
    availability_zone: str
    name: str
    capabilities: _Capabilities


class _VolumeRegion(Struct):
    region: str
    pools: list[_VolumePool] | None = None


class _VolumePoolsFile(Struct):
    volume_pools: list[_VolumeRegion]


class _VolumeType(Struct):
    id: str
    name: str = ""
    region: str = ""


class _VolumeTypesFile(Struct):
    volume_types: list[_VolumeType]


class _Region(Struct):
    region: str
    availability_zones: list[str] | None = None


class _RegionsFile(Struct):
    regions: list[_Region] | None = None


# --- Loading ---------------------------------------------------------------------------------------

T = TypeVar("T")


def _read(directory: Path, name: str, shape: type[T], problems: list[str]) -> T | None:
    path = directory / name
    if not path.is_file():
        if name in REQUIRED_FILES:
            problems.append(f"{path}: file not found")
        return None
    try:
        text = path.read_bytes()
        data: Any = yaml.safe_load(text) if name.endswith((".yaml", ".yml")) else msgspec.json.decode(text)
    except (OSError, msgspec.DecodeError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot be read: {exc}")
        return None
    try:
        return msgspec.convert(data, shape, strict=False)
    except msgspec.ValidationError as exc:
        problems.append(f"{path}: {exc}")
        return None


def _duplicates(items: list[Any], key: Callable[[Any], Any], path: Path, what: str, where: str,
                problems: list[str]) -> None:
    """One problem per repeated key; `where` is the JSON path of an item, e.g. `$.sites[{index}].id`."""
    seen: set[Any] = set()
    for index, item in enumerate(items):
        k = key(item)
        if k in seen:
            problems.append(f"{path}: duplicate {what} {k!r} - at `{where.format(index=index)}`")
        seen.add(k)


def _host(info: _NodeInfo) -> Host:
    types = frozenset(t.strip() for t in info.resource_type.split(RESOURCE_TYPE_SEPARATOR) if t.strip())
    return Host(
        host_name=info.host_name,
        total_vcpus=info.total_vcpus,
        used_vcpus=info.used_vcpus,
        total_mem=info.total_mem,
        used_mem=info.used_mem,
        total_disk=info.total_disk,
        used_disk=info.used_disk,
        resource_types=types,
        cpu_allocation_ratio=info.cpu_allocation_ratio,
        max_count=info.max_count,
    )


def _check_non_negative(directory: Path, problems: list[str], flavors: _FlavorsFile | None,
                        site_nodes: _SiteNodesFile | None) -> None:
    if flavors:
        for i, f in enumerate(flavors.flavors):
            if f.vcpus <= 0 or f.ram <= 0:
                problems.append(
                    f"{directory / FLAVORS_FILE}: flavor {f.id!r} needs vcpus and ram > 0 - at `$.flavors[{i}]`"
                )
    if site_nodes:
        for i, entry in enumerate(site_nodes.site_nodes):
            for j, info in enumerate(entry.node_infos or ()):
                if info.cpu_allocation_ratio <= 0:
                    problems.append(
                        f"{directory / SITE_NODES_FILE}: cpu_allocation_ratio must be > 0"
                        f" - at `$.site_nodes[{i}].node_infos[{j}].cpu_allocation_ratio`"
                    )


def load_inventory(directory: str | Path) -> Inventory:
    """Read every inventory file of `directory`; raise `InventoryError` listing all problems."""
    directory = Path(directory)
    problems: list[str] = []
    if not directory.is_dir():
        raise InventoryError([f"{directory}: inventory directory not found"])

    sites_file = _read(directory, SITES_FILE, _SitesFile, problems)
    site_nodes_file = _read(directory, SITE_NODES_FILE, _SiteNodesFile, problems)
    flavors_file = _read(directory, FLAVORS_FILE, _FlavorsFile, problems)
    eip_file = _read(directory, EIP_POOLS_FILE, _EipPoolsFile, problems)
    volume_file = _read(directory, VOLUME_POOLS_FILE, _VolumePoolsFile, problems)
    types_file = _read(directory, VOLUME_TYPES_FILE, _VolumeTypesFile, problems)
    regions_file = _read(directory, REGIONS_FILE, _RegionsFile, problems)

    raw_sites = sites_file.sites if sites_file else []
    _duplicates(raw_sites, lambda s: s.id, directory / SITES_FILE, "site id", "$.sites[{index}].id", problems)
    raw_flavors = flavors_file.flavors if flavors_file else []
    _duplicates(raw_flavors, lambda f: (f.region, f.id), directory / FLAVORS_FILE, "flavor (region, id)",
                "$.flavors[{index}]", problems)
    _check_non_negative(directory, problems, flavors_file, site_nodes_file)

    # Hosts join their site by edge_site_id when it names a site, else by region + availability zone.
    by_id = {s.id: s for s in raw_sites}
    by_zone: dict[tuple[str, str], list[_Site]] = {}
    for s in raw_sites:
        by_zone.setdefault((s.region, s.az), []).append(s)
    hosts: dict[str, tuple[list[Host], int | None]] = {}
    # Without a readable sites.json there is nothing to join to: its own problem says so, once.
    for index, entry in enumerate(site_nodes_file.site_nodes if site_nodes_file and sites_file else []):
        if entry.edge_site_id in by_id:
            site_id = entry.edge_site_id
        else:
            matches = by_zone.get((entry.region, entry.availability_zone), [])
            if len(matches) != 1:
                what = "no site" if not matches else f"several sites ({', '.join(s.id for s in matches)})"
                problems.append(
                    f"{directory / SITE_NODES_FILE}: {what} in region {entry.region!r} availability zone"
                    f" {entry.availability_zone!r} - at `$.site_nodes[{index}]`"
                )
                continue
            site_id = matches[0].id
        hosts.setdefault(site_id, ([], entry.max_count))[0].extend(_host(i) for i in entry.node_infos or ())

    if problems:
        raise InventoryError(problems)

    sites = {}
    for s in raw_sites:
        site_hosts, cap = hosts.get(s.id, ([], None))
        sites[s.id] = Site(
            id=s.id,
            name=s.name or s.id,
            region=s.region,
            az=s.az,
            status=s.status,
            city=s.city,
            province=s.province,
            area=s.area,
            country=s.country,
            operator=Operator(s.operator.id, s.operator.name) if s.operator else Operator(),
            eip_type_name=s.eip_type_name,
            attributes=MappingProxyType({a.site_attr: a.site_attr_value for a in s.site_attributes or ()}),
            hosts=tuple(site_hosts),
            max_count=cap,
        )
    flavors = {
        (f.region, f.id): Flavor(
            id=f.id,
            region=f.region,
            vcpus=f.vcpus,
            ram=f.ram,
            disk=f.disk,
            resource_type=(f.os_extra_specs.resource_type if f.os_extra_specs else ""),
            operation_status=(f.os_extra_specs.operation_status if f.os_extra_specs else ""),
            zone_flags=zone_flags(f.os_extra_specs.operation_az) if f.os_extra_specs else (),
        )
        for f in raw_flavors
    }
    eip_pools = {
        (r.region, p.name): EipPool(region=r.region, name=p.name, status=p.status, size=p.size, used=p.used)
        for r in (eip_file.eip_pools if eip_file else [])
        for p in r.common_pools or ()
    }
    volume_pools = tuple(
        VolumePool(
            region=r.region,
            availability_zone=p.availability_zone,
            name=p.name,
            volume_type=p.capabilities.volume_type,
            total_capacity_gb=p.capabilities.total_capacity_gb,
            free_capacity_gb=p.capabilities.free_capacity_gb,
            allocated_capacity_gb=p.capabilities.allocated_capacity_gb,
            provisioned_capacity_gb=p.capabilities.provisioned_capacity_gb,
            max_over_subscription_ratio=p.capabilities.max_over_subscription_ratio,
            thin_provisioning_support=p.capabilities.thin_provisioning_support,
            reserved_percentage=p.capabilities.reserved_percentage,
        )
        for r in (volume_file.volume_pools if volume_file else [])
        for p in r.pools or ()
    )
    volume_types = {
        t.id: VolumeType(id=t.id, name=t.name or t.id, region=t.region)
        for t in (types_file.volume_types if types_file else [])
    }
    regions = {
        r.region: Region(name=r.region, availability_zones=tuple(r.availability_zones or ()))
        for r in ((regions_file.regions or []) if regions_file else [])
    }
    return Inventory(
        sites=MappingProxyType(sites),
        flavors=MappingProxyType(flavors),
        eip_pools=MappingProxyType(eip_pools),
        volume_pools=volume_pools,
        volume_types=MappingProxyType(volume_types),
        regions=MappingProxyType(regions),
    )
