"""ex07 · Write the test suite for the cart service; graded by mutation.

The learner's work is ``exercises/ex07_testing_strategies/test_cart.py``. These
tests run that suite in a child process (``ex07_faults/run_suite.py``): once
against the correct service, where every test must pass, and once against each
seeded faulty copy of the service (``ex07_faults/faults.toml``), where at least
one test that passes on the correct service must fail. A fault no test notices
"survives", and is named by what it does, never by its code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from coursekit.impl import load

ex = load("ex07_testing_strategies")

FAULTS_DIR = Path(__file__).resolve().parent / "ex07_faults"
RUNNER = FAULTS_DIR / "run_suite.py"
SUITE = Path(str(ex.__file__)).resolve().parent / "test_cart.py"
SUITE_TIME_LIMIT_S = 25.0  # every run of the suite together; one test gets 3 s
FAULTS = {f["name"]: f for f in tomllib.loads((FAULTS_DIR / "faults.toml").read_text("utf-8"))["fault"]}

# The first test starts the suite's runs (every service, one child process): that
# may take more than check's 5 s per test on a busy machine.
pytestmark = pytest.mark.time_limit(30)


@dataclass
class Grade:
    """What the learner's suite did against each service."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    problem: str = ""  # the suite could not be run at all, or not to the end

    def outcomes(self, service: str) -> dict[str, dict[str, str]]:
        return dict(self.runs.get(service, {}).get("outcomes", {}))

    def green(self) -> set[str]:
        """The tests that pass on the correct service, first and last: only they can catch a fault."""
        first = self.outcomes("correct")
        last = self.outcomes("correct-again") if "correct-again" in self.runs else first
        passed = [first, last]
        return {node for node in first if all(o.get(node, {}).get("outcome") == "passed" for o in passed)}


def _short(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


@cache
def grade() -> Grade:
    """Run the suite against every service, once per test session."""
    if not SUITE.exists():
        return Grade(problem=f"{SUITE.name} is missing from {SUITE.parent.name}/: the suite is your work")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEKIT_")}
    env.update({"NO_COLOR": "1", "PY_COLORS": "0"})
    with tempfile.TemporaryDirectory(prefix="ex07-") as scratch:
        results = Path(scratch) / "runs.jsonl"
        try:
            done = subprocess.run(
                [sys.executable, str(RUNNER), str(SUITE), str(results)],
                env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=SUITE_TIME_LIMIT_S, check=False,
            )  # fmt: skip
            problem = "" if done.returncode == 0 else _last_line(done.stderr or done.stdout)
        except subprocess.TimeoutExpired:
            problem = f"running your suite against every service took more than {SUITE_TIME_LIMIT_S:g} s"
        lines = results.read_text("utf-8").splitlines() if results.exists() else []
    runs = {run["service"]: run for run in map(json.loads, lines)}
    return Grade(runs=runs, problem=problem)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "the suite's process failed"


def assert_green_on_the_correct_service() -> None:
    __tracebackhide__ = True
    result = grade()
    run = result.runs.get("correct")
    if run is None:
        pytest.fail(f"your suite did not run: {result.problem}", pytrace=False)
    if run["errors"]:
        pytest.fail(f"{SUITE.name} could not be collected:\n{run['errors'][0]}", pytrace=False)
    outcomes = run["outcomes"]
    if not outcomes:
        pytest.fail(f"{SUITE.name} has no tests yet", pytrace=False)
    red = [f"{_short(n)}: {o['message']}" for n, o in outcomes.items() if o["outcome"] == "failed"]
    if red:
        pytest.fail(
            "on the correct service these tests do not pass (the service keeps its contract, "
            "so each expects something the contract does not say):\n  " + "\n  ".join(red),
            pytrace=False,
        )
    if "correct-again" not in result.runs:
        pytest.fail(f"your suite did not finish its runs: {result.problem}", pytrace=False)
    green = result.green()
    flaky = [_short(n) for n, o in outcomes.items() if o["outcome"] == "passed" and n not in green]
    if flaky:
        pytest.fail(
            "these tests passed on the correct service, then failed on it when run again after "
            "the faulty copies (they depend on something besides the service: state kept "
            "between runs, the clock, random data): " + ", ".join(flaky),
            pytrace=False,
        )


def assert_caught(fault: str) -> None:
    """At least one test that passes on the correct service fails against ``fault``."""
    __tracebackhide__ = True
    survived = f"{FAULTS[fault]['survived']} survived"
    result = grade()
    green = result.green()
    if not green:
        pytest.fail(f"{survived}: none of your tests passes on the correct service yet", pytrace=False)
    run = result.runs.get(fault)
    if run is None:
        pytest.fail(f"{survived}: your suite did not run against it ({result.problem})", pytrace=False)
    if "broken" in run:
        pytest.fail(run["broken"], pytrace=False)
    outcomes = run["outcomes"]
    caught = [n for n in green if outcomes.get(n, {}).get("outcome", "failed") != "passed"]
    if not caught:
        pytest.fail(
            f"{survived}: every test that passes on the correct service passed against it too", pytrace=False
        )


class TestYourSuite:
    """Task 1: a suite that passes on the correct service."""

    def test_the_suite_passes_on_the_correct_service(self) -> None:
        """Your suite has tests, and every one passes against the correct cart service."""
        assert_green_on_the_correct_service()


class TestPrices:
    """Task 2: prices, discounts and rounding."""

    def test_bulk_discount_threshold(self) -> None:
        """A bulk discount that starts at 11 copies instead of 10 makes a test of yours fail."""
        assert_caught("bulk-from-11")

    def test_rounding_mode(self) -> None:
        """Rounding half-to-even instead of half-up makes a test of yours fail."""
        assert_caught("bankers-rounding")

    def test_code_applied_twice(self) -> None:
        """A discount code that counts twice when applied twice makes a test of yours fail."""
        assert_caught("codes-stack")

    def test_total_below_zero(self) -> None:
        """A total that goes below 0.00 makes a test of yours fail."""
        assert_caught("negative-total")

    def test_code_case(self) -> None:
        """Discount codes matched case-sensitively make a test of yours fail."""
        assert_caught("case-sensitive-codes")


class TestStock:
    """Task 3: stock and bad input."""

    def test_last_copy(self) -> None:
        """Refusing the last copy in stock makes a test of yours fail."""
        assert_caught("last-copy-refused")

    def test_zero_quantity(self) -> None:
        """Accepting a quantity of 0 makes a test of yours fail."""
        assert_caught("zero-quantity")

    def test_copies_already_in_the_cart(self) -> None:
        """Checking stock per add, forgetting the copies already in the cart, makes a test of yours fail."""
        assert_caught("stock-per-add")

    def test_unknown_isbn(self) -> None:
        """An unknown ISBN reported with the wrong error makes a test of yours fail."""
        assert_caught("unknown-isbn-out-of-stock")


class TestAuthorization:
    """Task 4: who may change a cart."""

    def test_stranger_adds(self) -> None:
        """Letting another customer add to someone's cart makes a test of yours fail."""
        assert_caught("anyone-may-add")

    def test_stranger_checks_out(self) -> None:
        """Letting another customer check out someone's cart makes a test of yours fail."""
        assert_caught("anyone-may-check-out")


class TestCheckout:
    """Task 5: checkout and payment failures."""

    def test_decline_swallowed(self) -> None:
        """Swallowing a declined payment makes a test of yours fail."""
        assert_caught("decline-swallowed")

    def test_stock_after_decline(self) -> None:
        """Keeping the stock after a declined payment makes a test of yours fail."""
        assert_caught("stock-kept-after-decline")

    def test_amount_charged(self) -> None:
        """Charging the price before the discount makes a test of yours fail."""
        assert_caught("charged-before-discount")

    def test_paid_cart_closed(self) -> None:
        """A paid cart that stays open makes a test of yours fail."""
        assert_caught("cart-stays-open")


class TestConcurrency:
    """Task 6: concurrent checkouts."""

    def test_oversell_race(self) -> None:
        """Concurrent checkouts selling more copies than are in stock make a test of yours fail."""
        assert_caught("stock-taken-after-payment")
