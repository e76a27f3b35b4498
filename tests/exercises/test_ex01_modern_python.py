"""Tests for ex01: the typed bookstore domain model.

The fast tests are plain Python. The mypy --strict checks of task 4 are deep
tests: they run once the fast tests of that task pass.
"""

from __future__ import annotations

import csv
import dataclasses
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from mypy import api as mypy_api
from pydantic import ValidationError

from coursekit import paths
from coursekit.impl import current_impl, load

ex = load("ex01_modern_python")
Money = ex.Money

VALID_ISBN = "9780306406157"
BAD_CURRENCIES = ["eur", "EURO", "E1R", "", "ÉUR"]


def make_isbn(n: int, prefix: str = "978") -> str:
    """The n-th valid ISBN-13 with that prefix (a check digit computed here)."""
    body = f"{prefix}{n:09d}"
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str(-weighted % 10)


def line(n: int, quantity: object = 1, unit_price: object = "1.00", **extra: object) -> dict[str, object]:
    return {"isbn": make_isbn(n), "quantity": quantity, "unit_price": unit_price, **extra}


def order_payload(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "customer_id": 7,
        "currency": "EUR",
        "lines": [
            {"isbn": "978-0-306-40615-7", "quantity": 2, "unit_price": "12.50"},
            {"isbn": "9781242742774", "quantity": 1, "unit_price": "0.99"},
        ],
    }
    payload.update(changes)
    return payload


def error_locations(exc: pytest.ExceptionInfo[ValidationError]) -> set[tuple[str | int, ...]]:
    return {tuple(error["loc"]) for error in exc.value.errors()}


def order_errors(payload: dict[str, object]) -> set[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as exc:
        ex.Order.model_validate(payload)
    return error_locations(exc)


# ---------------------------------------------------------------------- task 1
class TestMoney:
    """Task 1: Money is exact, immutable and single-currency."""

    def test_decimal_arithmetic_is_exact(self) -> None:
        """0.10 + 0.20 is exactly 0.30 (floats would give 0.30000000000000004)."""
        assert Money.of("0.10") + Money.of("0.20") == Money.of("0.30")
        assert Money.of("1.00") - Money.of("0.01") == Money.of("0.99")

    def test_float_is_refused(self) -> None:
        """A float amount raises TypeError in the constructor and in Money.of, even an exact one like 0.5."""
        for amount in (0.1, 0.5, "1.00"):
            with pytest.raises(TypeError):
                Money(amount, "EUR")
        for amount in (0.1, 0.5, 2.0):
            with pytest.raises(TypeError):
                Money.of(amount)

    @pytest.mark.parametrize("amount", ["1.005", "0.001", "-2.555", "NaN", "Infinity"])
    def test_sub_cent_amounts_are_refused_not_rounded(self, amount: str) -> None:
        """Amounts that are not a whole number of cents (or not finite) raise ValueError instead of being rounded."""
        with pytest.raises(ValueError, match=r"."):
            Money.of(amount)
        with pytest.raises(ValueError, match=r"."):
            Money(Decimal(amount), "EUR")

    def test_amount_is_normalised_to_cents(self) -> None:
        """Money.of('5') and Money.of('5.000') equal, hash like and print like Money.of('5.00')."""
        assert Money.of("5") == Money.of("5.00") == Money.of("5.000")
        assert hash(Money.of("5")) == hash(Money.of("5.00"))
        assert str(Money.of(5)) == "5.00 EUR"
        assert str(Money(Decimal("12.5000"), "EUR")) == "12.50 EUR"
        assert str(Money.of("12.5", "USD")) == "12.50 USD"

    def test_negative_amounts_are_money_too(self) -> None:
        """1.00 - 2.50 is -1.50 (a refund or a difference), printed '-1.50 EUR'."""
        difference = Money.of("1.00") - Money.of("2.50")
        assert difference == Money.of("-1.50")
        assert str(difference) == "-1.50 EUR"

    def test_currencies_do_not_mix(self) -> None:
        """EUR + USD raises CurrencyMismatchError (a ValueError), in both directions."""
        with pytest.raises(ex.CurrencyMismatchError):
            Money.of("1", "EUR") + Money.of("1", "USD")
        with pytest.raises(ValueError, match=r"."):
            Money.of("1", "USD") - Money.of("1", "EUR")

    def test_equal_amounts_in_other_currencies_differ(self) -> None:
        """1.00 EUR is not equal to 1.00 USD, and a set keeps both."""
        euro, dollar = Money.of("1.00", "EUR"), Money.of("1.00", "USD")
        assert euro != dollar
        assert len({euro, dollar, Money.of("1", "EUR")}) == 2

    def test_only_money_combines_with_money(self) -> None:
        """Money + 1 and Money - Decimal('1') raise TypeError."""
        with pytest.raises(TypeError):
            Money.of("1.00") + 1
        with pytest.raises(TypeError):
            Money.of("1.00") - Decimal("1")

    @pytest.mark.parametrize("code", [*BAD_CURRENCIES, "EUR\n"])
    def test_currency_code_is_three_upper_case_letters(self, code: str) -> None:
        """Currency codes like 'eur', 'EURO' or 'ÉUR' are refused with ValueError."""
        with pytest.raises(ValueError, match=r"."):
            Money.of("1", code)

    def test_multiply_by_whole_quantity_only(self) -> None:
        """Money * 3 works; Money * 1.5, * Decimal('2') and * True raise TypeError."""
        assert Money.of("2.50") * 3 == Money.of("7.50")
        assert Money.of("2.50", "USD") * 0 == Money.of("0", "USD")
        for factor in (1.5, Decimal("2"), True):
            with pytest.raises(TypeError):
                Money.of("2.50") * factor

    def test_is_immutable(self) -> None:
        """Assigning to a Money attribute raises FrozenInstanceError."""
        price = Money.of("1.00")
        with pytest.raises(dataclasses.FrozenInstanceError):
            price.amount = Decimal("2.00")  # type: ignore[misc]


# ---------------------------------------------------------------------- task 2
class TestIsbn:
    """Task 2: ISBN-13 normalisation and check digit."""

    def test_hyphens_and_spaces_are_removed(self) -> None:
        """'978-0-306-40615-7' and '978 0 306 40615 7' normalise to 13 digits; 979 is a valid prefix."""
        assert ex.normalize_isbn13("978-0-306-40615-7") == VALID_ISBN
        assert ex.normalize_isbn13("978 0 306 40615 7") == VALID_ISBN
        assert ex.normalize_isbn13("979-1-234-56789-6") == "9791234567896"

    @pytest.mark.parametrize(
        "bad",
        [
            "9780306406158",  # wrong check digit
            "978030640615",  # 12 digits
            "97803064061570",  # 14 digits
            "97803064061X7",  # a letter
            "978-0-306-40615-7X",  # a stray letter: dropping it would leave a valid ISBN
            "978030640615X7",  # a letter inside, same
            "0-306-40615-2",  # the same book's ISBN-10
            "9770306406150",  # valid sum, but 977 is not an ISBN prefix
            "٩٧٨٠٣٠٦٤٠٦١٥٧",  # Arabic-Indic digits: str.isdigit() says yes
            "978٠٣٠٦٤٠٦١٥٧",  # the same after an ASCII prefix: int() reads them too
            "978０３０６４０６１５７",  # fullwidth digits
        ],
    )
    def test_invalid_isbns_are_refused(self, bad: str) -> None:
        """Wrong check digit, wrong length, any letter, an ISBN-10, wrong prefix, non-ASCII digits: ValueError."""
        with pytest.raises(ValueError, match=r"."):
            ex.normalize_isbn13(bad)

    def test_every_isbn_in_the_data_set_is_valid(self) -> None:
        """All 2,000 ISBNs of the course data set pass (catches wrong weights)."""
        with (paths.DATASET_DIR / "books.csv").open(newline="", encoding="utf-8") as handle:
            isbns = [row["isbn"] for row in csv.DictReader(handle)]
        assert len(isbns) == 2_000
        assert [ex.normalize_isbn13(i) for i in isbns] == isbns


# ---------------------------------------------------------------------- task 3
class TestBook:
    """Task 3: Book, OrderLine and Order refuse invalid data.

    The catalogue entry.
    """

    def test_book_is_normalised(self) -> None:
        """A Book strips its title and normalises its ISBN."""
        book = ex.Book(isbn="978-0-306-40615-7", title="  Dune  ", price="9.99")
        assert (book.isbn, book.title, book.price, book.currency) == (
            VALID_ISBN, "Dune", Decimal("9.99"), "EUR",
        )  # fmt: skip

    def test_all_book_errors_are_reported_together(self) -> None:
        """Bad isbn, empty title and negative price give three errors, one per field."""
        with pytest.raises(ValidationError) as exc:
            ex.Book(isbn="123", title="   ", price="-1")
        assert error_locations(exc) == {("isbn",), ("title",), ("price",)}

    @pytest.mark.parametrize("price", ["1.999", "-0.01", "100000000", "100000000000", "NaN"])
    def test_book_price_constraints(self, price: str) -> None:
        """Prices below 0, with 3 decimals, above 99,999,999.99 or not a number are refused."""
        with pytest.raises(ValidationError) as exc:
            ex.Book(isbn=VALID_ISBN, title="Dune", price=price)
        assert error_locations(exc) == {("price",)}

    def test_limits_are_inclusive(self) -> None:
        """A price of 99,999,999.99 and a title of 200 characters are accepted; 201 characters are not."""
        book = ex.Book(isbn=VALID_ISBN, title=" " + "x" * 200 + " ", price="99999999.99")
        assert (len(book.title), book.price) == (200, Decimal("99999999.99"))
        with pytest.raises(ValidationError) as exc:
            ex.Book(isbn=VALID_ISBN, title="x" * 201, price="1.00")
        assert error_locations(exc) == {("title",)}

    @pytest.mark.parametrize("code", BAD_CURRENCIES)
    def test_book_currency_is_checked(self, code: str) -> None:
        """A Book's currency must be three upper-case letters ('eur' or 'EURO' are refused)."""
        with pytest.raises(ValidationError) as exc:
            ex.Book(isbn=VALID_ISBN, title="Dune", price="9.99", currency=code)
        assert error_locations(exc) == {("currency",)}

    def test_unknown_fields_are_refused(self) -> None:
        """An unexpected field (mass assignment) is an 'extra_forbidden' error, not ignored."""
        with pytest.raises(ValidationError) as exc:
            ex.Book(isbn=VALID_ISBN, title="Dune", price="9.99", cost_price="1.00")
        assert [e["type"] for e in exc.value.errors()] == ["extra_forbidden"]

    def test_book_is_immutable(self) -> None:
        """Assigning to a Book field raises ValidationError (frozen model)."""
        book = ex.Book(isbn=VALID_ISBN, title="Dune", price="9.99")
        with pytest.raises(ValidationError):
            book.price = Decimal("0")


class TestOrder:
    """Task 3: Book, OrderLine and Order refuse invalid data.

    Order lines, the order invariant and the total.
    """

    def test_order_total(self) -> None:
        """total() is the exact sum of quantity x unit price, as Money in the order currency."""
        order = ex.Order.model_validate(order_payload())
        assert order.total() == Money.of("25.99", "EUR")
        usd = ex.Order.model_validate(order_payload(currency="USD"))
        assert usd.total() == Money.of("25.99", "USD")

    def test_total_is_exact_to_the_cent(self) -> None:
        """Ten lines of 0.10 total 1.00, and 3 x 1.15 totals 3.45 (floats lose a cent on both)."""
        dimes = ex.Order.model_validate(order_payload(lines=[line(n, 1, "0.10") for n in range(10)]))
        assert dimes.total() == Money.of("1.00")
        triple = ex.Order.model_validate(order_payload(lines=[line(1, 3, "1.15")]))
        assert triple.total() == Money.of("3.45")

    def test_largest_order(self) -> None:
        """50 lines of 99 copies at 99,999,999.99 are accepted and total exactly 494,999,999,950.50."""
        lines = [line(n, 99, "99999999.99") for n in range(50)]
        order = ex.Order.model_validate(order_payload(lines=lines))
        assert order.total() == Money.of("494999999950.50")

    def test_validation_error_points_at_the_bad_line(self) -> None:
        """quantity 0 on the second line is reported at loc ('lines', 1, 'quantity')."""
        payload = order_payload()
        payload["lines"][1]["quantity"] = 0  # type: ignore[index]
        assert order_errors(payload) == {("lines", 1, "quantity")}

    @pytest.mark.parametrize("quantity", [0, 100, -1])
    def test_quantity_is_between_1_and_99(self, quantity: int) -> None:
        """A quantity of 0 or 100 is refused at its line."""
        payload = order_payload(lines=[line(1, quantity), line(2, 99)])
        assert order_errors(payload) == {("lines", 0, "quantity")}

    @pytest.mark.parametrize("value", ["2", 2.5, 2.0, True])
    def test_quantity_is_strict(self, value: object) -> None:
        """A quantity sent as '2', 2.5, 2.0 or True is refused (strict int), not converted."""
        payload = order_payload(lines=[line(1, value), line(2, 1)])
        assert order_errors(payload) == {("lines", 0, "quantity")}

    @pytest.mark.parametrize("price", ["1.999", "-0.01", "100000000"])
    def test_unit_price_constraints(self, price: str) -> None:
        """A line's unit price follows the price rules: >= 0, whole cents, at most 99,999,999.99."""
        payload = order_payload(lines=[line(1), line(2, 1, price)])
        assert order_errors(payload) == {("lines", 1, "unit_price")}

    @pytest.mark.parametrize("code", [*BAD_CURRENCIES, "EUR\n"])
    def test_order_currency_is_checked(self, code: str) -> None:
        """An Order's currency must be three upper-case letters ('eur' or 'EURO' are refused)."""
        assert order_errors(order_payload(currency=code)) == {("currency",)}

    def test_unknown_fields_are_refused_at_every_level(self) -> None:
        """Unknown keys on the order and inside a line are 'extra_forbidden' errors, not dropped."""
        payload = order_payload(discount="100%", lines=[line(1), line(2, status="free")])
        with pytest.raises(ValidationError) as exc:
            ex.Order.model_validate(payload)
        found = {(tuple(e["loc"]), e["type"]) for e in exc.value.errors()}
        assert found == {(("discount",), "extra_forbidden"), (("lines", 1, "status"), "extra_forbidden")}

    def test_order_needs_lines_and_a_customer(self) -> None:
        """An order with no lines, or customer_id 0, is refused."""
        assert order_errors(order_payload(lines=[], customer_id=0)) == {("lines",), ("customer_id",)}

    def test_at_most_50_lines(self) -> None:
        """An order with 51 lines is refused at loc ('lines',)."""
        assert order_errors(order_payload(lines=[line(n) for n in range(51)])) == {("lines",)}

    def test_same_book_twice_is_refused(self) -> None:
        """The same book on two lines (even spelled differently) violates the order invariant."""
        lines = [
            {"isbn": "978-0-306-40615-7", "quantity": 1, "unit_price": "1.00"},
            {"isbn": "9780306406157", "quantity": 2, "unit_price": "1.00"},
        ]
        with pytest.raises(ValidationError) as exc:
            ex.Order.model_validate(order_payload(lines=lines))
        # A model validator reports at loc (); a validator on `lines` at ("lines",).
        assert error_locations(exc) <= {(), ("lines",)}

    def test_order_and_its_lines_are_immutable(self) -> None:
        """Orders and lines are frozen: no field can be reassigned, and no line added or replaced."""
        order = ex.Order.model_validate(order_payload())
        with pytest.raises(ValidationError):
            order.customer_id = 8
        with pytest.raises(ValidationError):
            order.lines[0].quantity = 50
        extra = ex.OrderLine.model_validate(line(3, 5, "9.99"))
        with pytest.raises((AttributeError, TypeError)):
            order.lines.append(extra)
        with pytest.raises(TypeError):
            order.lines[0] = extra
        assert order.total() == Money.of("25.99")


# ---------------------------------------------------------------------- task 4
class TestRepository:
    """Task 4: a generic repository mypy can check."""

    def test_add_get_list(self) -> None:
        """Items come back by key, in insertion order; a missing key gives None; list() is a copy."""
        repo = ex.InMemoryRepository()
        repo.add("b", 2)
        repo.add("a", 1)
        assert (repo.get("a"), repo.get("missing"), repo.list()) == (1, None, [2, 1])
        repo.list().append(3)
        assert repo.list() == [2, 1]

    def test_repositories_are_independent(self) -> None:
        """Two repositories never share items."""
        first, second = ex.InMemoryRepository(), ex.InMemoryRepository()
        first.add("shared-key", "first")
        second.add("shared-key", "second")
        assert (first.list(), second.list()) == (["first"], ["second"])

    def test_duplicate_key_is_refused(self) -> None:
        """Adding an existing key raises KeyError and keeps the first item."""
        repo = ex.InMemoryRepository()
        repo.add("a", 1)
        with pytest.raises(KeyError):
            repo.add("a", 2)
        assert repo.get("a") == 1
        assert repo.list() == [1]

    @pytest.mark.deep
    @pytest.mark.time_limit(120)
    def test_mypy_strict_accepts_the_module(self, mypy_report: list[str]) -> None:
        """mypy --strict finds no error in the exercise module."""
        mine = Path(ex.__file__).name
        errors = [line for line in mypy_report if ": error:" in line and mine in line]
        assert errors == [], "mypy --strict reports:\n" + "\n".join(errors)

    @pytest.mark.deep
    @pytest.mark.time_limit(120)
    def test_mypy_follows_the_repository_types(self, mypy_report: list[str]) -> None:
        """mypy --strict accepts correct use of Repository and InMemoryRepository, and flags each misuse."""
        errors = [line for line in mypy_report if ": error:" in line]
        in_good = [line for line in errors if "good_usage.py" in line]
        assert in_good == [], "mypy --strict rejects correct use:\n" + "\n".join(in_good)
        flagged = {int(line.split(":")[1]) for line in errors if "bad_usage.py" in line}
        assert flagged == BAD_LINES, (
            f"mypy should flag lines {sorted(BAD_LINES)} of\n{BAD_USAGE}flagged {sorted(flagged)}"
        )


GOOD_USAGE = textwrap.dedent(
    """\
    from collections.abc import Hashable
    from decimal import Decimal
    from typing import assert_type

    from {module} import Book, InMemoryRepository, Money, Repository, normalize_isbn13


    def store(repo: Repository[str, Book], book: Book) -> Book | None:
        repo.add(book.isbn, book)
        return repo.get(book.isbn)


    books: InMemoryRepository[str, Book] = InMemoryRepository()
    book = Book(isbn="9780306406157", title="Dune", price=Decimal("9.99"))
    assert_type(store(books, book), Book | None)
    assert_type(books.get("x"), Book | None)
    assert_type(books.list(), list[Book])
    any_key: InMemoryRepository[Hashable, Book] = InMemoryRepository()
    assert_type(store(any_key, book), Book | None)
    assert_type(Money.of("1") + Money.of("2"), Money)
    assert_type(Money.of("1") * 2, Money)
    assert_type(normalize_isbn13("9780306406157"), str)
    """
)
BAD_USAGE = textwrap.dedent(
    """\
    from {module} import Book, InMemoryRepository, Repository

    books: InMemoryRepository[str, Book] = InMemoryRepository()
    books.add("k", 42)
    books.add(1, Book.model_construct())
    title: str = books.get("k").title
    numbers: Repository[str, int] = books
    """
)
BAD_LINES = {4, 5, 6, 7}


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One mypy --strict run over the exercise module and two sample files using it."""
    module = f"{current_impl()}.ex01_modern_python"
    scratch = tmp_path_factory.mktemp("ex01-mypy")
    good, bad = scratch / "good_usage.py", scratch / "bad_usage.py"
    good.write_text(GOOD_USAGE.format(module=module), encoding="utf-8")
    bad.write_text(BAD_USAGE.format(module=module), encoding="utf-8")
    stdout, stderr, _status = mypy_api.run(
        [
            "--strict", "--no-error-summary", "--hide-error-context", "--no-pretty", "--no-color-output",
            "--config-file", str(paths.ROOT / "pyproject.toml"),
            "--cache-dir", str(paths.work_dir("mypy-cache")),
            str(Path(ex.__file__)), str(good), str(bad),
        ]
    )  # fmt: skip
    return (stdout + stderr).splitlines()


# ---------------------------------------------------------------------- task 5
class TestSettings:
    """Task 5: settings come from BOOKSTORE_* environment variables."""

    @pytest.fixture(autouse=True)
    def clean_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("DATABASE_URL", "PAGE_SIZE", "DEBUG"):
            monkeypatch.delenv(f"BOOKSTORE_{name}", raising=False)
            monkeypatch.delenv(name, raising=False)

    def test_reads_prefixed_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """BOOKSTORE_PAGE_SIZE, BOOKSTORE_DEBUG and BOOKSTORE_DATABASE_URL are read; unset ones keep defaults."""
        monkeypatch.setenv("BOOKSTORE_PAGE_SIZE", "50")
        monkeypatch.setenv("BOOKSTORE_DEBUG", "true")
        settings = ex.Settings()
        assert (settings.page_size, settings.debug) == (50, True)
        assert settings.database_url.get_secret_value() == "sqlite:///bookstore.sqlite"
        monkeypatch.setenv("BOOKSTORE_DATABASE_URL", "postgresql://shop@db/shop")
        monkeypatch.setenv("BOOKSTORE_DEBUG", "0")
        settings = ex.Settings()
        assert (settings.database_url.get_secret_value(), settings.debug) == (
            "postgresql://shop@db/shop",
            False,
        )

    def test_unprefixed_variables_are_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A plain PAGE_SIZE, DEBUG or DATABASE_URL (another app's setting) does not leak in."""
        monkeypatch.setenv("PAGE_SIZE", "7")
        monkeypatch.setenv("DEBUG", "true")
        monkeypatch.setenv("DATABASE_URL", "postgresql://other@db/other")
        settings = ex.Settings()
        assert (settings.page_size, settings.debug) == (20, False)
        assert settings.database_url.get_secret_value() == "sqlite:///bookstore.sqlite"

    @pytest.mark.parametrize(
        ("name", "value"),
        [("PAGE_SIZE", "0"), ("PAGE_SIZE", "101"), ("PAGE_SIZE", "twenty"), ("DEBUG", "maybe")],
    )
    def test_invalid_values_fail_at_start_up(
        self, monkeypatch: pytest.MonkeyPatch, name: str, value: str
    ) -> None:
        """BOOKSTORE_PAGE_SIZE outside 1-100 or not a number, or a BOOKSTORE_DEBUG that is not a boolean, raises ValidationError."""
        monkeypatch.setenv(f"BOOKSTORE_{name}", value)
        with pytest.raises(ValidationError):
            ex.Settings()

    def test_database_password_is_not_shown(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The database URL's password appears in no repr, str or dump of the settings, yet the URL can be read."""
        url = "postgresql://shop:s3cr3t-pw@db.internal/shop"
        monkeypatch.setenv("BOOKSTORE_DATABASE_URL", url)
        settings = ex.Settings()
        shown = [repr(settings), str(settings), repr(settings.model_dump()), settings.model_dump_json()]
        assert not [text for text in shown if "s3cr3t-pw" in text]
        assert settings.database_url.get_secret_value() == url
