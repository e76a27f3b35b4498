"""Generate the bookstore data set (CSV files in data/bookstore/) from a fixed seed.

    python data/generate.py            # rewrite data/bookstore/*.csv
    python data/generate.py --out DIR  # write elsewhere (the tests do this)

Standard library only, deterministic: the same seed gives byte-identical files
on every machine. Popularity is skewed (a few bestsellers, a long tail) so that
reports and caches behave as they do on real shops.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import random
from pathlib import Path

SEED = 20_240_101
SIZES = {
    "authors": 200,
    "books": 2_000,
    "customers": 5_000,
    "orders": 20_000,
    "reviews": 30_000,
}
START = dt.datetime(2024, 1, 1)
DAYS = 730

FIRST = (
    "Ada Alan Amara Ana Ben Carla Chen David Elena Emil Farah Grace Hana Ivan Jade Jonas Kofi "
    "Lara Leo Lina Maya Mateo Nina Noah Omar Priya Rosa Sam Sara Tariq Uma Vera Wei Yara Zoe"
).split()
LAST = (
    "Abe Bauer Costa Dubois Eze Fischer Garcia Haddad Ito Jensen Kim Lopez Moreau Novak Okafor "
    "Park Quinn Rossi Silva Tanaka Ueda Varga Wagner Xu Yilmaz Zhang Berg Khan Mills Ortiz"
).split()
COUNTRIES = "DE FR GB US NL ES IT SE PL JP BR IN NG CA AU".split()
GENRES = "fiction mystery fantasy science history biography poetry travel cooking business".split()
LANGUAGES = ("en", "en", "en", "de", "fr", "es")
WORDS = (
    "silent river garden winter letters shadow city glass north empire secret voyage night "
    "stone orchard signal harbour atlas engine memory ember paper clock island mirror forest "
    "tide crown lantern echo salt iron summer orbit archive"
).split()
REVIEW_TITLES = {
    1: ("Not for me", "Disappointing", "Could not finish"),
    2: ("Uneven", "Slow going", "Expected more"),
    3: ("Decent read", "Mixed feelings", "Fine"),
    4: ("Very good", "Enjoyed it", "Recommended"),
    5: ("Outstanding", "A masterpiece", "Loved every page"),
}


def isbn13(rng: random.Random) -> str:
    """A random ISBN-13 with a correct check digit (prefix 978)."""
    body = "978" + "".join(str(rng.randrange(10)) for _ in range(9))
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def zipf_weights(n: int, s: float, rng: random.Random) -> list[float]:
    """Weights for n items with a Zipf-like skew, in a shuffled order."""
    weights = [1 / (rank**s) for rank in range(1, n + 1)]
    rng.shuffle(weights)
    return weights


def _write(out: Path, name: str, header: list[str], rows: list[list[object]]) -> None:
    with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _timestamp(rng: random.Random) -> dt.datetime:
    return START + dt.timedelta(seconds=rng.randrange(DAYS * 86_400))


def generate(out: Path, seed: int = SEED) -> dict[str, int]:
    """Write all CSV files to ``out``; return the row count of each table."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)

    authors = [
        [i, f"{rng.choice(FIRST)} {rng.choice(LAST)}", rng.choice(COUNTRIES), rng.randint(1930, 1995)]
        for i in range(1, SIZES["authors"] + 1)
    ]

    isbns: set[str] = set()
    books = []
    author_weights = zipf_weights(len(authors), 0.8, rng)
    for i in range(1, SIZES["books"] + 1):
        isbn = isbn13(rng)
        while isbn in isbns:
            isbn = isbn13(rng)
        isbns.add(isbn)
        title = " ".join(rng.sample(WORDS, rng.randint(2, 4))).capitalize()
        author_id = rng.choices(range(1, len(authors) + 1), weights=author_weights)[0]
        price = f"{rng.randint(5, 60)}.{rng.choice(['00', '49', '95', '99'])}"
        books.append([
            i, isbn, title, author_id, rng.choice(GENRES), rng.choice(LANGUAGES),
            rng.randint(1950, 2025), rng.randint(80, 900), price,
        ])  # fmt: skip

    customers = []
    for i in range(1, SIZES["customers"] + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        joined = (START - dt.timedelta(days=365) + dt.timedelta(days=rng.randrange(DAYS))).date()
        customers.append([
            i, f"{first}.{last}.{i}@example.com".lower(), f"{first} {last}",
            rng.choice(COUNTRIES), joined.isoformat(),
        ])  # fmt: skip

    book_ids = list(range(1, len(books) + 1))
    book_cum = list(itertools.accumulate(zipf_weights(len(books), 1.05, rng)))
    customer_ids = list(range(1, len(customers) + 1))
    customer_cum = list(itertools.accumulate(zipf_weights(len(customers), 0.6, rng)))
    prices = {row[0]: row[8] for row in books}

    orders, lines = [], []
    line_id = itertools.count(1)
    for i in range(1, SIZES["orders"] + 1):
        status = rng.choices(("shipped", "paid", "cancelled"), weights=(80, 15, 5))[0]
        customer = rng.choices(customer_ids, cum_weights=customer_cum)[0]
        orders.append([i, customer, _timestamp(rng).isoformat(sep=" "), status])
        n_lines = rng.choices((1, 2, 3, 4, 5), weights=(35, 30, 18, 10, 7))[0]
        chosen: set[int] = set()
        while len(chosen) < n_lines:
            chosen.add(rng.choices(book_ids, cum_weights=book_cum)[0])
        for book_id in sorted(chosen):
            quantity = rng.choices((1, 2, 3), weights=(85, 12, 3))[0]
            lines.append([next(line_id), i, book_id, quantity, prices[book_id]])

    reviews, reviewed = [], set()
    while len(reviews) < SIZES["reviews"]:
        book = rng.choices(book_ids, cum_weights=book_cum)[0]
        customer = rng.choices(customer_ids, cum_weights=customer_cum)[0]
        if (book, customer) in reviewed:
            continue
        reviewed.add((book, customer))
        rating = rng.choices((1, 2, 3, 4, 5), weights=(5, 8, 17, 35, 35))[0]
        reviews.append([
            len(reviews) + 1, book, customer, rating,
            rng.choice(REVIEW_TITLES[rating]), _timestamp(rng).isoformat(sep=" "),
        ])  # fmt: skip

    stock = [[book_id, rng.choice((0, 1, 2, 5, 10, 25, 50, 100))] for book_id in book_ids]

    tables: dict[str, tuple[list[str], list[list[object]]]] = {
        "authors": (["id", "name", "country", "born"], authors),
        "books": (
            ["id", "isbn", "title", "author_id", "genre", "language", "published_year", "pages",
             "price"],
            books,
        ),
        "customers": (["id", "email", "name", "country", "joined_on"], customers),
        "orders": (["id", "customer_id", "placed_at", "status"], orders),
        "order_lines": (["id", "order_id", "book_id", "quantity", "unit_price"], lines),
        "reviews": (["id", "book_id", "customer_id", "rating", "title", "created_at"], reviews),
        "stock": (["book_id", "quantity"], stock),
    }
    for name, (header, rows) in tables.items():
        _write(out, name, header, rows)
    return {name: len(rows) for name, (_, rows) in tables.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "bookstore")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    for table, count in generate(args.out, args.seed).items():
        print(f"{table:<12} {count:>7,} rows")


if __name__ == "__main__":
    main()
