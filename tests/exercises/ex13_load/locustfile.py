"""The capstone's load journey for locust: log in once, then browse, list, view and order.

Run by ``coursekit.loadtest.run_locust(..., locustfile=<this file>)`` as a subprocess
(never imported into pytest or a kernel: gevent patches the process). Same protocol
as the course's bookstore locustfile: ``LAB_TARGETS`` (``label=url`` pairs),
``LAB_USERS`` (users per label), ``LAB_SUMMARY`` (where the totals and exact merged
percentiles of each label are written at the end). ``LAB_PASSWORD`` is the seeded
customers' password; each user logs in as the next seeded customer.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import StatsEntry

CUSTOMERS = [f"reader{number:02d}" for number in range(1, 25)]
BOOKS = 50
_next_customer = itertools.count()


class Customer(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    label = "app"

    def on_start(self) -> None:
        username = CUSTOMERS[next(_next_customer) % len(CUSTOMERS)]
        form = {"username": username, "password": os.environ.get("LAB_PASSWORD", "")}
        with self.client.post("/token", data=form, name=f"{self.label} login", catch_response=True) as answer:
            token = answer.json().get("access_token", "") if answer.status_code == 200 else ""
        self.headers = {"Authorization": f"Bearer {token}"}
        self.orders: list[int] = []

    @task(5)
    def browse(self) -> None:
        self.client.get(f"/books?limit={random.choice((10, 20))}", name=self.label)

    @task(3)
    def my_orders(self) -> None:
        self.client.get("/orders?limit=10", headers=self.headers, name=self.label)

    @task(1)
    def view(self) -> None:
        if self.orders:
            self.client.get(f"/orders/{random.choice(self.orders)}", headers=self.headers, name=self.label)

    @task(1)
    def order(self) -> None:
        body = {"lines": [{"book_id": random.randint(1, BOOKS), "quantity": 1}]}
        with self.client.post(
            "/orders", json=body, headers=self.headers, name=self.label, catch_response=True
        ) as answer:
            if answer.status_code == 201:
                self.orders.append(int(answer.json()["id"]))
                answer.success()
            elif answer.status_code == 409:  # sold out: the shop working as specified
                answer.success()
            else:
                answer.failure(f"status {answer.status_code}")


def _targets() -> dict[str, str]:
    pairs = [item.split("=", 1) for item in os.environ.get("LAB_TARGETS", "").split(",") if "=" in item]
    return {label.strip(): url.strip() for label, url in pairs}


_USERS = int(os.environ.get("LAB_USERS", "0"))
for _label, _url in _targets().items():
    _name = f"{_label.capitalize()}Customer"
    globals()[_name] = type(_name, (Customer,), {"host": _url, "label": _label, "fixed_count": _USERS})


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _write_summary(environment: Environment, **_kwargs: Any) -> None:
    path = os.environ.get("LAB_SUMMARY")
    if not path or isinstance(environment.runner, WorkerRunner) or environment.stats is None:
        return
    summary: dict[str, Any] = {"master": False}
    for label in _targets():
        merged = StatsEntry(environment.stats, label, "ALL")
        for entry in environment.stats.entries.values():
            if entry.name == label:  # the journey's requests; logins are counted apart
                merged.extend(entry)
        logins = [e for e in environment.stats.entries.values() if e.name == f"{label} login"]
        summary[label] = {
            "requests": merged.num_requests,
            "failures": merged.num_failures + sum(e.num_failures for e in logins),
            "rps": merged.total_rps,
            "p50": merged.get_response_time_percentile(0.50),
            "p95": merged.get_response_time_percentile(0.95),
            "p99": merged.get_response_time_percentile(0.99),
            "average": merged.avg_response_time,
        }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle)
