"""The bookstore tables as a Django app (models with ``managed = False``, one managed model).

The course's loader creates and fills the bookstore tables with SQLAlchemy
(:mod:`coursekit.dataset`); these models map onto the same tables, so both
ORMs work on one database. ``managed = False`` tells Django's migrations that
the tables are someone else's: ``migrate`` records them but never creates,
alters or drops them. ``Wishlist`` is Django's own table, created by the
migration in ``migrations/0001_initial.py``.
"""
