"""The scheduler profile keeps non-site nodes out of a VM pod's decision, in every configuration the
project ships or documents: deploy/base, deploy/tls, and the configuration docs/scheduler.md gives for
a scheduler already running (checked against the same known-field schema as deploy/'s)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from extender.domain.model import SITE_LABEL
from tests.deploy_support import DEPLOY, REPO, validate_scheduler_configuration

DOC = REPO / "docs" / "scheduler.md"
SITES_ONLY = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": SITE_LABEL, "operator": "Exists"}]}]}}
SHIPPED = [DEPLOY / "base" / "scheduler-config.yaml", DEPLOY / "tls" / "scheduler-config.yaml"]


def yaml_blocks(text: str) -> list[Any]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def site_profile(config: dict[str, Any]) -> dict[str, Any]:
    [profile] = [p for p in config["profiles"] if p["schedulerName"] == "site-scheduler"]
    return profile


def added_affinity(profile: dict[str, Any]) -> Any:
    [node_affinity] = [c for c in profile.get("pluginConfig", []) if c["name"] == "NodeAffinity"]
    return node_affinity["args"]["addedAffinity"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_shipped_profile_requires_the_site_label_and_scores_every_site(path) -> None:
    config = yaml.safe_load(path.read_text())
    assert validate_scheduler_configuration(config) == []
    profile = site_profile(config)
    assert added_affinity(profile) == SITES_ONLY
    assert profile["percentageOfNodesToScore"] == 100


def test_base_and_tls_profiles_are_the_same() -> None:
    base, tls = (yaml.safe_load(p.read_text()) for p in SHIPPED)
    assert base["profiles"] == tls["profiles"]


def test_documented_configurations_are_the_shipped_profile() -> None:
    blocks = yaml_blocks(DOC.read_text())
    shipped = site_profile(yaml.safe_load(SHIPPED[0].read_text()))
    # the excerpt of deploy/ the page shows
    assert {"profiles": [shipped]} in blocks
    # a scheduler already running: its own profile untouched, the site profile as shipped, the extender
    [existing] = [b for b in blocks if b.get("kind") == "KubeSchedulerConfiguration"]
    assert validate_scheduler_configuration(existing) == []
    assert [p["schedulerName"] for p in existing["profiles"]] == ["default-scheduler", "site-scheduler"]
    assert existing["profiles"][0] == {"schedulerName": "default-scheduler"}
    assert site_profile(existing) == shipped
    shipped_extender = yaml.safe_load(SHIPPED[1].read_text())["extenders"][0]
    [extender] = existing["extenders"]
    same = {k: v for k, v in extender.items() if k not in ("urlPrefix", "tlsConfig")}
    assert same == {k: v for k, v in shipped_extender.items() if k not in ("urlPrefix", "tlsConfig")}
    # the pod-level form for schedulers without a profile of one's own
    [pod] = [b for b in blocks if "spec" in b]
    assert pod["spec"]["affinity"]["nodeAffinity"] == SITES_ONLY
