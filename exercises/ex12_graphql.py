"""A GraphQL API over the bookstore: a query budget, a depth limit, the caller's orders only

Build the bookstore's GraphQL API with strawberry, mounted in FastAPI. This
docstring is the contract: ``tests/exercises/test_ex12_graphql.py`` checks it,
one test class per task. ``check("ex12")`` shows which tasks pass;
``hint("ex12")`` helps with the first open one.

create_app(engine) -> FastAPI
    A new app on ``engine`` (an SQLAlchemy AsyncEngine, SQLite or PostgreSQL,
    holding the tables of ``coursekit.bookstore``) that answers GraphQL at
    ``POST /graphql`` (JSON body ``{"query": ..., "variables": ...}``). The
    tests create many apps in one process on one engine, and talk to them
    through httpx's ASGITransport (which sends no lifespan events). Requests
    are concurrent: one app serves many at once, for different customers.

    The caller is ``current_customer_id(request)`` (given below: it stands for
    notebook 06's token check). No header, or a malformed one, means anonymous.

The schema (field names as the client sees them; types are named exactly so,
because clients write fragments ``on Book``, ``on Author``)::

    type Query {
      books(first: Int! = 20): [Book!]!   # the first `first` books by id; 1 <= first <= MAX_BOOKS
      book(id: Int!): Book                # null when there is no such book
      orders: [Order!]!                   # the caller's orders, by id
      order(id: Int!): Order              # one of the caller's orders, else null
    }
    type Mutation { placeOrder(input: PlaceOrderInput!): PlaceOrderPayload! }

    type Book { id: Int!  isbn: String!  title: String!  price: Decimal!
                stock: Int!            # copies in stock now (0 when the book has no stock row)
                author: Author!  reviews: [Review!]! }        # reviews by id
    type Author { id: Int!  name: String!  country: String!  books: [Book!]! }   # books by id
    type Review { id: Int!  rating: Int!  title: String!  reviewer: Customer! }
    type Customer { id: Int!  name: String!
                    orders: [Order!]! }    # this customer's orders by id, when they are the caller's; else []
    type Order { id: Int!  status: String!  placedAt: DateTime!  lines: [OrderLine!]! }   # lines by id
    type OrderLine { quantity: Int!  unitPrice: Decimal!  book: Book! }

    input PlaceOrderInput { lines: [OrderLineInput!]! }
    input OrderLineInput { bookId: Int!  quantity: Int! }
    type PlaceOrderPayload { order: Order  errors: [UserError!]! }
    type UserError { field: String!  code: String!  message: String! }

Task 1 · The catalogue
    ``books``, ``book`` and the fields of Book, Author and Review as above. A
    ``first`` outside 1..MAX_BOOKS is a GraphQL error whose message names the
    bound (and no data), never an internal error.

Task 2 · A query budget independent of the number of items
    A page of the catalogue (``books { id title stock author { id name } reviews
    { id rating reviewer { name } } }``) sends at most 5 SQL statements, and the
    same number for 1, 10 or 50 books. ``orders { lines { quantity book { id
    title author { name } } } }`` sends at most 4, the same for 2 or 3 orders.
    GraphQL resolves sibling fields concurrently (aliases, and fields of many
    objects at once); an AsyncSession refuses concurrent operations
    ("This session is provisioning a new connection; concurrent operations are
    not permitted"), and a database returns the rows of ``WHERE id IN (...)`` in
    an order of its choosing, without rows for absent keys.

Task 3 · Abusive queries are refused before they run
    - Depth: a leaf field counts 0, a field with a selection 1 + its deepest
      child (``{ books { title } }`` is 1 deep). A query (or mutation) at most
      MAX_DEPTH deep runs; a deeper one is refused with an error whose message
      contains "depth", no data, and no SQL sent. Fragments count as if written
      inline: ``{ books { ...F } } fragment F on Book { author { id } }`` is 2 deep.
    - Aliases: a document with at most MAX_ALIASES aliased fields runs; one
      with more is refused with an error whose message contains "alias".

Task 4 · Orders of the caller only, wherever they are reached
    ``orders`` lists exactly the caller's orders. ``order(id:)`` of another
    customer's order answers exactly what an id that does not exist answers
    (``{"data": {"order": null}}``, no error): nothing confirms that it exists.
    ``Customer.orders`` (reachable from any review) is the caller's orders on
    the caller's own Customer and ``[]`` on anyone else's. For an anonymous
    caller ``orders``, ``order`` and ``placeOrder`` are a GraphQL error whose
    message contains "authentication", with no order in the answer. Two customers' requests served at the same
    time, or one after the other by the same app, never see each other's data.

Task 5 · placeOrder
    Places an order for the caller with status "paid", placedAt now (UTC, naive),
    one line per input line at the book's current price, taking the copies from
    stock; returns ``{order, errors: []}``. The next request sees the new order
    and the lower stock. Problems the caller can fix are data, not GraphQL
    errors: ``{order: null, errors: [...]}`` and nothing written (no order, no
    stock taken, not even for the other lines):
    - a quantity outside 1..MAX_QUANTITY: code ``QUANTITY_OUT_OF_RANGE``,
      field ``lines.<i>.quantity`` (i: the line's index in the input);
    - no lines or more than MAX_LINES: ``LINES_OUT_OF_RANGE``, field ``lines``;
    - the same book twice: ``DUPLICATE_BOOK``, field ``lines.<i>.bookId``;
    - an unknown book: ``UNKNOWN_BOOK``, field ``lines.<i>.bookId``;
    - more copies than in stock: ``OUT_OF_STOCK``, field ``lines.<i>.quantity``.
    Buyers race: 20 simultaneous orders for the last 5 copies give exactly 5
    orders and 15 ``OUT_OF_STOCK``, never a negative stock nor another error,
    on SQLite and on PostgreSQL (where every request has its own connection).

Task 6 · Internal errors are masked
    An unexpected failure (a database error, a bug) reaches the client as an
    error whose message says nothing about it: no SQL, table, driver or
    exception text. Errors meant for the client (tasks 1, 3 and 4) keep their
    messages.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "MAX_ALIASES",
    "MAX_BOOKS",
    "MAX_DEPTH",
    "MAX_LINES",
    "MAX_QUANTITY",
    "create_app",
    "current_customer_id",
]

MAX_DEPTH: Final = 6
MAX_ALIASES: Final = 10
MAX_BOOKS: Final = 100
MAX_QUANTITY: Final = 10
MAX_LINES: Final = 20
CUSTOMER_HEADER: Final = "X-Customer-Id"


def current_customer_id(request: Request) -> int | None:
    """The signed-in customer's id (stands in for notebook 06's token check), or None."""
    raw = request.headers.get(CUSTOMER_HEADER, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 9 else None


def create_app(engine: AsyncEngine) -> FastAPI:
    """The bookstore's GraphQL API at POST /graphql (see the module docstring)."""
    raise NotImplementedError
