"""docs/benchmarks.md: measured figures only inside the blocks committed scripts write; prose carries none."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BLOCK = re.compile(r"<!-- ([a-z0-9_-]+):begin -->.*?<!-- \1:end -->", re.S)
# What a measurement looks like: a time, a size, a distance, a rate or ratio, or a fraction such as 0.185.
FIGURE = re.compile(r"\d+(?:\.\d+)?\s*(?:ms|s\b|MB|MiB|GB|GiB|km|×|/s\b)|\b0\.\d+|\d+\.\d+\s*x\b")


def figures_outside_blocks(text: str) -> list[str]:
    """Figures in paragraphs outside the script-written blocks, except in a paragraph stating a target."""
    prose = BLOCK.sub("", text)
    found = []
    for paragraph in re.split(r"\n\s*\n", prose):
        if paragraph.lstrip().startswith("Target"):
            continue
        found += [f"{m.group(0)!r} in: {paragraph.strip()[:80]}…" for m in FIGURE.finditer(paragraph)]
    return found


def test_benchmark_figures_live_only_in_script_blocks():
    assert figures_outside_blocks(DOC.read_text(encoding="utf-8")) == []


def test_every_block_with_figures_names_the_script_that_wrote_it():
    for match in BLOCK.finditer(DOC.read_text(encoding="utf-8")):
        body = match.group(0).split("-->", 1)[1].rsplit("<!--", 1)[0]
        assert not re.search(r"\d", body) or re.search(r"benchmarks/[a-z_]+\.py", body), match.group(1)


def test_the_check_finds_a_hand_written_figure():
    assert figures_outside_blocks("Some prose.\n\nIt ran in 12.5 ms and reached 0.961.\n")
    assert not figures_outside_blocks("Target: p99 < 100 ms.\n\n<!-- x:begin -->\n0.5 s\n<!-- x:end -->\n")
