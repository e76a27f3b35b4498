"""Your test suite for the bookstore's cart service (exercise 07).

The service is ``cart.py`` in this folder: given code, and its docstring is the
contract your tests check. You write tests, not service code. Run them with
``pytest exercises/ex07_testing_strategies``; grade them with ``check("ex07")``.

How the suite is graded
    The grader runs this file against the correct service: every test must pass.
    Then it runs the file against faulty copies of ``cart.py``, each with one
    bug a real team has shipped (a bound, a rounding mode, an authorization check,
    an error handler, a race...). A faulty copy is caught when at least one test
    that passes on the correct service fails against it; one no test notices
    "survived", and ``check`` names it by what it does. Only tests that pass on the
    correct service count: a test that always fails catches nothing.

What the grader needs from this file
    - The service is imported relatively, ``from .cart import ...`` (or
      ``from . import cart``): that is the module the grader swaps for a faulty
      copy. ``from exercises...`` or ``from solutions...`` would test the wrong code.
    - The suite is plain pytest; async tests run with anyio (the fixture below
      picks asyncio). hypothesis may be used (the grader fixes its seed).
    - The grader runs the file 18 times in one process (the correct service first
      and last, each faulty copy in between): keep it fast (the reference suite, 22
      tests, takes about 0.05 s a run). A test that runs for more than 3 s is
      stopped and counts as failed. A test has to pass on both runs of the correct
      service to count: one that depends on what an earlier run left behind, on
      the clock or on unseeded random data catches nothing.
    - Nothing outside this file changes: the faulty copies are edits of the
      ``cart.py`` that ships with the course; keep it as it is.

Facts worth knowing
    - ``Decimal("11.2") == Decimal("11.20")`` is True, and a ``Decimal`` equals an
      ``int``; it never equals a float with the same digits (``Decimal("0.1") !=
      0.1``). ``pytest.approx`` accepts what is close, and money is exact.
    - ``CartService`` talks to the payment service through ``PaymentGateway``, a
      ``Protocol``: any object with an ``async def charge(customer, amount,
      reference) -> str`` method works, and a refusal is a raised
      ``PaymentDeclined``.
    - asyncio switches between tasks only where a task awaits something that is
      not ready yet; ``await anyio.lowlevel.checkpoint()`` (or ``anyio.sleep(0)``)
      is such a point, an ``async def`` that awaits nothing is not.
    - ``pytest.raises(X)`` passes for X and every subclass of X: every error the
      service raises on purpose is a ``CartError``.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
