"""The bookstore's cart service: prices, discount codes, stock and checkout.

This module is given: exercise 07 is writing the tests for it, not changing it.
The grader runs your tests against this file and against faulty copies of it.

The rules (your tests check them):

Prices
    A line is a book's price times its quantity. A line of 10 or more copies of
    one book costs 10 % less. A discount code then applies to the sum of the
    lines: a percentage off, or a fixed amount off. The total is rounded once, at
    the end, to whole cents, halves rounding up (``ROUND_HALF_UP``): 11.205 is
    11.21. A total is never below 0.00. Amounts are ``Decimal``, never floats.
Discount codes
    Codes are case-insensitive (``save10`` is ``SAVE10``). A cart holds at most
    one code: applying another replaces it, applying the same one again changes
    nothing. An unknown code raises :class:`UnknownDiscount`.
Stock
    ``add`` refuses a quantity below 1 (:class:`InvalidQuantity`), an unknown ISBN
    (:class:`UnknownBook`), and more copies of a book than are in stock, counting
    the copies already in the cart (:class:`OutOfStock`). Adding only reserves
    nothing: stock is taken at checkout.
Who may do what
    Only the customer who opened a cart may add to it, apply a code, read its
    total or check it out; anyone else gets :class:`NotYourCart`.
Checkout
    Takes the stock, charges the customer the cart's total through the payment
    gateway, closes the cart and returns a :class:`Receipt`. An empty cart
    raises :class:`EmptyCart`. If the gateway declines, :class:`PaymentDeclined`
    reaches the caller, the stock taken is returned and the cart stays open (the
    customer may try again). A closed cart refuses everything with
    :class:`CartClosed`. Checkouts may run concurrently: stock is never oversold.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

__all__ = [
    "BULK_DISCOUNT",
    "BULK_QUANTITY",
    "Book",
    "CartClosed",
    "CartError",
    "CartService",
    "Discount",
    "EmptyCart",
    "InvalidQuantity",
    "NotYourCart",
    "OutOfStock",
    "PaymentDeclined",
    "PaymentGateway",
    "Receipt",
    "UnknownBook",
    "UnknownDiscount",
]

CENT = Decimal("0.01")
BULK_QUANTITY = 10  # a line of at least this many copies gets the bulk discount
BULK_DISCOUNT = Decimal("0.10")


class CartError(Exception):
    """Base class of every error the cart service raises on purpose."""


class UnknownBook(CartError):
    """No book with this ISBN in the catalogue."""


class UnknownDiscount(CartError):
    """No discount with this code."""


class InvalidQuantity(CartError):
    """A quantity below 1."""


class OutOfStock(CartError):
    """More copies asked for than are in stock."""

    def __init__(self, isbn: str, requested: int, available: int) -> None:
        super().__init__(f"{isbn}: {requested} requested, {available} in stock")
        self.isbn, self.requested, self.available = isbn, requested, available


class NotYourCart(CartError):
    """The cart belongs to another customer."""


class CartClosed(CartError):
    """The cart has been checked out."""


class EmptyCart(CartError):
    """Checking out a cart with nothing in it."""


class PaymentDeclined(CartError):
    """Raised by a payment gateway that refuses a charge."""


@dataclass(frozen=True)
class Book:
    isbn: str
    title: str
    price: Decimal


@dataclass(frozen=True)
class Discount:
    """A percentage off (``percent=Decimal("10")``) or a fixed amount off (``amount``)."""

    code: str
    percent: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)


class PaymentGateway(Protocol):
    """The outbound payment service (an HTTP API in production)."""

    async def charge(self, customer: str, amount: Decimal, reference: str) -> str:
        """Charge ``amount``; return the payment id, or raise :class:`PaymentDeclined`."""
        ...


@dataclass(frozen=True)
class Receipt:
    cart_id: str
    customer: str
    total: Decimal
    payment_id: str
    lines: tuple[tuple[str, int], ...]  # (isbn, quantity), in the order they were added


@dataclass
class _Cart:
    customer: str
    lines: dict[str, int] = field(default_factory=dict)  # isbn -> quantity, insertion-ordered
    discount: Discount | None = None
    closed: bool = False


class CartService:
    """Carts in memory; stock shared by every cart; payments through ``payments``."""

    def __init__(
        self,
        books: Iterable[Book],
        stock: Mapping[str, int],
        payments: PaymentGateway,
        discounts: Iterable[Discount] = (),
    ) -> None:
        self._books = {book.isbn: book for book in books}
        self._stock = dict(stock)
        self._payments = payments
        self._discounts = {discount.code.upper(): discount for discount in discounts}
        self._carts: dict[str, _Cart] = {}
        self._ids = itertools.count(1)

    def stock(self, isbn: str) -> int:
        """Copies of ``isbn`` in stock now (0 for a book without stock)."""
        return self._stock.get(isbn, 0)

    def open_cart(self, customer: str) -> str:
        """Open an empty cart for ``customer``; return its id."""
        cart_id = f"cart-{next(self._ids)}"
        self._carts[cart_id] = _Cart(customer)
        return cart_id

    def add(self, cart_id: str, customer: str, isbn: str, quantity: int = 1) -> None:
        """Add ``quantity`` copies of ``isbn`` to the cart (see the module docstring)."""
        cart = self._open_cart_of(cart_id, customer)
        if quantity < 1:
            raise InvalidQuantity(f"quantity must be at least 1, not {quantity}")
        if isbn not in self._books:
            raise UnknownBook(isbn)
        wanted = cart.lines.get(isbn, 0) + quantity
        available = self.stock(isbn)
        if wanted > available:
            raise OutOfStock(isbn, wanted, available)
        cart.lines[isbn] = wanted

    def apply_code(self, cart_id: str, customer: str, code: str) -> None:
        """Use discount ``code`` for this cart, replacing any code it had."""
        cart = self._open_cart_of(cart_id, customer)
        discount = self._discounts.get(code.upper())
        if discount is None:
            raise UnknownDiscount(code)
        cart.discount = discount

    def total(self, cart_id: str, customer: str) -> Decimal:
        """What checking out would charge now, in whole cents."""
        return self._total(self._open_cart_of(cart_id, customer))

    async def checkout(self, cart_id: str, customer: str) -> Receipt:
        """Take the stock, charge the total, close the cart (see the module docstring)."""
        cart = self._open_cart_of(cart_id, customer)
        if not cart.lines:
            raise EmptyCart(cart_id)
        total = self._total(cart)
        # Check and take in one step, before the first await: another checkout
        # can only run while this one waits on the gateway, and by then the
        # copies are no longer there for it to take.
        self._take_stock(cart.lines)
        try:
            payment_id = await self._payments.charge(customer, total, cart_id)
        except BaseException:
            # Declined, failed or cancelled: the copies go back, the error goes on.
            self._return_stock(cart.lines)
            raise
        cart.closed = True
        return Receipt(cart_id, customer, total, payment_id, tuple(cart.lines.items()))

    # ---- helpers ----------------------------------------------------------------

    def _open_cart_of(self, cart_id: str, customer: str) -> _Cart:
        cart = self._carts.get(cart_id)
        if cart is None or cart.customer != customer:
            # The same answer for "no such cart" and "someone else's": a
            # different one would tell a stranger which cart ids exist.
            raise NotYourCart(cart_id)
        if cart.closed:
            raise CartClosed(cart_id)
        return cart

    def _total(self, cart: _Cart) -> Decimal:
        subtotal = sum((self._line_amount(isbn, qty) for isbn, qty in cart.lines.items()), Decimal(0))
        if cart.discount is not None:
            subtotal -= subtotal * cart.discount.percent / 100 + cart.discount.amount
        return max(subtotal, Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)

    def _line_amount(self, isbn: str, quantity: int) -> Decimal:
        amount = self._books[isbn].price * quantity
        if quantity >= BULK_QUANTITY:
            amount -= amount * BULK_DISCOUNT
        return amount

    def _take_stock(self, lines: Mapping[str, int]) -> None:
        short = [(isbn, qty) for isbn, qty in lines.items() if qty > self.stock(isbn)]
        if short:
            isbn, qty = short[0]
            raise OutOfStock(isbn, qty, self.stock(isbn))
        for isbn, qty in lines.items():
            self._stock[isbn] -= qty

    def _return_stock(self, lines: Mapping[str, int]) -> None:
        for isbn, qty in lines.items():
            self._stock[isbn] += qty
