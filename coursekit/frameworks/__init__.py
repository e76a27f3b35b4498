"""The same bookstore service in FastAPI, Django and Flask (notebook 14, exercise ex14).

- :mod:`coursekit.frameworks.service`: the SQLAlchemy data layer and Pydantic models the
  FastAPI and Flask apps share, byte for byte;
- :mod:`coursekit.frameworks.fastapi_app` and :mod:`coursekit.frameworks.flask_app`: the two
  references of the HTTP contract;
- :mod:`coursekit.frameworks.django_setup`: Django configured in-process on the course
  database, and its WSGI/ASGI apps; :mod:`coursekit.frameworks.django_bookstore`: the Django
  models of the bookstore tables;
- :mod:`coursekit.frameworks.contract`: the contract every implementation must keep, as
  checks on an ``httpx.Client``, and the small data set they run on.
"""
