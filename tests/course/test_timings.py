"""Time estimates have one source of truth: coursekit/timings.toml.

Each notebook's "## Time" section and the instructor guide's table say the same.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from coursekit import paths

TIMINGS = {
    entry["number"]: (int(entry["reading"]), int(entry["exercise"]))
    for entry in tomllib.loads((paths.ROOT / "coursekit" / "timings.toml").read_text())["notebook"]
}
NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))


def time_section(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return text[text.index("## Time") :].split("\n## ", 1)[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_time_matches_the_source_of_truth(path: Path) -> None:
    """'About T minutes: R reading and running, E for the exercise.' with T = R + E from timings.toml."""
    reading, exercise = TIMINGS[path.name[:2]]
    expected = (
        f"About {reading + exercise} minutes: {reading} reading and running, {exercise} for the exercise."
    )
    assert expected in time_section(path)


def test_instructor_guide_matches_the_source_of_truth() -> None:
    """The guide's timings table lists every notebook with the same total and exercise minutes."""
    guide = (paths.ROOT / "docs" / "instructor-guide.md").read_text(encoding="utf-8")
    found = re.findall(r"^\| (\d\d) [^|]+\| (\d+) min \| (\d+) \|", guide, re.M)
    rows = {number: (int(total), int(exercise)) for number, total, exercise in found}
    assert rows == {n: (r + e, e) for n, (r, e) in TIMINGS.items()}


def test_readme_course_map_matches_the_source_of_truth() -> None:
    """The README's course map lists every notebook with its time and prerequisites from timings.toml."""
    entries = tomllib.loads((paths.ROOT / "coursekit" / "timings.toml").read_text())["notebook"]
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"^\| (\d\d) \|[^|]+\|[^|]+\| (\d+) min \| ([^|]+) \|$", readme, re.M)
    rows = {number: (int(minutes), after.strip()) for number, minutes, after in found}
    expected = {
        e["number"]: (int(e["reading"]) + int(e["exercise"]), ", ".join(e.get("prerequisites", [])) or "–")
        for e in entries
    }
    assert rows == expected
