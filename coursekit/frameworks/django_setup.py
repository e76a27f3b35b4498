"""Django, configured in-process on the course database.

Django reads its settings once per process (``settings.configure``); the course
database of one name (``"ex14"``, ``"nb14"``) becomes Django's ``default``
database: the same SQLite file or PostgreSQL schema that :mod:`coursekit.db`
gives SQLAlchemy, so both ORMs read and write the same bookstore tables.

    from coursekit.frameworks.django_setup import configure_django, wsgi_app
    configure_django("ex14")
    app = wsgi_app(my_views_module)   # a module with ``urlpatterns``
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Final

from coursekit import db

APP_LABEL: Final = "django_bookstore"
APP_MODULE: Final = "coursekit.frameworks.django_bookstore"
_configured_for: list[str] = []  # the course database name Django was configured with


class DjangoAlreadyConfigured(RuntimeError):
    """Django can be configured once per process; this process chose another database."""


def django_databases(name: str) -> dict[str, dict[str, Any]]:
    """Django's ``DATABASES`` for the named course database (see :mod:`coursekit.db`)."""
    url = db.sync_url(name)
    if url.get_backend_name() == "sqlite":
        return {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": url.database,
                "OPTIONS": {
                    # Wait for a competing writer instead of failing at once, like the
                    # SQLAlchemy engines of the course (the races are on purpose).
                    "timeout": 30,
                    # atomic() starts with BEGIN IMMEDIATE: the write lock at once. With
                    # SQLite's default (DEFERRED), a transaction that reads and then
                    # writes fails with "database is locked" when another writer is
                    # waiting, instead of waiting its turn (Django 5.1's advice).
                    "transaction_mode": "IMMEDIATE",
                },
            }
        }
    return {
        "default": {
            "ENGINE": "django.db.backends.postgresql",  # psycopg 3
            "NAME": url.database or "",
            "USER": url.username or "",
            "PASSWORD": url.password or "",
            "HOST": url.host or "",
            "PORT": str(url.port or ""),
            # The learner's and run's schema, exactly as SQLAlchemy's engines select it.
            "OPTIONS": {"options": f"-csearch_path={db.schema_name(name)}"},
        }
    }


def configure_django(name: str) -> None:
    """Configure Django for the named course database, once per process (idempotent)."""
    if _configured_for:
        if _configured_for[0] != name:
            raise DjangoAlreadyConfigured(
                f"Django is configured for the course database {_configured_for[0]!r} in this "
                f"process; it cannot switch to {name!r} (restart the kernel)"
            )
        return
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,  # errors answer 500 without a traceback page
        SECRET_KEY="course-only-not-secret",
        ALLOWED_HOSTS=["test", "testserver", "localhost"],
        INSTALLED_APPS=[APP_MODULE],
        MIDDLEWARE=[],  # an API with no cookies: no sessions, no CSRF middleware
        ROOT_URLCONF="coursekit.frameworks.django_bookstore.no_urls",
        DATABASES=django_databases(name),
        USE_TZ=False,  # the bookstore stores naive UTC datetimes, like the SQLAlchemy models
        TIME_ZONE="UTC",  # Django's default is America/Chicago
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            # Django logs every 4xx as a warning; the lessons answer 404/409/422 on purpose.
            "loggers": {"django.request": {"level": "ERROR"}},
        },
    )
    django.setup()
    _configured_for.append(name)


def _remember_exception(sender: Any, request: Any = None, **_kwargs: Any) -> None:
    if request is not None:
        request.course_exception = sys.exc_info()[1]


def wsgi_app(urlconf: ModuleType, raise_server_exceptions: bool = True) -> Any:
    """A WSGI app serving ``urlconf.urlpatterns`` (what gunicorn or mod_wsgi would call).

    With ``raise_server_exceptions`` (like Starlette's TestClient) an exception in a
    view reaches the caller instead of becoming Django's bare "Server Error (500)"
    page, so a test shows what went wrong.
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import got_request_exception

    got_request_exception.connect(_remember_exception, dispatch_uid="coursekit-remember-exception")

    class CourseWSGIHandler(WSGIHandler):  # type: ignore[misc]  # Django ships no types
        def get_response(self, request: Any) -> Any:
            request.urlconf = urlconf  # Django resolves this request with these routes
            response = super().get_response(request)
            failure = getattr(request, "course_exception", None)
            if raise_server_exceptions and failure is not None:
                raise failure
            return response

    return CourseWSGIHandler()


def asgi_app(urlconf: ModuleType) -> Any:
    """An ASGI app serving ``urlconf.urlpatterns`` (what uvicorn or daphne would call)."""
    from django.core.handlers.asgi import ASGIHandler

    class CourseASGIHandler(ASGIHandler):  # type: ignore[misc]  # Django ships no types
        async def get_response_async(self, request: Any) -> Any:
            request.urlconf = urlconf
            return await super().get_response_async(request)

    return CourseASGIHandler()


def problem(status: int, title: str, detail: str) -> Any:
    """An RFC 9457 problem-details response: the error shape of every course API."""
    from django.http import JsonResponse

    return JsonResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )
