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

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Generic, Protocol, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
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


class CurrencyMismatchError(ValueError):
    """Adding euros to dollars is a bug, not a conversion."""


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of money in one currency, e.g. ``Money(Decimal("12.50"), "EUR")``.

    Frozen: a price that can change under your feet is a bug waiting to happen.
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
        if self.amount != self.amount.quantize(CENT):
            raise ValueError(f"amount has more than 2 decimal places: {self.amount}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"currency must be a 3-letter code like 'EUR', not {self.currency!r}")
        # Normalise the exponent so Money("5") == Money("5.00") hashes alike and prints "5.00".
        object.__setattr__(self, "amount", self.amount.quantize(CENT))

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = "EUR") -> Self:
        """Build from a string or int (never a float): ``Money.of("9.99")``."""
        if isinstance(amount, float):
            raise TypeError("pass money as a str, int or Decimal, never a float")
        return cls(Decimal(amount), currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
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
    digits = raw.replace("-", "").replace(" ", "")
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
Price = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Book(BaseModel):
    """A catalogue entry. Unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    isbn: ISBN13
    title: Annotated[str, Field(min_length=1, max_length=200)]
    price: Price
    currency: CurrencyCode = "EUR"


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    isbn: ISBN13
    quantity: Annotated[int, Field(ge=1, le=99, strict=True)]
    unit_price: Price


class Order(BaseModel):
    """An order: at least one line, each book at most once, one currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: Annotated[int, Field(gt=0)]
    currency: CurrencyCode = "EUR"
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _each_book_once(self) -> Self:
        # Two lines for the same book make totals and stock checks ambiguous:
        # the client must merge them into one line with a larger quantity.
        seen: set[str] = set()
        for line in self.lines:
            if line.isbn in seen:
                raise ValueError(f"book {line.isbn} appears on more than one line")
            seen.add(line.isbn)
        return self

    def total(self) -> Money:
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

    database_url: str = "sqlite:///bookstore.sqlite"
    page_size: Annotated[int, Field(ge=1, le=100)] = 20
    debug: bool = False
