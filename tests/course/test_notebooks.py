"""Every notebook follows the course skeleton and is stored clean.

Strict nbval (``make test``) re-runs each notebook and compares outputs; these
checks cover what nbval cannot see: structure, a clean-kernel run, no leaks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from coursekit import paths

NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
SKELETON = (
    "Learning objectives",
    "Prerequisites",
    "Time",
    "Your turn",
    "Key takeaways",
    "Further reading",
)
MACHINE_PATH = re.compile(
    r"(/work/|/root/|/home/\w+|/Users/\w+|/tmp/|site-packages|/usr/lib/python|[A-Z]:\\\\)"
)
# The data set spans 2024-2025; a later date in an output is the clock leaking in.
RUN_DATE = re.compile(r"\b20(2[6-9]|[3-9]\d)-\d\d-\d\d")
CLOCK = re.compile(r"\b(saved at|remembered from) \d\d:\d\d")
SECRET = re.compile(r"(eyJ[A-Za-z0-9_-]{20,}\.|token=[0-9a-f]{16,})")


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def source(cell: dict[str, Any]) -> str:
    return "".join(cell.get("source", ""))


def code_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and source(c).strip()]


def headings(nb: dict[str, Any]) -> list[str]:
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            found += [line[3:].strip() for line in source(cell).splitlines() if line.startswith("## ")]
    return found


def test_notebooks_exist() -> None:
    """The course has its first notebooks, numbered from 00."""
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["00", "01"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
class TestNotebook:
    def test_title_comes_first(self, path: Path) -> None:
        """The first cell is a markdown '# NN · Title' heading."""
        first = load(path)["cells"][0]
        assert first["cell_type"] == "markdown"
        assert source(first).startswith(f"# {path.name[:2]} · ")

    def test_skeleton_sections_in_order(self, path: Path) -> None:
        """Objectives, prerequisites, time, teaching sections, your turn, takeaways, reading."""
        found = headings(load(path))
        positions = []
        for wanted in SKELETON:
            matches = [i for i, h in enumerate(found) if h.startswith(wanted)]
            assert matches, f"missing '## {wanted}'"
            positions.append(matches[0])
        assert positions == sorted(positions), f"sections out of order: {found}"
        teaching = found[positions[2] + 1 : positions[3]]
        assert len(teaching) >= 2, "expected at least two teaching sections"

    def test_exercise_section_checks_its_own_exercise(self, path: Path) -> None:
        """After '## Your turn' a code cell runs check("exNN") for this notebook's NN."""
        nb = load(path)
        cells = nb["cells"]
        start = next(
            i for i, c in enumerate(cells)
            if c["cell_type"] == "markdown" and "## Your turn" in source(c)
        )  # fmt: skip
        calls = [source(c) for c in cells[start:] if c["cell_type"] == "code"]
        assert any(f'check("ex{path.name[:2]}")' in s for s in calls)

    def test_executed_in_order_from_a_clean_kernel(self, path: Path) -> None:
        """Every code cell ran, once, in order: execution counts are 1, 2, 3, ..."""
        counts = [c.get("execution_count") for c in code_cells(load(path))]
        assert counts == list(range(1, len(counts) + 1))

    def test_no_error_outputs_except_taught_errors(self, path: Path) -> None:
        """Error outputs appear only in cells tagged raises-exception."""
        for cell in code_cells(load(path)):
            tags = cell.get("metadata", {}).get("tags", [])
            errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
            assert not errors or "raises-exception" in tags, source(cell)[:80]

    def test_outputs_leak_nothing(self, path: Path) -> None:
        """No machine paths, run dates or tokens in stored outputs."""
        for cell in code_cells(load(path)):
            text = json.dumps(cell.get("outputs", []))
            text = re.sub(r'"image/png": "[^"]*"', "", text)
            for pattern in (MACHINE_PATH, RUN_DATE, CLOCK, SECRET):
                match = pattern.search(text)
                assert match is None, f"{match.group(0)!r} in output of: {source(cell)[:80]}"

    def test_variable_outputs_are_followed_by_an_assertion(self, path: Path) -> None:
        """A cell whose output nbval ignores is followed by a cell that asserts something."""
        cells = code_cells(load(path))
        for cell, following in zip(cells, [*cells[1:], None], strict=True):
            tags = cell.get("metadata", {}).get("tags", [])
            if "nbval-ignore-output" not in tags or "check(" in source(cell):
                continue
            asserted = "assert" in source(cell) or (following is not None and "assert" in source(following))
            assert asserted, f"unchecked variable output: {source(cell)[:80]}"
