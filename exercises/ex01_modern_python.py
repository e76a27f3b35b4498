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

    Construction (``Money(...)`` and ``Money.of(...)`` alike) refuses bad values at
    run time, since type hints do not stop an untyped caller:

    - ``Money(amount, currency)`` takes a ``Decimal`` amount only: anything else
      raises ``TypeError`` (``Money.of`` converts a str or an int first);
    - it must be finite and a whole number of cents, else ``ValueError``. Refuse,
      never round: ``Decimal("1.005")`` is an upstream bug. ``Decimal("1.500")``
      (as a database column with a wider scale returns it) *is* 1.50 and is fine;
    - amounts may be negative (a refund, the difference of two prices);
    - ``currency`` is exactly three upper-case ASCII letters (``"EUR"``), else
      ``ValueError``. (``"ÉUR".isupper()`` and ``.isalpha()`` are both True.)

    Equal amounts are equal however they were written: ``Money.of("5")`` equals,
    hashes like and prints like ``Money.of("5.00")`` (``"5.00 EUR"``). Money in
    different currencies is never equal. Instances are immutable.
    """

    amount: Decimal
    currency: str = "EUR"

    def __post_init__(self) -> None:
        raise NotImplementedError

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = "EUR") -> Self:
        """Build from a str, int or Decimal: ``Money.of("9.99")``.

        A float raises ``TypeError``, even one that looks harmless like ``0.5``:
        ``Decimal(0.1)`` is 0.1000000000000000055511151231257827...
        """
        raise NotImplementedError

    def __add__(self, other: Money) -> Money:
        """The sum, in the same currency.

        Another currency raises ``CurrencyMismatchError``; anything that is not
        ``Money`` (``price + 1``) raises ``TypeError``, as ``1 + "1"`` does.
        """
        raise NotImplementedError

    def __sub__(self, other: Money) -> Money:
        """The difference (possibly negative); same errors as ``+``."""
        raise NotImplementedError

    def __mul__(self, quantity: int) -> Money:
        """Money times a whole quantity: ``Money.of("2.50") * 3 == Money.of("7.50")``.

        Anything but an ``int`` raises ``TypeError``: a float, a ``Decimal``, and
        also ``True`` (``bool`` is a subclass of ``int`` in Python).
        """
        raise NotImplementedError

    def __str__(self) -> str:
        """Amount with two decimals, then the currency: ``"12.50 EUR"``."""
        raise NotImplementedError


# ---------------------------------------------------------------- task 2: ISBN-13
def normalize_isbn13(raw: str) -> str:
    """Return the 13 digits of a valid ISBN-13; raise ``ValueError`` otherwise.

    - Hyphens and spaces are separators people write: ``"978-0-306-40615-7"`` and
      ``"978 0 306 40615 7"`` both give ``"9780306406157"``. Any other character
      makes the input invalid, even when dropping it would leave a valid ISBN
      (``"978-0-306-40615-7X"`` is refused, not repaired).
    - Exactly 13 ASCII digits (``"٣".isdigit()`` is True), starting with 978 or 979.
      An ISBN-10 is not an ISBN-13.
    - The check digit: with weights 1, 3, 1, 3, ... over all 13 digits, the
      weighted sum is a multiple of 10.
    """
    raise NotImplementedError


# Given: a reusable validated type. Any field typed ISBN13 runs normalize_isbn13.
ISBN13 = Annotated[str, AfterValidator(normalize_isbn13)]


# ---------------------------------------------------------------- task 3: models
# All three models: unknown fields are refused (type ``extra_forbidden``, also
# inside nested lines: silently dropping them hides client bugs and invites mass
# assignment); instances are immutable; every problem in one input is reported
# together, each error with the path of its field as ``loc``
# (``("lines", 1, "quantity")``). A currency is three upper-case ASCII letters,
# default "EUR".
# A price is a Decimal >= 0 in whole cents that fits the database's Numeric(10, 2):
# at most 99,999,999.99. Prices may arrive as Decimals or as strings ("9.99"), as
# JSON clients send them.


class Book(BaseModel):
    """A catalogue entry: ``isbn`` (an ISBN13), ``title``, ``price``, ``currency``.

    Surrounding whitespace is stripped from strings; the title then has 1 to 200
    characters.
    """

    isbn: ISBN13
    title: str
    price: Decimal
    currency: str = "EUR"


class OrderLine(BaseModel):
    """One book on an order: ``isbn`` (ISBN13), ``quantity`` from 1 to 99, ``unit_price`` (a price).

    The quantity must arrive as an int: ``"2"``, ``2.0``, ``2.5`` and ``True`` are
    refused, not converted.
    """

    isbn: ISBN13
    quantity: int
    unit_price: Decimal


class Order(BaseModel):
    """An order: ``customer_id`` > 0, a ``currency``, and 1 to 50 ``lines``.

    Invariant: each book appears on at most one line, however its ISBN was
    spelled (``"978-0-306-40615-7"`` and ``"9780306406157"`` are the same book).
    The order is immutable, its lines included: freezing a model does not freeze
    a list it holds.
    """

    customer_id: int
    currency: str = "EUR"
    lines: list[OrderLine]

    def total(self) -> Money:
        """The sum of quantity x unit price over the lines, as ``Money`` in the
        order's currency, exact to the cent (ten lines of 0.10 are 1.00; in
        binary floating point they add up to 0.9999999999999999)."""
        raise NotImplementedError


# ---------------------------------------------------------------- task 4: generics
class Repository(Protocol):
    """Storage as the rest of the code sees it, generic in the key and item types:
    ``Repository[str, Book]`` has ``add(key, item)``, ``get(key)`` (the item or
    ``None``) and ``list()`` (all items). Keys only ever go in; items go in and
    come out. Any class with these methods fits, without inheriting."""

    def add(self, key, item): ...

    def get(self, key): ...

    def list(self): ...


class InMemoryRepository:
    """A dict-backed repository, generic in key and item type.

    ``InMemoryRepository[str, Book]()`` satisfies ``Repository[str, Book]``, and
    ``mypy --strict`` flags misuse: ``repo.add("k", 42)``, a key of the wrong type,
    using ``get()``'s result without handling ``None``, or passing it where a
    ``Repository[str, int]`` is expected. Adding an existing key raises
    ``KeyError`` and keeps the first item; ``get`` of a missing key returns
    ``None``; ``list`` returns the items in insertion order, as a new list the
    caller may change. Every repository has items of its own.
    """

    def add(self, key, item):
        raise NotImplementedError

    def get(self, key):
        raise NotImplementedError

    def list(self):
        raise NotImplementedError


# ---------------------------------------------------------------- task 5: settings
class Settings(BaseSettings):
    """Configuration from ``BOOKSTORE_DATABASE_URL``, ``BOOKSTORE_PAGE_SIZE`` and
    ``BOOKSTORE_DEBUG``; unset variables keep the defaults below.

    - Only the prefixed names count: a plain ``PAGE_SIZE`` or ``DEBUG`` belongs to
      another program.
    - ``page_size`` is 1 to 100 and ``debug`` a boolean (``"true"``, ``"0"``, ...);
      a bad value raises ``ValidationError`` when ``Settings()`` is built, at
      start-up, not later in a request.
    - The database URL may carry a password: it must not show in ``repr()``,
      ``str()`` or a dump of the settings (logs and tracebacks print them). Code
      that connects asks for it explicitly: ``settings.database_url.get_secret_value()``.
    """

    database_url: str = "sqlite:///bookstore.sqlite"
    page_size: int = 20
    debug: bool = False
