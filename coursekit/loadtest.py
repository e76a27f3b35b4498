"""Run locust headless in a subprocess, read its results, plot them.

    with start_app(...) as naive, start_app(...) as tuned:
        result = run_locust({"naive": naive.url, "tuned": tuned.url}, users=10, seconds=8)
    print(result.table())
    plot_over_time(result)

Locust is never imported here: it runs as ``python -m locust`` (gevent
monkey-patches the process that imports it, which hangs a Jupyter kernel). The
run writes locust's own CSV files (``--csv``, ``--csv-full-history``) and, via
the locustfile, each label's exact merged percentiles; this module reads both.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from coursekit import paths, runs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BOOKSTORE_LOCUSTFILE",
    "STEP_LOCUSTFILE",
    "LoadResult",
    "LocustError",
    "plot_over_time",
    "plot_side_by_side",
    "run_locust",
    "run_locust_distributed",
]

LOCUSTFILES: Final = Path(__file__).resolve().parent / "locustfiles"
BOOKSTORE_LOCUSTFILE: Final = LOCUSTFILES / "bookstore.py"
STEP_LOCUSTFILE: Final = LOCUSTFILES / "stepload.py"
METRICS: Final = ("requests", "failures", "rps", "p50", "p95", "p99")


class LocustError(RuntimeError):
    """Locust exited without results; the message carries the end of its output."""


@dataclass
class LoadResult:
    """One locust run: totals per label and locust's once-a-second history."""

    users: int
    seconds: float
    summary: dict[str, dict[str, float]]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return list(self.summary)

    def rps(self, label: str) -> float:
        return float(self.summary[label]["rps"])

    def failures(self) -> int:
        return int(sum(row["failures"] for row in self.summary.values()))

    def table(self) -> str:
        """Requests/s, p50, p95, p99 (ms) and failures per label, as aligned text."""
        header = ("app", "users", "requests", "req/s", "p50", "p95", "p99", "failures")
        lines = [
            f"{header[0]:<8} "
            + " ".join(f"{h:>{w}}" for h, w in zip(header[1:], (5, 9, 8, 6, 6, 6, 8), strict=True))
        ]
        for label, row in self.summary.items():
            lines.append(
                f"{label:<8} {self.users:>5} {row['requests']:>9.0f} {row['rps']:>8.1f} {row['p50']:>6.0f}"
                f" {row['p95']:>6.0f} {row['p99']:>6.0f} {row['failures']:>8.0f}"
            )
        return "\n".join(lines)

    def steps(self, label: str) -> list[dict[str, float]]:
        """One row per user count of a stepped run: users, requests/s (from the request
        counts at the step's ends) and the GET p50/p95 seen at the step's last second."""
        rows = [row for row in self.history if row["label"] == label]
        found: list[dict[str, float]] = []
        previous_end: dict[str, Any] | None = None
        for index, row in enumerate(rows):
            last_of_step = index == len(rows) - 1 or rows[index + 1]["users"] != row["users"]
            if not last_of_step:
                continue
            if previous_end is not None and row["t"] > previous_end["t"]:
                rps = (row["count"] - previous_end["count"]) / (row["t"] - previous_end["t"])
                found.append(
                    {"users": row["users"], "rps": rps, "p50": row["p50"] or 0, "p95": row["p95"] or 0}
                )
            previous_end = row
        return found

    def series(self, label: str, column: str) -> tuple[list[float], list[float]]:
        """(seconds since start, values) of a label's history: ``rps``, ``p50``, ``p95`` or ``users``."""
        points = [
            (row["t"], row[column])
            for row in self.history
            if row["label"] == label and row[column] is not None
        ]
        return [t for t, _ in points], [v for _, v in points]


def _environment(
    targets: dict[str, str], users: int, summary: Path, extra: dict[str, str] | None
) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["LAB_TARGETS"] = ",".join(f"{label}={url}" for label, url in targets.items())
    env["LAB_USERS"] = str(users)
    env["LAB_SUMMARY"] = str(summary)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.ROOT), env.get("PYTHONPATH", "")]))
    return env


def _locust(locustfile: Path) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
        "--loglevel", "WARNING", "--stop-timeout", "1", "--exit-code-on-error", "0",
    ]  # fmt: skip


def _run(commands: list[list[str]], env: dict[str, str], timeout: float) -> str:
    """Run locust processes (a master and its workers, or one process); kill them all on any exit."""
    procs = [
        subprocess.Popen(
            command,
            env=env,
            cwd=paths.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for command in commands
    ]
    try:
        output, _ = procs[0].communicate(timeout=timeout)
        for worker in procs[1:]:
            worker.wait(timeout=10)
        return output.decode(errors="replace")
    finally:
        for process in procs:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()


def run_locust(
    targets: dict[str, str],
    users: int,
    seconds: float,
    *,
    locustfile: Path = BOOKSTORE_LOCUSTFILE,
    processes: int | None = None,
    shape: bool = False,
    env: dict[str, str] | None = None,
) -> LoadResult:
    """One headless locust run driving every target side by side, ``users`` users each.

    ``processes``: locust's ``--processes`` (that many worker processes plus a
    master on this machine). ``shape=True``: the locustfile's LoadTestShape
    decides users and duration (``users`` and ``seconds`` are ignored).
    """
    folder = runs.run_dir("locust", f"{time.monotonic_ns()}")
    summary = folder / "summary.json"
    command = [*_locust(locustfile), "--csv", str(folder / "run"), "--csv-full-history"]
    if not shape:
        total = users * len(targets)
        command += ["-u", str(total), "-r", str(total), "-t", f"{seconds:g}s"]
    if processes:
        command += ["--processes", str(processes)]
    output = _run([command], _environment(targets, 0 if shape else users, summary, env), timeout=seconds + 60)
    return _read(folder, users, seconds, output)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_locust_distributed(
    targets: dict[str, str], users: int, seconds: float, *, workers: int = 2
) -> LoadResult:
    """Explicit ``--master`` plus ``--worker`` processes talking over loopback (as across machines)."""
    folder = runs.run_dir("locust", f"{time.monotonic_ns()}")
    port = _free_port()
    total = users * len(targets)
    master = [
        *_locust(BOOKSTORE_LOCUSTFILE),
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "--expect-workers", str(workers), "--expect-workers-max-wait", "30",
        "-u", str(total), "-r", str(total), "-t", f"{seconds:g}s",
        "--csv", str(folder / "run"), "--csv-full-history",
    ]  # fmt: skip
    worker = [
        sys.executable, "-m", "locust", "-f", str(BOOKSTORE_LOCUSTFILE), "--worker",
        "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING",
    ]  # fmt: skip
    env = _environment(targets, users, folder / "summary.json", None)
    output = _run([master] + [worker] * workers, env, timeout=seconds + 90)
    return _read(folder, users, seconds, output)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "N/A" before the first answer
        return None


def _read(folder: Path, users: int, seconds: float, output: str) -> LoadResult:
    summary_path = folder / "summary.json"
    if not summary_path.exists():
        tail = "\n".join(output.strip().splitlines()[-20:])
        raise LocustError(f"locust wrote no results\n--- locust output ---\n{tail}")
    raw = json.loads(summary_path.read_text(encoding="utf-8"))
    summary = {label: values for label, values in raw.items() if isinstance(values, dict)}
    return LoadResult(
        users=users,
        seconds=seconds,
        summary=summary,
        history=_history(folder / "run_stats_history.csv", list(summary)),
    )


def _history(path: Path, labels: list[str]) -> list[dict[str, Any]]:
    """Per label and second: users, requests/s and requests so far (GET and POST summed), GET p50 and p95."""
    if not path.exists():
        return []
    by_key: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
    start: int | None = None
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] not in labels:
                continue
            stamp = int(row["Timestamp"])
            start = stamp if start is None else min(start, stamp)
            point = by_key[(stamp, row["Name"])]
            point["users"] = int(row["User Count"])
            point["rps"] = point.get("rps", 0.0) + (_number(row["Requests/s"]) or 0.0)
            point["count"] = point.get("count", 0) + int(row["Total Request Count"])
            if row["Type"] == "GET":
                point["p50"], point["p95"] = _number(row["50%"]), _number(row["95%"])
    return [
        {
            "t": stamp - (start or 0),
            "label": label,
            "users": point["users"],
            "rps": point["rps"],
            "count": point["count"],
            "p50": point.get("p50"),
            "p95": point.get("p95"),
        }
        for (stamp, label), point in sorted(by_key.items())
    ]


def plot_over_time(result: LoadResult, title: str = "") -> Figure:
    """Requests/s and GET p50/p95 over the run, one line per label."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    throughput, latency = figure.subplots(1, 2)
    for label in result.labels:
        t, rps = result.series(label, "rps")
        line = throughput.plot(t, rps, label=label)[0]
        t95, p95 = result.series(label, "p95")
        t50, p50 = result.series(label, "p50")
        latency.plot(t95, p95, color=line.get_color(), label=f"{label} p95")
        latency.plot(t50, p50, color=line.get_color(), linestyle="--", label=f"{label} p50")
    throughput.set(xlabel="seconds", ylabel="requests/s", title="throughput")
    latency.set(xlabel="seconds", ylabel="ms", yscale="log", title="latency (GET, last 10 s window)")
    throughput.legend()
    latency.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


def plot_side_by_side(result: LoadResult, title: str = "") -> Figure:
    """Bars: requests/s per label, and p50/p95/p99 per label (log scale)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    throughput, latency = figure.subplots(1, 2)
    labels = result.labels
    throughput.bar(
        labels, [result.rps(label) for label in labels], color=[f"C{i}" for i in range(len(labels))]
    )
    throughput.set(ylabel="requests/s", title=f"throughput at {result.users} users each")
    width = 0.25
    for offset, metric in enumerate(("p50", "p95", "p99")):
        xs = [i + (offset - 1) * width for i in range(len(labels))]
        latency.bar(xs, [max(result.summary[label][metric], 1) for label in labels], width, label=metric)
    latency.set_xticks(range(len(labels)), labels)
    latency.set(ylabel="ms", yscale="log", title="latency percentiles")
    latency.legend()
    if title:
        figure.suptitle(title)
    return figure
