"""A bookstore shopper's journey for locust: browse, search, view a book, order.

Run by :mod:`coursekit.loadtest` as ``python -m locust -f <this file>``, never
imported into a notebook kernel or pytest (gevent patches the process). The
targets come from the environment, so one run drives several apps side by side:

- ``LAB_TARGETS``: ``label=url`` pairs separated by commas, e.g.
  ``naive=http://127.0.0.1:8001,tuned=http://127.0.0.1:8002``. Each label gets
  its own user class with ``LAB_USERS`` users (a fixed count, not a weight).
- ``LAB_THINK_S``: each user's pause between requests (default 0).
- ``LAB_SUMMARY``: where the master writes each label's totals and exact
  percentiles (JSON) when the run ends.

Every request of a label is named after the label, so locust's stats (and its
CSV files) have one row per label and method. By default users have no think
time: the lab measures capacity, and locust is a closed loop (a user sends its
next request only when the previous one has answered).
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry

GENRES = ("business", "cooking", "biography", "fantasy", "history", "science")
WORDS = ("garden", "shadow", "crown", "river", "secret", "night", "summer", "clock", "orbit", "stone")
BOOKS, CUSTOMERS = 2000, 5000


class Shopper(FastHttpUser):
    """Weighted journey: mostly browsing, some searching and viewing, few orders."""

    abstract = True
    wait_time = constant(float(os.environ.get("LAB_THINK_S", "0")))
    label = "app"

    @task(10)
    def browse(self) -> None:
        after = 20 * random.randrange(10)  # the first ten pages: where shoppers are
        genre = random.choice(GENRES)
        url = f"/books?after={after}" if random.random() < 0.5 else f"/books?genre={genre}&after={after}"
        self.client.get(url, name=self.label)

    @task(4)
    def search(self) -> None:
        self.client.get(f"/search?q={random.choice(WORDS)}", name=self.label)

    @task(5)
    def view(self) -> None:
        self.client.get(f"/books/{random.randint(1, BOOKS)}", name=self.label)

    @task(1)
    def order(self) -> None:
        body = {
            "customer_id": random.randint(1, CUSTOMERS),
            "lines": [{"book_id": random.randint(1, BOOKS), "quantity": 1}],
        }
        with self.client.post("/orders", json=body, name=self.label, catch_response=True) as response:
            # A sold-out book (409) is the shop working as specified, not a failure.
            if response.status_code in (201, 409):
                response.success()
            else:
                response.failure(f"status {response.status_code}")


def _targets() -> dict[str, str]:
    pairs = [item.split("=", 1) for item in os.environ.get("LAB_TARGETS", "").split(",") if "=" in item]
    return {label.strip(): url.strip() for label, url in pairs}


_USERS = int(os.environ.get("LAB_USERS", "0"))
for _label, _url in _targets().items():
    _name = f"{_label.capitalize()}Shopper"
    globals()[_name] = type(_name, (Shopper,), {"host": _url, "label": _label, "fixed_count": _USERS})


def label_summary(stats: Any, labels: list[str]) -> dict[str, dict[str, float]]:
    """Totals per label, its GET and POST rows merged (exact merged percentiles)."""
    summary = {}
    for label in labels:
        merged = StatsEntry(stats, label, "ALL")
        for entry in stats.entries.values():
            if entry.name == label:
                merged.extend(entry)
        summary[label] = {
            "requests": merged.num_requests,
            "failures": merged.num_failures,
            "rps": merged.total_rps,
            "p50": merged.get_response_time_percentile(0.50),
            "p95": merged.get_response_time_percentile(0.95),
            "p99": merged.get_response_time_percentile(0.99),
            "average": merged.avg_response_time,
        }
    return summary


# locust is untyped: its decorator makes this function untyped for mypy.
@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _write_summary(environment: Environment, **_kwargs: Any) -> None:
    path = os.environ.get("LAB_SUMMARY")
    if not path or isinstance(environment.runner, WorkerRunner) or environment.stats is None:
        return
    labels = list(_targets())
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "master": isinstance(environment.runner, MasterRunner),
                **label_summary(environment.stats, labels),
            },
            handle,
        )
