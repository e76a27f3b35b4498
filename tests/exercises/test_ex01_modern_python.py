"""Tests for ex01: the typed bookstore domain model."""

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


class TestMoney:
    """Task 1: Money is exact, immutable and single-currency."""

    def test_decimal_arithmetic_is_exact(self) -> None:
        """0.10 + 0.20 is exactly 0.30 (floats would give 0.30000000000000004)."""
        assert Money.of("0.10") + Money.of("0.20") == Money.of("0.30")
        assert Money.of("1.00") - Money.of("0.01") == Money.of("0.99")

    def test_float_is_refused(self) -> None:
        """A float amount raises TypeError, in the constructor and in Money.of."""
        with pytest.raises(TypeError):
            Money(0.1, "EUR")
        with pytest.raises(TypeError):
            Money.of(0.1)  # type: ignore[arg-type]

    def test_more_than_two_decimals_is_refused_not_rounded(self) -> None:
        """Money.of('1.005') raises ValueError instead of rounding silently."""
        with pytest.raises(ValueError, match=r"."):
            Money.of("1.005")
        with pytest.raises(ValueError, match=r"."):
            Money(Decimal("NaN"), "EUR")

    def test_amount_is_normalised_to_cents(self) -> None:
        """Money.of('5') equals, hashes like and prints like Money.of('5.00')."""
        assert Money.of("5") == Money.of("5.00")
        assert hash(Money.of("5")) == hash(Money.of("5.00"))
        assert str(Money.of(5)) == "5.00 EUR"
        assert str(Money.of("12.5", "USD")) == "12.50 USD"

    def test_currencies_do_not_mix(self) -> None:
        """EUR + USD raises CurrencyMismatchError (a ValueError), in both directions."""
        with pytest.raises(ex.CurrencyMismatchError):
            Money.of("1", "EUR") + Money.of("1", "USD")
        with pytest.raises(ValueError, match=r"."):
            Money.of("1", "USD") - Money.of("1", "EUR")

    @pytest.mark.parametrize("code", ["eur", "EURO", "E1R", ""])
    def test_currency_code_is_three_upper_case_letters(self, code: str) -> None:
        """Currency codes like 'eur' or 'EURO' are refused with ValueError."""
        with pytest.raises(ValueError, match=r"."):
            Money.of("1", code)

    def test_multiply_by_whole_quantity_only(self) -> None:
        """Money * 3 works; Money * 1.5 raises TypeError."""
        assert Money.of("2.50") * 3 == Money.of("7.50")
        with pytest.raises(TypeError):
            Money.of("2.50") * 1.5

    def test_is_immutable(self) -> None:
        """Assigning to a Money attribute raises FrozenInstanceError."""
        price = Money.of("1.00")
        with pytest.raises(dataclasses.FrozenInstanceError):
            price.amount = Decimal("2.00")  # type: ignore[misc]


class TestIsbn:
    """Task 2: ISBN-13 normalisation and check digit."""

    def test_hyphens_and_spaces_are_removed(self) -> None:
        """'978-0-306-40615-7' and '978 0 306 40615 7' normalise to 13 digits."""
        assert ex.normalize_isbn13("978-0-306-40615-7") == VALID_ISBN
        assert ex.normalize_isbn13("978 0 306 40615 7") == VALID_ISBN

    @pytest.mark.parametrize(
        "bad",
        [
            "9780306406158",  # wrong check digit
            "978030640615",  # 12 digits
            "97803064061570",  # 14 digits
            "97803064061X7",  # a letter
            "9770306406150",  # valid sum, but 977 is not an ISBN prefix
            "٩٧٨٠٣٠٦٤٠٦١٥٧",  # Arabic-Indic digits: str.isdigit() says yes
        ],
    )
    def test_invalid_isbns_are_refused(self, bad: str) -> None:
        """Wrong check digit, wrong length, letters, wrong prefix, non-ASCII digits: ValueError."""
        with pytest.raises(ValueError, match=r"."):
            ex.normalize_isbn13(bad)

    def test_every_isbn_in_the_data_set_is_valid(self) -> None:
        """All 2,000 ISBNs of the course data set pass (catches wrong weights)."""
        with (paths.DATASET_DIR / "books.csv").open(newline="") as handle:
            isbns = [row["isbn"] for row in csv.DictReader(handle)]
        assert len(isbns) == 2_000
        assert [ex.normalize_isbn13(i) for i in isbns] == isbns


class TestModels:
    """Task 3: Pydantic models refuse invalid data."""

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

    @pytest.mark.parametrize("price", ["1.999", "-0.01", "100000000000"])
    def test_book_price_constraints(self, price: str) -> None:
        """Prices below 0, with 3 decimals or over 10 digits are refused."""
        with pytest.raises(ValidationError) as exc:
            ex.Book(isbn=VALID_ISBN, title="Dune", price=price)
        assert error_locations(exc) == {("price",)}

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

    def test_order_total(self) -> None:
        """total() is the exact sum of quantity x unit price, as Money in the order currency."""
        order = ex.Order.model_validate(order_payload())
        assert order.total() == Money.of("25.99", "EUR")
        usd = ex.Order.model_validate(order_payload(currency="USD"))
        assert usd.total() == Money.of("25.99", "USD")

    def test_validation_error_points_at_the_bad_line(self) -> None:
        """quantity 0 on the second line is reported at loc ('lines', 1, 'quantity')."""
        payload = order_payload()
        payload["lines"][1]["quantity"] = 0  # type: ignore[index]
        with pytest.raises(ValidationError) as exc:
            ex.Order.model_validate(payload)
        assert error_locations(exc) == {("lines", 1, "quantity")}

    def test_quantity_is_strict(self) -> None:
        """A quantity sent as the string '2' or as 2.5 is refused (strict int)."""
        for value in ("2", 2.5):
            payload = order_payload()
            payload["lines"][0]["quantity"] = value  # type: ignore[index]
            with pytest.raises(ValidationError) as exc:
                ex.Order.model_validate(payload)
            assert error_locations(exc) == {("lines", 0, "quantity")}

    def test_order_needs_lines_and_a_customer(self) -> None:
        """An order with no lines, or customer_id 0, is refused."""
        with pytest.raises(ValidationError) as exc:
            ex.Order.model_validate(order_payload(lines=[], customer_id=0))
        assert error_locations(exc) == {("lines",), ("customer_id",)}

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


class TestRepository:
    """Task 4: a generic repository mypy can check."""

    def test_add_get_list(self) -> None:
        """Items come back by key, in insertion order; a missing key gives None."""
        repo = ex.InMemoryRepository()
        repo.add("b", 2)
        repo.add("a", 1)
        assert (repo.get("a"), repo.get("missing"), repo.list()) == (1, None, [2, 1])

    def test_duplicate_key_is_refused(self) -> None:
        """Adding an existing key raises KeyError and keeps the first item."""
        repo = ex.InMemoryRepository()
        repo.add("a", 1)
        with pytest.raises(KeyError):
            repo.add("a", 2)
        assert repo.get("a") == 1

    def test_mypy_strict_accepts_the_module_and_catches_misuse(self) -> None:
        """mypy --strict passes on the module and on correct usage, and flags misuse."""
        module = f"{current_impl()}.ex01_modern_python"
        scratch = paths.work_dir("tests", "ex01-mypy")
        good = scratch / "good_usage.py"
        bad = scratch / "bad_usage.py"
        good.write_text(GOOD_USAGE.format(module=module))
        bad.write_text(BAD_USAGE.format(module=module))
        report = run_mypy([Path(ex.__file__), good, bad])
        errors = [line for line in report if ": error:" in line]
        not_in_bad = [line for line in errors if "bad_usage.py" not in line]
        assert not_in_bad == [], "mypy --strict reports:\n" + "\n".join(not_in_bad)
        flagged = {int(line.split(":")[1]) for line in errors if "bad_usage.py" in line}
        assert flagged == BAD_LINES, f"mypy should flag lines {BAD_LINES}, flagged {flagged}"


GOOD_USAGE = textwrap.dedent(
    """\
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
    assert_type(Money.of("1") + Money.of("2"), Money)
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


def run_mypy(files: list[Path]) -> list[str]:
    stdout, stderr, _status = mypy_api.run(
        [
            "--strict", "--no-error-summary", "--hide-error-context", "--no-pretty", "--no-color-output",
            "--config-file", str(paths.ROOT / "pyproject.toml"),
            "--cache-dir", str(paths.work_dir("mypy-cache")),
            *map(str, files),
        ]
    )  # fmt: skip
    return (stdout + stderr).splitlines()


class TestSettings:
    """Task 5: settings come from BOOKSTORE_* environment variables."""

    def test_reads_prefixed_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """BOOKSTORE_PAGE_SIZE and BOOKSTORE_DEBUG are read; unset ones keep defaults."""
        monkeypatch.setenv("BOOKSTORE_PAGE_SIZE", "50")
        monkeypatch.setenv("BOOKSTORE_DEBUG", "true")
        monkeypatch.delenv("BOOKSTORE_DATABASE_URL", raising=False)
        settings = ex.Settings()
        assert (settings.page_size, settings.debug) == (50, True)
        assert settings.database_url == "sqlite:///bookstore.sqlite"

    def test_unprefixed_variables_are_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A plain PAGE_SIZE or DEBUG (another app's setting) does not leak in."""
        monkeypatch.delenv("BOOKSTORE_PAGE_SIZE", raising=False)
        monkeypatch.delenv("BOOKSTORE_DEBUG", raising=False)
        monkeypatch.setenv("PAGE_SIZE", "7")
        monkeypatch.setenv("DEBUG", "true")
        settings = ex.Settings()
        assert (settings.page_size, settings.debug) == (20, False)

    @pytest.mark.parametrize("value", ["0", "101", "twenty"])
    def test_invalid_page_size_fails_at_start_up(
        self, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        """BOOKSTORE_PAGE_SIZE outside 1-100 (or not a number) raises ValidationError."""
        monkeypatch.setenv("BOOKSTORE_PAGE_SIZE", value)
        with pytest.raises(ValidationError):
            ex.Settings()
