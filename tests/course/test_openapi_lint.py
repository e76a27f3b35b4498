"""The reference APIs pass Spectral's OpenAPI and OWASP API Security rules.

Spectral needs Node.js (`make spectral`). Without it these tests skip, except where
COURSE_REQUIRE_SPECTRAL is set (CI), where a missing Spectral is a failure.
"""

from __future__ import annotations

import pytest

from coursekit import spectral
from coursekit.impl import load


@pytest.fixture(scope="module")
def lint_ready() -> None:
    if spectral.available():
        return
    if spectral.required():
        pytest.fail(
            f"{spectral.REQUIRE_ENV} is set but {spectral.INSTALL_HINT[0].lower()}{spectral.INSTALL_HINT[1:]}"
        )
    pytest.skip(spectral.INSTALL_HINT)


@pytest.mark.usefixtures("lint_ready")
def test_ex03_reference_has_no_error_in_notebook_03s_scope() -> None:
    """Bounded strings, arrays and integers everywhere; only 06's rules (auth, rate limits) left."""
    document = load("ex03_rest_api", "solutions").create_app().openapi()
    findings = spectral.lint_openapi(document)
    blocking = spectral.in_scope_errors(findings)
    assert not blocking, "\n".join(f"{f.code} at {f.path}: {f.message}" for f in blocking)
    # The lint really ran: the rules left to notebook 06 still fire on this API.
    assert {f.code for f in findings} >= {"owasp:api2:2023-write-restricted", "owasp:api4:2023-rate-limit"}


@pytest.mark.usefixtures("lint_ready")
def test_the_lint_finds_an_unbounded_contract() -> None:
    """A schema with an unbounded string, array and integer gets one error for each."""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {},
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string", "maxLength": 9}},
                        "count": {"type": "integer", "format": "int32"},
                    },
                }
            }
        },
    }
    codes = sorted(f.code for f in spectral.in_scope_errors(spectral.lint_openapi(document)))
    assert codes == [
        "owasp:api4:2023-array-limit",
        "owasp:api4:2023-integer-limit",
        "owasp:api4:2023-string-limit",
    ]
