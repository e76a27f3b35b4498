"""Passwords, access tokens and the login rate limit.

Passwords: argon2id through pwdlib. Tokens: HS256 JWTs, decoded with the algorithm
pinned and exp/iss/aud/sub required. Limit: failed logins per username in a sliding
window; while limited even the right password is refused (429 + Retry-After).
"""

from __future__ import annotations

import functools
import math
import time
from collections import deque
from collections.abc import Callable

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from .models import Principal
from .settings import Settings

__all__ = ["InvalidToken", "LoginLimiter", "decode_token", "hash_password", "issue_token", "verify_password"]

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or meant for someone else."""


@functools.cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism),))


def _hasher_for(settings: Settings) -> PasswordHash:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)


def hash_password(settings: Settings, password: str) -> str:
    """An argon2id hash of ``password`` (salted: two calls give two different hashes)."""
    return _hasher_for(settings).hash(password)


def verify_password(settings: Settings, password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; a missing hash (unknown user) costs a hash all the same."""
    hasher = _hasher_for(settings)
    if password_hash is None:
        # Same work as a real check, so the answer time does not tell who exists.
        hasher.verify(password, _dummy_hash(settings))
        return False
    return hasher.verify(password, password_hash)


@functools.cache
def _dummy_hash_of(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash("no such user: dummy password")


def _dummy_hash(settings: Settings) -> str:
    return _dummy_hash_of(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)


def issue_token(settings: Settings, principal: Principal, *, now: float | None = None) -> str:
    """A signed access token for ``principal``, valid ``settings.access_ttl_s`` seconds."""
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": str(principal.user_id),  # RFC 7519: sub is a string
        "role": principal.role,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued,
        "exp": issued + settings.access_ttl_s,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def decode_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; ``InvalidToken`` for anything else."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],  # pinned: never the algorithm the token names
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return Principal(user_id=int(claims["sub"]), role=claims["role"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
        raise InvalidToken(str(exc)) from None


class LoginLimiter:
    """At most ``attempts`` failed logins per key within ``window_s`` seconds (sliding window)."""

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._attempts = attempts
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None when it may try now."""
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]  # bounded memory: idle keys are forgotten
            return None
        if len(failures) < self._attempts:
            return None
        return max(1, math.ceil(failures[0] + self._window_s - now))

    def failed(self, key: str) -> None:
        self._failures.setdefault(key, deque()).append(self._clock())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
