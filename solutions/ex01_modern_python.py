"""Typed bookstore domain model

Model the core of the bookstore with modern, typed Python:

1. ``Money``: an immutable amount in one currency, exact (``Decimal``, never float).
2. ``normalize_isbn13``: clean up and validate an ISBN-13 (check digit included).
3. ``Book``, ``OrderLine``, ``Order``: Pydantic v2 models that refuse invalid data,
   with an order-level invariant and a computed total.
4. ``InMemoryRepository``: a generic repository that satisfies the ``Repository``
   protocol, precise enough for ``mypy --strict`` to catch misuse.
5. ``Settings``: configuration read from ``BOOKSTORE_*`` environment variables.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Generic, Protocol, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

CENT = Decimal("0.01")
# [A-Z] is ASCII only, and fullmatch leaves no room for a trailing newline;
# str.isalpha() and str.isupper() would also accept "ÉUR".
CURRENCY_CODE = re.compile(r"[A-Z]{3}")


class CurrencyMismatchError(ValueError):
    """Adding euros to dollars is a bug, not a conversion."""


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of money in one currency, e.g. ``Money(Decimal("12.50"), "EUR")``.

    Frozen: a price that can change under your feet is a bug waiting to happen.
    Amounts may be negative (a refund, a difference); prices are checked elsewhere.
    """

    amount: Decimal
    currency: str = "EUR"

    def __post_init__(self) -> None:
        # isinstance checks at run time too: type hints do not stop a caller
        # that passes a float from untyped code (0.1 + 0.2 != 0.3).
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"amount must be a Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise ValueError("amount must be a finite number")
        cents = self.amount.quantize(CENT)
        # Refuse, never round: a sub-cent amount means an upstream bug. "1.500"
        # is a whole number of cents and passes; "1.005" is not and does not.
        if cents != self.amount:
            raise ValueError(f"amount is not a whole number of cents: {self.amount}")
        if not isinstance(self.currency, str) or not CURRENCY_CODE.fullmatch(self.currency):
            raise ValueError(f"currency must be a 3-letter code like 'EUR', not {self.currency!r}")
        # Normalise the exponent so Money("5") == Money("5.00") hashes alike and prints "5.00".
        object.__setattr__(self, "amount", cents)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = "EUR") -> Self:
        """Build from a string or int (never a float): ``Money.of("9.99")``."""
        # Decimal(0.1) would happily carry the float's binary error into the amount.
        if isinstance(amount, float):
            raise TypeError("pass money as a str, int or Decimal, never a float")
        return cls(Decimal(amount), currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented  # Python then raises TypeError, as for 1 + "1"
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        # bool is a subclass of int: Money * True is a bug, not a quantity of one.
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise TypeError("money can only be multiplied by a whole quantity")
        return Money(self.amount * quantity, self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def normalize_isbn13(raw: str) -> str:
    """Return the 13 digits of a valid ISBN-13; raise ``ValueError`` otherwise.

    Accepts hyphens and spaces (``"978-0-306-40615-7"``). The check digit makes
    the weighted sum (weights 1, 3, 1, 3, ...) a multiple of 10.
    """
    # Remove only the separators people write; anything else (a stray letter)
    # makes the input invalid rather than being silently dropped.
    digits = raw.replace("-", "").replace(" ", "")
    # isascii(): str.isdigit() is also True for "٣" and other non-ASCII digits.
    if len(digits) != 13 or not digits.isascii() or not digits.isdigit():
        raise ValueError("an ISBN-13 has exactly 13 digits")
    if not digits.startswith(("978", "979")):
        raise ValueError("an ISBN-13 starts with 978 or 979")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    if total % 10:
        raise ValueError("ISBN-13 check digit does not match")
    return digits


# A reusable validated type: any model field typed ISBN13 is normalised and checked.
ISBN13 = Annotated[str, AfterValidator(normalize_isbn13)]
# Numeric(10, 2) in the database: up to 99,999,999.99, never negative, whole cents.
Price = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]
# Pydantic matches patterns with Rust's regex engine, where $ is the very end of
# the text (Python's re.match would let "EUR\n" through).
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Book(BaseModel):
    """A catalogue entry. Unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    isbn: ISBN13
    title: Annotated[str, Field(min_length=1, max_length=200)]
    price: Price
    currency: CurrencyCode = "EUR"


class OrderLine(BaseModel):
    """One book on an order: how many, at what unit price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    isbn: ISBN13
    # strict: "2" or 2.0 from a client is a bug to report, not a number to guess.
    quantity: Annotated[int, Field(ge=1, le=99, strict=True)]
    unit_price: Price


class Order(BaseModel):
    """An order: at least one line, each book at most once, one currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: Annotated[int, Field(gt=0)]
    currency: CurrencyCode = "EUR"
    # A tuple, not a list: frozen=True stops assignment to the field, but a list
    # inside a frozen model could still be appended to after validation.
    lines: Annotated[tuple[OrderLine, ...], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _each_book_once(self) -> Self:
        # Runs after the field validators, so the ISBNs compared are normalised.
        # Two lines for the same book make totals and stock checks ambiguous:
        # the client must merge them into one line with a larger quantity.
        seen: set[str] = set()
        for line in self.lines:
            if line.isbn in seen:
                raise ValueError(f"book {line.isbn} appears on more than one line")
            seen.add(line.isbn)
        return self

    def total(self) -> Money:
        """The sum of quantity x unit price, exact to the cent, in the order's currency."""
        total = Money(Decimal(0), self.currency)
        for line in self.lines:
            total += Money(line.unit_price, self.currency) * line.quantity
        return total


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# Keys only go *into* a repository, so the protocol may accept a supertype of
# the key type (contravariance); items go in and come out, so V stays invariant.
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class Repository(Protocol[K_contra, V]):
    """What the rest of the code needs from storage; any class with these methods fits."""

    def add(self, key: K_contra, item: V) -> None: ...
    def get(self, key: K_contra) -> V | None: ...
    def list(self) -> list[V]: ...


class InMemoryRepository(Generic[K, V]):
    """A dict-backed repository; the type parameters flow from key and item types."""

    def __init__(self) -> None:
        self._items: dict[K, V] = {}

    def add(self, key: K, item: V) -> None:
        if key in self._items:
            raise KeyError(f"duplicate key: {key!r}")
        self._items[key] = item

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def list(self) -> list[V]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)


class Settings(BaseSettings):
    """Configuration from the environment: ``BOOKSTORE_DATABASE_URL`` and friends."""

    model_config = SettingsConfigDict(env_prefix="BOOKSTORE_", extra="ignore")

    # A database URL often carries a password: SecretStr keeps it out of repr(),
    # logs and tracebacks; code that connects asks for .get_secret_value().
    database_url: SecretStr = SecretStr("sqlite:///bookstore.sqlite")
    page_size: Annotated[int, Field(ge=1, le=100)] = 20
    debug: bool = False
