"""Typed bookstore domain model

Model the core of the bookstore with modern, typed Python. Work through the
tasks in order; ``check("ex01")`` (or ``make check EX=01``) tells you which
pass. The tests also run ``mypy --strict`` on this file, so type everything.

1. ``Money``: an immutable amount in one currency, exact (``Decimal``, never float).
2. ``normalize_isbn13``: clean up and validate an ISBN-13 (check digit included).
3. ``Book``, ``OrderLine``, ``Order``: Pydantic v2 models that refuse invalid data,
   with an order-level invariant and a computed total.
4. ``InMemoryRepository``: a generic repository that satisfies the ``Repository``
   protocol, precise enough for ``mypy --strict`` to catch misuse.
5. ``Settings``: configuration read from ``BOOKSTORE_*`` environment variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Protocol, Self

from pydantic import AfterValidator, BaseModel
from pydantic_settings import BaseSettings

__all__ = [
    "ISBN13",
    "Book",
    "CurrencyMismatchError",
    "InMemoryRepository",
    "Money",
    "Order",
    "OrderLine",
    "Repository",
    "Settings",
    "normalize_isbn13",
]


class CurrencyMismatchError(ValueError):
    """Adding euros to dollars is a bug, not a conversion."""


# ---------------------------------------------------------------- task 1: Money
@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of money in one currency, e.g. ``Money(Decimal("12.50"), "EUR")``.

    TODO 1a. ``__post_init__`` validates, at run time (type hints do not stop an
        untyped caller):
        - ``amount`` must be a ``Decimal`` (a float raises ``TypeError``);
        - at most 2 decimal places (``Decimal("1.005")`` raises ``ValueError``:
          refuse, never round silently) and finite;
        - ``currency`` is 3 upper-case letters (``"EUR"``), else ``ValueError``;
        - then normalise the amount to exactly 2 places, so ``Money.of("5")``
          equals, hashes like and prints like ``Money.of("5.00")`` ("5.00 EUR").
          (The class is frozen: use ``object.__setattr__``.)
    TODO 1b. ``of("9.99")`` builds from str/int/Decimal; a float raises ``TypeError``.
    TODO 1c. ``+`` and ``-`` between the same currency; different currencies raise
        ``CurrencyMismatchError``. ``* n`` by an int quantity only (else ``TypeError``).
    TODO 1d. ``str(Money.of("12.5"))`` is ``"12.50 EUR"``.
    """

    amount: Decimal
    currency: str = "EUR"

    def __post_init__(self) -> None:
        raise NotImplementedError("TODO 1a")

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = "EUR") -> Self:
        raise NotImplementedError("TODO 1b")

    def __add__(self, other: Money) -> Money:
        raise NotImplementedError("TODO 1c")

    def __sub__(self, other: Money) -> Money:
        raise NotImplementedError("TODO 1c")

    def __mul__(self, quantity: int) -> Money:
        raise NotImplementedError("TODO 1c")

    def __str__(self) -> str:
        raise NotImplementedError("TODO 1d")


# ---------------------------------------------------------------- task 2: ISBN-13
def normalize_isbn13(raw: str) -> str:
    """Return the 13 digits of a valid ISBN-13; raise ``ValueError`` otherwise.

    TODO 2. Remove hyphens and spaces ("978-0-306-40615-7" -> "9780306406157").
    Then require: exactly 13 ASCII digits (careful: ``"٣".isdigit()`` is True),
    prefix 978 or 979, and a correct check digit: with weights 1, 3, 1, 3, ...
    over all 13 digits, the weighted sum is a multiple of 10.
    """
    raise NotImplementedError("TODO 2")


# Given: a reusable validated type. Any field typed ISBN13 runs normalize_isbn13.
ISBN13 = Annotated[str, AfterValidator(normalize_isbn13)]


# ---------------------------------------------------------------- task 3: models
class Book(BaseModel):
    """TODO 3a. A catalogue entry. Make Pydantic enforce:

    - unknown fields are refused (``extra_forbidden``), surrounding whitespace
      is stripped from strings, and instances are immutable;
    - ``isbn`` is an ``ISBN13``; ``title`` has 1-200 characters (after stripping);
    - ``price`` is a ``Decimal`` >= 0 with at most 2 decimal places (10 digits);
    - ``currency`` is 3 upper-case letters, default ``"EUR"``.
    All problems are reported together, each with its field as ``loc``.
    """

    isbn: ISBN13
    title: str
    price: Decimal
    currency: str = "EUR"


class OrderLine(BaseModel):
    """TODO 3b. ``isbn`` (ISBN13), ``quantity`` a *strict* int from 1 to 99 (the
    string "2" is refused), ``unit_price`` as Book.price. Unknown fields refused."""

    isbn: ISBN13
    quantity: int
    unit_price: Decimal


class Order(BaseModel):
    """TODO 3c. ``customer_id`` > 0, ``currency`` (as Book), ``lines``: 1 to 50 lines.

    Invariant (a model validator): each book appears on at most one line (compare
    the *normalised* ISBNs). ``total()`` returns the sum of quantity x unit price
    as ``Money`` in the order's currency.
    """

    customer_id: int
    currency: str = "EUR"
    lines: list[OrderLine]

    def total(self) -> Money:
        raise NotImplementedError("TODO 3c")


# ---------------------------------------------------------------- task 4: generics
class Repository(Protocol):
    """TODO 4a. Make this protocol generic in the key and item types, so that
    ``Repository[str, Book]`` describes ``add(key, item)``, ``get(key) -> item or
    None`` and ``list() -> list of items``. (Hint: keys only go in.)"""

    def add(self, key, item):
        ...

    def get(self, key):
        ...

    def list(self):
        ...


class InMemoryRepository:
    """TODO 4b. A dict-backed repository, generic in key and item type, so that
    ``InMemoryRepository[str, Book]()`` satisfies ``Repository[str, Book]`` and
    ``repo.add("k", 42)`` is a mypy error. Adding an existing key raises ``KeyError``;
    ``get`` of a missing key returns ``None``; ``list`` returns items in insertion order."""

    def add(self, key, item):
        raise NotImplementedError("TODO 4b")

    def get(self, key):
        raise NotImplementedError("TODO 4b")

    def list(self):
        raise NotImplementedError("TODO 4b")


# ---------------------------------------------------------------- task 5: settings
class Settings(BaseSettings):
    """TODO 5. Read ``BOOKSTORE_DATABASE_URL``, ``BOOKSTORE_PAGE_SIZE`` and
    ``BOOKSTORE_DEBUG`` from the environment (prefix ``BOOKSTORE_``; an unprefixed
    ``PAGE_SIZE`` must be ignored). ``page_size`` must be 1-100; invalid values
    raise a ``ValidationError`` at start-up, not later in a request."""

    database_url: str = "sqlite:///bookstore.sqlite"
    page_size: int = 20
    debug: bool = False
