"""How fast is the learner's loop? Median wall time of ``check`` per exercise.

``python -m coursekit bench-check [NN ...] [--runs 5]`` times the whole command
a learner runs, as a separate process, several times:

- stub: ``check NN`` against ``exercises/`` (the pristine stubs on a clean clone);
- solved, first answer: ``check NN --impl solutions --fast`` (what a learner
  who solved it sees first, while the deep tests are still running);
- solved, complete: ``check NN --impl solutions``, deep tests included.

Medians, with the spread, so that one noisy run does not decide.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from coursekit import catalog, paths


def _time(args: Sequence[str], runs: int) -> tuple[float, float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "coursekit", *args], cwd=paths.ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), min(samples), max(samples)


def bench_check(exercises: Sequence[str] = (), runs: int = 5) -> str:
    chosen = [catalog.find(key) for key in exercises] or catalog.all_exercises()
    lines = [
        f"check wall time, median of {runs} (min-max), seconds",
        f"{'exercise':<9} {'stub':>16} {'solved: first answer':>22} {'solved: complete':>18}",
    ]
    for exercise in chosen:
        number = exercise.number
        cells = []
        for args in (["check", number], ["check", number, "--impl", "solutions", "--fast"],
                     ["check", number, "--impl", "solutions"]):  # fmt: skip
            median, low, high = _time(args, runs)
            cells.append(f"{median:5.2f} ({low:.1f}-{high:.1f})")
        lines.append(f"{exercise.id:<9} {cells[0]:>16} {cells[1]:>22} {cells[2]:>18}")
    return "\n".join(lines)
