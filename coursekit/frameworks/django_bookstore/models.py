"""Django models of the bookstore tables (see the package docstring).

Field by field they mirror :mod:`coursekit.bookstore` (the SQLAlchemy models):
``ForeignKey(..., db_column="author_id")`` is SQLAlchemy's ``author_id`` column
plus ``relationship()``; ``related_name`` is ``back_populates``.
"""

from __future__ import annotations

from django.db import models


class Author(models.Model):  # type: ignore[misc]  # Django ships no type information
    name = models.CharField(max_length=120)
    country = models.CharField(max_length=2)
    born = models.IntegerField()

    class Meta:
        managed = False
        db_table = "authors"


class Book(models.Model):  # type: ignore[misc]
    isbn = models.CharField(max_length=13, unique=True)
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, models.DO_NOTHING, db_column="author_id", related_name="books")
    genre = models.CharField(max_length=40)
    language = models.CharField(max_length=2)
    published_year = models.IntegerField()
    pages = models.IntegerField()
    price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        managed = False
        db_table = "books"


class Customer(models.Model):  # type: ignore[misc]
    email = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=120)
    country = models.CharField(max_length=2)
    joined_on = models.DateField()

    class Meta:
        managed = False
        db_table = "customers"


class Order(models.Model):  # type: ignore[misc]
    customer = models.ForeignKey(Customer, models.DO_NOTHING, db_column="customer_id", related_name="orders")
    placed_at = models.DateTimeField()
    status = models.CharField(max_length=12)

    class Meta:
        managed = False
        db_table = "orders"


class OrderLine(models.Model):  # type: ignore[misc]
    order = models.ForeignKey(Order, models.DO_NOTHING, db_column="order_id", related_name="lines")
    book = models.ForeignKey(Book, models.DO_NOTHING, db_column="book_id", related_name="order_lines")
    quantity = models.IntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        managed = False
        db_table = "order_lines"


class Review(models.Model):  # type: ignore[misc]
    book = models.ForeignKey(Book, models.DO_NOTHING, db_column="book_id", related_name="reviews")
    customer = models.ForeignKey(Customer, models.DO_NOTHING, db_column="customer_id", related_name="reviews")
    rating = models.IntegerField()
    title = models.CharField(max_length=120)
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "reviews"


class Stock(models.Model):  # type: ignore[misc]
    # The book's id is the stock row's primary key: one row per book, or none.
    book = models.OneToOneField(
        Book, models.DO_NOTHING, db_column="book_id", primary_key=True, related_name="stock"
    )
    quantity = models.IntegerField()

    class Meta:
        managed = False
        db_table = "stock"


class Wishlist(models.Model):  # type: ignore[misc]
    """A table Django owns: created and changed by migrations (``managed`` defaults to True)."""

    customer = models.ForeignKey(Customer, models.DO_NOTHING, db_constraint=False, related_name="+")
    book = models.ForeignKey(Book, models.DO_NOTHING, db_constraint=False, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "django_wishlist"
        constraints = [models.UniqueConstraint(fields=["customer", "book"], name="one_wish_per_book")]  # noqa: RUF012
