"""The bookstore journey under a step load: find the knee.

``LAB_STEPS`` lists the user counts (e.g. ``5,10,20,40``), each held for
``LAB_STEP_SECONDS``; then the run stops. Give users a think time
(``LAB_THINK_S``) so that each one asks for a bounded rate: requests per second
then grow with users until the app saturates (the knee); after it, more users
only queue: latency grows, throughput does not.
"""

from __future__ import annotations

import os

import locust.stats
from locust import LoadTestShape

from coursekit.locustfiles.bookstore import *  # noqa: F403  (the user classes of LAB_TARGETS)
from coursekit.locustfiles.bookstore import _write_summary  # noqa: F401  (the summary listener)

STEPS = [int(users) for users in os.environ.get("LAB_STEPS", "5,10,20,40").split(",")]
STEP_SECONDS = float(os.environ.get("LAB_STEP_SECONDS", "3"))

# The history's percentiles cover a sliding window (10 s by default); one step's
# worth keeps each step's latency apart from the previous step's.
locust.stats.CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW = max(1, int(STEP_SECONDS))


class StepLoad(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        step = int(self.get_run_time() // STEP_SECONDS)  # type: ignore[no-untyped-call]
        if step >= len(STEPS):
            return None
        return STEPS[step], float(STEPS[step])  # each step's users start within a second
