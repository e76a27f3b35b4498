"""Passwords, access tokens and the login rate limit (Task 2: security).

Contract:

- ``hash_password`` stores passwords as argon2id (pwdlib), with the cost parameters
  of ``settings``; a hash is salted, so two hashes of one password differ.
- ``verify_password`` checks a password against a stored hash; for an unknown user
  (``password_hash=None``) it returns False after the same work as a real check, so
  answer times do not reveal who has an account.
- ``issue_token`` signs an access token for a principal: HS256 with
  ``settings.jwt_secret``, claims ``sub`` (the user id, as a string, RFC 7519),
  ``role``, ``iss``, ``aud``, ``iat``, ``exp`` (``access_ttl_s`` from now).
- ``decode_token`` returns the principal of a valid token and raises ``InvalidToken``
  for anything else: another algorithm than HS256 (``alg: none`` included),
  another key, a changed payload, an expired token, another audience or issuer,
  a missing ``exp``/``iss``/``aud``/``sub``, garbage.
- ``LoginLimiter``: at most ``attempts`` failed logins per key (a username) within a
  sliding window of ``window_s`` seconds; while a key is limited, ``retry_after``
  says in how many whole seconds (>= 1) it may try again, and the API refuses even
  the right password. A success clears the key's failures. Idle keys must not
  pile up in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .models import Principal
from .settings import Settings

__all__ = ["InvalidToken", "LoginLimiter", "decode_token", "hash_password", "issue_token", "verify_password"]


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or meant for someone else."""


def hash_password(settings: Settings, password: str) -> str:
    """An argon2id hash of ``password`` (salted: two calls give two different hashes)."""
    raise NotImplementedError


def verify_password(settings: Settings, password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; a missing hash (unknown user) costs a hash all the same."""
    raise NotImplementedError


def issue_token(settings: Settings, principal: Principal, *, now: float | None = None) -> str:
    """A signed access token for ``principal``, valid ``settings.access_ttl_s`` seconds from ``now``."""
    raise NotImplementedError


def decode_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; ``InvalidToken`` for anything else."""
    raise NotImplementedError


class LoginLimiter:
    """At most ``attempts`` failed logins per key within ``window_s`` seconds (sliding window)."""

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        raise NotImplementedError

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None when it may try now."""
        raise NotImplementedError

    def failed(self, key: str) -> None:
        """Count one failed login for ``key``."""
        raise NotImplementedError

    def succeeded(self, key: str) -> None:
        """Forget ``key``'s failures."""
        raise NotImplementedError
