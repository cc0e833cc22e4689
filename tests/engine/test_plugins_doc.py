"""docs/plugins.md shows real plugin code: each Python block in it is in the module it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "plugins.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
SOURCES = [REPO / "extender" / "predicates" / "site_availability.py", REPO / "extender" / "predicates" / "eip_availability.py"]


@pytest.mark.parametrize("number", range(2), ids=["site-availability", "eip-pool-fact"])
def test_every_code_block_is_the_plugins_own_code(number: int) -> None:
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == len(SOURCES)
    assert blocks[number] in SOURCES[number].read_text(encoding="utf-8")
