"""centralize: more of the group first, then the fullest; discrete: fewer of the group, then the emptiest.
With n of the group at the site and fullness f, each n owns the band [100/(n+2), 100/(n+1)] (discrete)
or its mirror (centralize)."""

from __future__ import annotations

import pytest

from extender.priorities import locality_strategy
from extender.priorities.locality_strategy import centralize_score, discrete_score
from tests.builders import (
    make_host,
    make_inventory,
    make_placement,
    make_request,
    make_site,
    make_snapshot,
    score_at,
)


@pytest.mark.parametrize(
    ("members", "fullness", "centralize", "discrete"),
    [
        pytest.param(0, 0.0, 0, 100, id="none-empty"),
        pytest.param(0, 1.0, 50, 50, id="none-full"),
        pytest.param(1, 0.0, 50, 50, id="one-empty"),
        pytest.param(1, 1.0, 100 - 100 / 3, 100 / 3, id="one-full"),
        pytest.param(2, 0.5, 100 - 100 / 3 + (100 / 3 - 25) / 2, 25 + (100 / 3 - 25) / 2, id="two-half"),
    ],
)
def test_bands(members: int, fullness: float, centralize: float, discrete: float) -> None:
    assert centralize_score(members, fullness) == pytest.approx(centralize)
    assert discrete_score(members, fullness) == pytest.approx(discrete)


def test_group_count_decides_before_fullness() -> None:
    # centralize: one of the group at an empty site beats none at a full one; discrete: the reverse
    assert centralize_score(1, 0.0) >= centralize_score(0, 1.0)
    assert discrete_score(0, 1.0) >= discrete_score(1, 0.0)


def snapshot_with(placements):
    # host 10 vCPU / 40 GB with 5 vCPU and 10 GB used
    site = make_site(hosts=[make_host(used_vcpus=5, used_mem=10)])
    return make_snapshot(make_inventory(sites=[site]), placements)


# Nothing placed: fullness 1 − ((10 − 5)/10 + (40 − 10)/40)/2 = 1 − (.5 + .75)/2 = .375.
# Three placed (1 vCPU, 4 GB each), two of group g: 1 − ((10 − 5 − 3)/10 + (40 − 10 − 12)/40)/2
# = 1 − (.2 + .45)/2 = .675.
TWO_OF_G = [make_placement(group="g"), make_placement(group="g"), make_placement(group="other")]


@pytest.mark.parametrize(
    ("strategy", "group", "placements", "score"),
    [
        pytest.param("", "g", [], 50, id="no-strategy"),
        pytest.param("centralize", "g", [], 100 * 0.375 / 2, id="centralize-none-placed"),  # 0 + 50 × .375
        pytest.param("discrete", "g", [], 50 + 50 * 0.625, id="discrete-none-placed"),
        pytest.param("centralize", "g", TWO_OF_G, 100 - 100 / 3 + (100 / 3 - 25) * 0.675, id="centralize-two-of-group"),
        pytest.param("discrete", "g", TWO_OF_G, 25 + (100 / 3 - 25) * 0.325, id="discrete-two-of-group"),
        # a pod without a group counts nobody as its own
        pytest.param("centralize", "", TWO_OF_G, 50 * 0.675, id="no-group"),
    ],
)
def test_locality_strategy(strategy: str, group: str, placements, score: float) -> None:
    snapshot = snapshot_with(placements)

    result = score_at(locality_strategy.new({}), make_request(strategy=strategy, group=group), snapshot)

    assert result == pytest.approx(score)
