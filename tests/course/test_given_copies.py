"""Code the course keeps in two places stays one piece of code.

- ex07's cart service is given to the learner and to the reference suite alike: the
  grader's verdicts are only fair if both test the same service.
- coursekit/labapp_naive.py is notebook 10's frozen copy of the naive lab app (the
  baseline of the load tests, which learners must not be able to edit away): it must
  stay the stub's code, below the module docstring.
- ex13's infrastructure (settings, schema, seed, fake payment service, server,
  migrations) is given whole to the learner and to the reference alike.

Maintainers only: a learner's own edits to exercises/ must not turn `make test` red.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit import paths

pytestmark = pytest.mark.maintainers


def code_below_docstring(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("\nfrom __future__ import annotations") :]


def test_ex07_cart_service_is_the_same_for_learner_and_reference() -> None:
    """exercises/ and solutions/ hold one cart service, byte for byte."""
    given = paths.EXERCISES_DIR / "ex07_testing_strategies" / "cart.py"
    reference = paths.SOLUTIONS_DIR / "ex07_testing_strategies" / "cart.py"
    assert given.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")


def test_frozen_naive_lab_app_is_the_ex10_stub() -> None:
    """coursekit/labapp_naive.py is the ex10 stub's code (docstrings aside)."""
    frozen = paths.ROOT / "coursekit" / "labapp_naive.py"
    stub = paths.EXERCISES_DIR / "ex10_lab_app.py"
    assert code_below_docstring(frozen) == code_below_docstring(stub)


EX13_GIVEN = (
    "settings.py", "models.py", "database.py", "fake_payments.py", "server.py",
    "migrations/env.py", "migrations/script.py.mako", "migrations/versions/c0001_orders_service.py",
)  # fmt: skip


@pytest.mark.parametrize("name", EX13_GIVEN)
def test_ex13_given_modules_are_the_same_for_learner_and_reference(name: str) -> None:
    """ex13's infrastructure (settings, schema, seed, fake payment service, server, migrations) is one piece of code."""
    given = paths.EXERCISES_DIR / "ex13_capstone" / name
    reference = paths.SOLUTIONS_DIR / "ex13_capstone" / name
    assert given.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")
