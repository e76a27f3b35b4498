"""Run exercise tests against one implementation, in a subprocess, and summarise.

The subprocess matters: a learner's module may hang, crash or leave state
behind; the notebook kernel (or the invariant test) must survive all of that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coursekit import paths
from coursekit.impl import IMPL_ENV, Impl
from coursekit.results_plugin import RESULTS_ENV

DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str
    outcome: str  # "passed" | "failed" | "skipped"
    message: str = ""
    doc: str = ""
    task_doc: str = ""
    markers: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def file(self) -> str:
        return self.nodeid.split("::", 1)[0]

    @property
    def task(self) -> str:
        """The test class ('TestMoney' -> 'Money'), or the file for loose tests."""
        parts = self.nodeid.split("::")
        if len(parts) >= 3 and parts[1].startswith("Test"):
            return _words(parts[1].removeprefix("Test"))
        return "(collection)" if len(parts) == 1 else "general"

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]


@dataclass
class RunResult:
    outcomes: list[TestOutcome] = field(default_factory=list)
    returncode: int = 0
    output: str = ""

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.outcome == "failed" for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and self.failed == 0 and self.returncode == 0

    def for_file(self, test_path: Path) -> RunResult:
        rel = _relative(test_path)
        subset = [o for o in self.outcomes if o.file == rel]
        return RunResult(outcomes=subset, returncode=0 if subset else 5, output=self.output)


def _words(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", camel) or camel


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(paths.ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def run_tests(
    test_paths: Sequence[Path],
    impl: Impl,
    *,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RunResult:
    """Run ``pytest`` on ``test_paths`` with ``COURSE_IMPL=impl``; never raises for test failures."""
    with tempfile.TemporaryDirectory(prefix="coursekit-") as scratch:
        results_file = Path(scratch) / "results.json"
        child_env = {**os.environ, **(env or {}), IMPL_ENV: impl, RESULTS_ENV: str(results_file)}
        command = [
            sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:cacheprovider",
            # nbval's import alone costs seconds (jsonschema format checkers) and
            # locust's plugin is for locustfiles: neither is needed for exercises.
            "-p", "no:nbval", "-p", "no:locust",
            # Only each failure's one-line message is read back; printing full
            # tracebacks for a whole failing stub would triple the run time.
            "--tb=no",
            "-p", "coursekit.results_plugin", *extra_args, *map(str, test_paths),
        ]  # fmt: skip
        try:
            completed = subprocess.run(
                command, cwd=cwd or paths.ROOT, env=child_env, capture_output=True,
                text=True, timeout=timeout_s, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout if isinstance(exc.stdout, str) else ""
            timeout = TestOutcome("(run)", "failed", f"tests did not finish within {timeout_s:.0f} s")
            return RunResult([timeout], returncode=124, output=output)
        records = json.loads(results_file.read_text()) if results_file.exists() else []
    outcomes = [
        TestOutcome(
            nodeid=r["nodeid"], outcome=r["outcome"], message=r["message"], doc=r["doc"],
            task_doc=r["task_doc"], markers=tuple(r["markers"]),
        )
        for r in records
    ]  # fmt: skip
    if not outcomes and completed.returncode not in (0, 5):
        tail = (completed.stdout + completed.stderr).strip().splitlines()[-3:]
        outcomes = [TestOutcome("(run)", "failed", " / ".join(tail) or "pytest failed to start")]
    return RunResult(outcomes, completed.returncode, completed.stdout + completed.stderr)
