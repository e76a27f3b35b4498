"""The lab's benchmark: hello world, naive and tuned, side by side, for longer.

    python -m coursekit bench                       # make bench
    python -m coursekit bench --users 32 --seconds 60

Starts the three apps under uvicorn (one worker each, on free ports, always
stopped), drives them in one locust run with the same number of users each,
and prints requests/s, p50, p95, p99 and failures per app. The last line is
for scripts and reads exactly:

    tuned/naive: <R>x req/s at <U> users; tuned/ceiling: <P>%; failures: <F>

Targets on an idle 2-core machine (COURSE_DESIGN §6): R >= 10, P >= 50, F = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coursekit.loadtest import LoadResult, run_locust
from coursekit.servers import start_app

__all__ = ["APPS", "BenchResult", "run_bench"]

APPS: dict[str, tuple[str, dict[str, Any]]] = {
    "hello": ("coursekit.hello_app:create_app", {}),
    "naive": ("coursekit.labapp_naive:create_app", {"database": "bench_naive"}),
    "tuned": ("solutions.ex10_lab_app:create_app", {"database": "bench_tuned"}),
}


@dataclass(frozen=True)
class BenchResult:
    result: LoadResult

    @property
    def speedup(self) -> float:
        return self.result.rps("tuned") / max(self.result.rps("naive"), 1e-9)

    @property
    def of_ceiling(self) -> float:
        return self.result.rps("tuned") / max(self.result.rps("hello"), 1e-9)

    def last_line(self) -> str:
        return (
            f"tuned/naive: {self.speedup:.1f}x req/s at {self.result.users} users; "
            f"tuned/ceiling: {self.of_ceiling * 100:.0f}%; failures: {self.result.failures()}"
        )

    def report(self) -> str:
        return f"{self.result.table()}\n{self.last_line()}"


def run_bench(users: int = 16, seconds: float = 30.0, processes: int | None = None) -> BenchResult:
    """One locust run over the three apps at ``users`` users each."""
    started = []
    try:
        targets = {}
        for label, (target, kwargs) in APPS.items():
            server = start_app(target, **kwargs)
            started.append(server)
            targets[label] = server.url
        return BenchResult(run_locust(targets, users=users, seconds=seconds, processes=processes))
    finally:
        for server in started:
            server.stop()
