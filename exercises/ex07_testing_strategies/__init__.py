"""Test suite for the cart service, graded by mutation

The service is ``cart.py`` (given; its docstring is the contract). The work is
the test suite, ``test_cart.py``: ``tests/exercises/test_ex07_testing_strategies.py``
runs it against the correct service (every test must pass) and against seeded
faulty copies of the service (against each, at least one of those tests must
fail). The package re-exports the service's public names.
"""

from __future__ import annotations

from .cart import (
    BULK_DISCOUNT,
    BULK_QUANTITY,
    Book,
    CartClosed,
    CartError,
    CartService,
    Discount,
    EmptyCart,
    InvalidQuantity,
    NotYourCart,
    OutOfStock,
    PaymentDeclined,
    PaymentGateway,
    Receipt,
    UnknownBook,
    UnknownDiscount,
)

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
