"""An empty URLconf: each course app brings its own routes (``request.urlconf``)."""

from typing import Any

urlpatterns: list[Any] = []
