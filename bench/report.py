"""The results table: one row per (sites, mode, verb), the machine it ran on, written as Markdown."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import Floor, Timings


@dataclass(frozen=True, slots=True)
class Row:
    sites: int
    mode: str
    """`cache` (NodeNames) or `full` (Nodes)."""
    verb: str
    body_bytes: int
    """Mean request body size."""
    extender: Timings
    floor: Floor

    @property
    def ratio(self) -> float:
        return self.extender.p50 / self.floor.timings.p50


@dataclass(frozen=True, slots=True)
class Memory:
    sites: int
    setup: str
    at_start_kib: int
    """Worker VmRSS once ready (node cache synced), before any call."""
    after_kib: int
    """Worker VmRSS after every case of this size."""
    peak_kib: int
    """Worker VmHWM: the most it was resident at any moment (full-mode bodies included)."""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def table(rows: list[Row]) -> str:
    lines = [
        "| sites | mode | verb | body | calls | p50 ms | p99 ms | max ms | calls/s | floor p50 ms | extender / floor |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.sites:,} | {r.mode} | /{r.verb} | {_size(r.body_bytes)} | {r.extender.calls} | {_ms(r.extender.p50)} | "
            f"{_ms(r.extender.p99)} | {_ms(r.extender.max)} | {r.extender.per_second:,.0f} | "
            f"{_ms(r.floor.timings.p50)} ({r.floor.codec}) | {r.ratio:.1f}x |"
        )
    return "\n".join(lines)


def memory_table(memory: list[Memory]) -> str:
    lines = ["| sites | setup | worker RSS when ready | RSS after the run | peak RSS (VmHWM) |", "|---:|---|---:|---:|---:|"]
    lines += [f"| {m.sites:,} | {m.setup} | {_mib(m.at_start_kib)} | {_mib(m.after_kib)} | {_mib(m.peak_kib)} |"
              for m in memory]
    return "\n".join(lines)


def render(rows: list[Row], memory: list[Memory], command: str, notes: list[str]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmark results",
        "",
        f"- Date: {now}",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()} on {platform.system()}",
        f"- Command: `{command}`",
        "",
        "Latency is per call, end to end over HTTP on loopback (one call at a time on a kept-alive connection,"
        " as kube-scheduler calls an extender); calls/s = 1 / mean latency. The floor is an in-process JSON"
        " decode + encode of the same body with the fastest codec installed; extender / floor compares medians.",
        "",
        table(rows),
        "",
        "Resident memory of the gunicorn worker (`/proc/<pid>/status`):",
        "",
        memory_table(memory),
    ]
    if notes:
        parts += ["", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"



_SECTION = re.compile(r"<!-- section: (?P<name>[\w-]+) -->\n(?P<body>.*?)\n<!-- /section: (?P=name) -->\n?", re.S)
"""A section of RESULTS.md that another benchmark writes and owns."""


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the section `name` holding `body` (appended when it has none)."""
    block = f"<!-- section: {name} -->\n{body.strip()}\n<!-- /section: {name} -->\n"
    for found in _SECTION.finditer(text):
        if found["name"] == name:
            return text[:found.start()] + block + text[found.end():]
    return text.rstrip("\n") + "\n\n" + block


def keep_sections(old: str, new: str) -> str:
    """`new` with the sections of `old` it does not have: `make bench` keeps what `make bench-e2e` wrote."""
    have = {found["name"] for found in _SECTION.finditer(new)}
    for found in _SECTION.finditer(old):
        if found["name"] not in have:
            new = replace_section(new, found["name"], found["body"])
    return new
