"""Hints per task: the concept, then the approach, then a sketch of that task only.

``coursekit/hints/exNN.toml`` holds one table per task::

    [[task]]
    number = 2
    concept = "..."    # a nudge towards the idea, no code
    approach = "..."   # the design decisions and traps of this task, in words
    sketch = "..."     # near-code fragments of this task only, never a whole function

Which hint comes next is remembered per exercise and per task, in a state
file that concurrent calls update atomically.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit import paths, statefile
from coursekit.catalog import Exercise

LEVELS = ("concept", "approach", "sketch")
MAX_SKETCH_CODE_LINES = 12


@dataclass(frozen=True)
class TaskHints:
    number: int
    texts: tuple[str, ...]  # in LEVELS order


def load(exercise: Exercise) -> dict[int, TaskHints]:
    """Every task's hints, by task number (raises for a malformed file: a course bug)."""
    data = tomllib.loads(exercise.hints_path.read_text(encoding="utf-8"))
    found: dict[int, TaskHints] = {}
    for entry in data.get("task", []):
        number = int(entry["number"])
        found[number] = TaskHints(number, tuple(str(entry[level]).strip() for level in LEVELS))
    return found


def problems(exercise: Exercise, public_names: set[str]) -> list[str]:
    """What breaks the hint conventions (for the course's own tests)."""
    found = []
    for task in load(exercise).values():
        for level, text in zip(LEVELS, task.texts, strict=True):
            if not text:
                found.append(f"task {task.number} {level}: empty")
            for name in public_names:
                if re.search(rf"\b(async\s+)?def\s+{re.escape(name)}\s*\(", text):
                    found.append(f"task {task.number} {level}: contains the whole of `{name}`")
            code_lines = [line for line in text.splitlines() if line.startswith("    ") and line.strip()]
            if len(code_lines) > MAX_SKETCH_CODE_LINES:
                count, most = len(code_lines), MAX_SKETCH_CODE_LINES
                found.append(f"task {task.number} {level}: {count} lines of code (max {most})")
    return found


def _state_file() -> Path:
    return paths.work_dir("learner") / "hints.json"


def next_level(exercise_id: str, task: int, total: int, *, level: int | None, reset: bool) -> int:
    """Record and return which hint (1-based) to show for this task."""
    key = f"{exercise_id}/task{task}"
    chosen = 1

    def change(state: Any) -> dict[str, int]:
        nonlocal chosen
        current: dict[str, int] = state if isinstance(state, dict) else {}
        shown = 0 if reset else int(current.get(key, 0))
        wanted = level if level is not None else shown + 1
        chosen = max(1, min(wanted, total))
        current[key] = max(shown, chosen)
        return current

    statefile.update_json(_state_file(), change)
    return chosen
