"""The reference test suite for the cart service (exercise 07).

Each test pins one rule of ``cart.py``'s contract with exact values: amounts are
compared as ``Decimal`` to the cent, errors by their own class, and every
assertion is about an outcome a customer would see (a total, a charge, the
stock, an error), never about which internal call was made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from .cart import (
    Book,
    CartClosed,
    CartService,
    Discount,
    EmptyCart,
    InvalidQuantity,
    NotYourCart,
    OutOfStock,
    PaymentDeclined,
    Receipt,
    UnknownBook,
    UnknownDiscount,
)

DUNE = Book("9780441013593", "Dune", Decimal("12.45"))
EMMA = Book("9780141439587", "Emma", Decimal("8.00"))
CODES = (
    Discount("SAVE10", percent=Decimal(10)),
    Discount("FIVEOFF", amount=Decimal(5)),
    Discount("TWENTYOFF", amount=Decimal(20)),
)
STOCK = {DUNE.isbn: 20, EMMA.isbn: 3}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeGateway:
    """A payment gateway that records its charges and declines when told to.

    A fake, not a mock: it behaves like the real service (it waits, like a network
    call, so that other tasks run meanwhile; it refuses by raising), and the tests
    check the charges it recorded, not how it was called.
    """

    def __init__(self) -> None:
        self.charges: list[tuple[str, Decimal, str]] = []
        self.decline = False

    async def charge(self, customer: str, amount: Decimal, reference: str) -> str:
        await anyio.lowlevel.checkpoint()  # a real charge is a network round trip: others run now
        if self.decline:
            raise PaymentDeclined("card refused")
        self.charges.append((customer, amount, reference))
        return f"pay-{len(self.charges)}"


MakeService = Callable[..., CartService]


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def make_service(gateway: FakeGateway) -> MakeService:
    """A factory: a service with the default stock, or the stock a test needs."""

    def make(stock: Mapping[str, int] = STOCK) -> CartService:
        return CartService([DUNE, EMMA], stock, gateway, CODES)

    return make


@pytest.fixture
def service(make_service: MakeService) -> CartService:
    return make_service()


def cart_with(service: CartService, customer: str, *lines: tuple[Book, int]) -> str:
    cart = service.open_cart(customer)
    for book, quantity in lines:
        service.add(cart, customer, book.isbn, quantity)
    return cart


# ---- prices, discounts and rounding ---------------------------------------------


def test_a_line_costs_price_times_quantity(service: CartService) -> None:
    cart = cart_with(service, "ada", (EMMA, 2), (DUNE, 1))
    assert service.total(cart, "ada") == Decimal("28.45")


@pytest.mark.parametrize(
    ("copies", "expected"),
    [(9, "112.05"), (10, "112.05"), (11, "123.26")],
    ids=["9-copies-full-price", "10-copies-bulk", "11-copies-bulk"],
)
def test_bulk_discount_starts_at_ten_copies(service: CartService, copies: int, expected: str) -> None:
    cart = cart_with(service, "ada", (DUNE, copies))
    assert service.total(cart, "ada") == Decimal(expected)


def test_half_a_cent_rounds_up(service: CartService) -> None:
    cart = cart_with(service, "ada", (DUNE, 1))
    service.apply_code(cart, "ada", "SAVE10")
    assert service.total(cart, "ada") == Decimal("11.21")  # 12.45 - 1.245 = 11.205


def test_codes_are_case_insensitive(service: CartService) -> None:
    cart = cart_with(service, "ada", (DUNE, 1))
    service.apply_code(cart, "ada", "save10")
    assert service.total(cart, "ada") == Decimal("11.21")


def test_the_same_code_twice_counts_once(service: CartService) -> None:
    cart = cart_with(service, "ada", (EMMA, 1))
    service.apply_code(cart, "ada", "FIVEOFF")
    service.apply_code(cart, "ada", "FIVEOFF")
    assert service.total(cart, "ada") == Decimal("3.00")


def test_another_code_replaces_the_first(service: CartService) -> None:
    cart = cart_with(service, "ada", (DUNE, 1))
    service.apply_code(cart, "ada", "SAVE10")
    service.apply_code(cart, "ada", "FIVEOFF")
    assert service.total(cart, "ada") == Decimal("7.45")


def test_a_total_never_goes_below_zero(service: CartService) -> None:
    cart = cart_with(service, "ada", (EMMA, 1))
    service.apply_code(cart, "ada", "TWENTYOFF")
    assert service.total(cart, "ada") == Decimal("0.00")


def test_an_unknown_code_is_refused(service: CartService) -> None:
    cart = cart_with(service, "ada", (EMMA, 1))
    with pytest.raises(UnknownDiscount):
        service.apply_code(cart, "ada", "FREEBOOKS")


# ---- stock and bad input --------------------------------------------------------


def test_the_last_copy_can_be_added(service: CartService) -> None:
    cart = cart_with(service, "ada", (EMMA, 3))
    assert service.total(cart, "ada") == Decimal("24.00")


def test_copies_already_in_the_cart_count_against_stock(service: CartService) -> None:
    cart = cart_with(service, "ada", (EMMA, 2))
    with pytest.raises(OutOfStock) as refused:
        service.add(cart, "ada", EMMA.isbn, 2)
    assert (refused.value.requested, refused.value.available) == (4, 3)
    assert service.total(cart, "ada") == Decimal("16.00")  # the refused add changed nothing


@pytest.mark.parametrize("quantity", [0, -1], ids=["zero", "negative"])
def test_a_quantity_below_one_is_refused(service: CartService, quantity: int) -> None:
    cart = service.open_cart("ada")
    with pytest.raises(InvalidQuantity):
        service.add(cart, "ada", EMMA.isbn, quantity)


def test_an_unknown_isbn_is_refused(service: CartService) -> None:
    cart = service.open_cart("ada")
    with pytest.raises(UnknownBook):
        service.add(cart, "ada", "9780000000002")


# ---- who may change a cart ------------------------------------------------------


def test_a_stranger_cannot_add_to_a_cart(service: CartService) -> None:
    cart = cart_with(service, "ada", (EMMA, 1))
    with pytest.raises(NotYourCart):
        service.add(cart, "mallory", DUNE.isbn)
    assert service.total(cart, "ada") == Decimal("8.00")


@pytest.mark.anyio
async def test_a_stranger_cannot_check_out_a_cart(service: CartService, gateway: FakeGateway) -> None:
    cart = cart_with(service, "ada", (EMMA, 1))
    with pytest.raises(NotYourCart):
        await service.checkout(cart, "mallory")
    assert gateway.charges == []
    assert service.stock(EMMA.isbn) == 3


# ---- checkout and payment failures ----------------------------------------------


@pytest.mark.anyio
async def test_checkout_charges_the_discounted_total(service: CartService, gateway: FakeGateway) -> None:
    cart = cart_with(service, "ada", (DUNE, 1))
    service.apply_code(cart, "ada", "SAVE10")
    receipt = await service.checkout(cart, "ada")
    assert receipt == Receipt(cart, "ada", Decimal("11.21"), "pay-1", ((DUNE.isbn, 1),))
    assert gateway.charges == [("ada", Decimal("11.21"), cart)]
    assert service.stock(DUNE.isbn) == 19


@pytest.mark.anyio
async def test_a_declined_payment_reaches_the_caller_and_returns_the_stock(
    service: CartService, gateway: FakeGateway
) -> None:
    cart = cart_with(service, "ada", (EMMA, 2))
    gateway.decline = True
    with pytest.raises(PaymentDeclined):
        await service.checkout(cart, "ada")
    assert service.stock(EMMA.isbn) == 3
    gateway.decline = False  # the cart stayed open: the customer can try again
    receipt = await service.checkout(cart, "ada")
    assert (receipt.total, service.stock(EMMA.isbn)) == (Decimal("16.00"), 1)


@pytest.mark.anyio
async def test_a_paid_cart_is_closed(service: CartService, gateway: FakeGateway) -> None:
    cart = cart_with(service, "ada", (EMMA, 1))
    await service.checkout(cart, "ada")
    with pytest.raises(CartClosed):
        await service.checkout(cart, "ada")
    with pytest.raises(CartClosed):
        service.add(cart, "ada", DUNE.isbn)
    assert len(gateway.charges) == 1


@pytest.mark.anyio
async def test_an_empty_cart_cannot_be_checked_out(service: CartService) -> None:
    with pytest.raises(EmptyCart):
        await service.checkout(service.open_cart("ada"), "ada")


# ---- concurrent checkouts -------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_checkouts_never_oversell(make_service: MakeService, gateway: FakeGateway) -> None:
    service = make_service({EMMA.isbn: 2})
    # Adding reserves nothing: three carts may hold a copy each; only two can buy one.
    carts = {customer: cart_with(service, customer, (EMMA, 1)) for customer in ("ada", "bob", "cy")}
    receipts: list[Receipt] = []
    refused: list[OutOfStock] = []

    async def buy(customer: str) -> None:
        try:
            receipts.append(await service.checkout(carts[customer], customer))
        except OutOfStock as exc:
            refused.append(exc)

    async with anyio.create_task_group() as group:
        for customer in carts:
            group.start_soon(buy, customer)
    assert (len(receipts), len(refused)) == (2, 1)
    assert service.stock(EMMA.isbn) == 0
    assert len(gateway.charges) == 2
