"""Lint an OpenAPI document with Spectral and the OWASP API Security ruleset.

Spectral is a Node.js tool. ``make spectral`` installs the pinned versions from
``tools/spectral/package-lock.json`` into ``tools/spectral/node_modules`` (Node.js and npm
needed); nothing here downloads anything at lint time. The lint runs as a subprocess
on a copy of the document written to this run's scratch folder.

    python -m coursekit lint-openapi 03     # your ex03 app (COURSE_IMPL=solutions: the reference)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from coursekit import paths, runs

SPECTRAL_DIR: Final = paths.ROOT / "tools" / "spectral"
RULESET: Final = SPECTRAL_DIR / "ruleset.yaml"
INSTALL_HINT: Final = "Spectral is not installed: run `make spectral` (needs Node.js and npm)."
# Set by CI: a missing Spectral is then an error, never a quiet skip.
REQUIRE_ENV: Final = "COURSE_REQUIRE_SPECTRAL"
LINT_TIMEOUT_S: Final = 120

SEVERITIES: Final = ("error", "warn", "info", "hint")  # Spectral's 0..3

# Rules notebook 03 leaves to notebook 06, and why. Every other rule is in scope for 03:
# a document from 03 onwards must have no error outside this table.
LEFT_TO_06: Final[dict[str, str]] = {
    "owasp:api1:2023-no-numeric-ids": (
        "guessable ids hurt only where object-level authorization is missing; 06 adds that "
        "check and opaque ids"
    ),
    "owasp:api2:2023-read-restricted": "03's API has no authentication yet; 06 adds it",
    "owasp:api2:2023-write-restricted": "03's API has no authentication yet; 06 adds it",
    "owasp:api8:2023-define-error-responses-401": "a 401 exists once authentication does (06)",
    "owasp:api4:2023-rate-limit": "rate limits and their headers are built in 06",
    "owasp:api4:2023-rate-limit-responses-429": "the 429 comes with rate limiting (06)",
    "owasp:api8:2023-define-cors-origin": (
        "which browser origins may call the API is decided with how tokens travel (06)"
    ),
}


class SpectralUnavailable(RuntimeError):
    """Spectral is not installed (``make spectral``)."""


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # one of SEVERITIES
    path: str  # JSON path in the document, dotted: "paths./v1/books.get.responses"
    message: str


def executable() -> Path | None:
    found = SPECTRAL_DIR / "node_modules" / ".bin" / "spectral"
    return found if found.exists() and shutil.which("node") else None


def available() -> bool:
    return executable() is not None


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def lint_openapi(document: dict[str, Any]) -> list[Finding]:
    """Every finding of ``spectral:oas`` and the OWASP ruleset on ``document``."""
    spectral = executable()
    if spectral is None:
        raise SpectralUnavailable(INSTALL_HINT)
    target = runs.run_dir("spectral") / "openapi.json"
    target.write_text(json.dumps(document), encoding="utf-8")
    try:
        result = subprocess.run(
            [str(spectral), "lint", "--ruleset", str(RULESET), "--format", "json", "--quiet",
             str(target)],
            capture_output=True, text=True, timeout=LINT_TIMEOUT_S, check=False,
        )  # fmt: skip
    finally:
        target.unlink(missing_ok=True)
    # Exit status 1 means "found errors"; anything else non-zero means Spectral itself failed.
    if result.returncode not in (0, 1):
        raise RuntimeError(f"Spectral failed ({result.returncode}): {result.stderr.strip()[:500]}")
    raw = json.loads(result.stdout or "[]")
    return [
        Finding(
            code=str(item["code"]),
            severity=SEVERITIES[int(item["severity"])],
            path=".".join(str(part) for part in item["path"]),
            message=str(item["message"]),
        )
        for item in raw
    ]


def in_scope_errors(findings: list[Finding]) -> list[Finding]:
    """Errors a notebook-03-level API must not have (everything but ``LEFT_TO_06``)."""
    return [f for f in findings if f.severity == "error" and f.code not in LEFT_TO_06]


def summary(findings: list[Finding]) -> list[tuple[str, str, int, str]]:
    """(rule, severity, count, where it is handled) rows, errors first, then by rule."""
    counts = Counter((f.code, f.severity) for f in findings)
    rows = [
        (code, severity, count, "06: " + LEFT_TO_06[code] if code in LEFT_TO_06 else "03")
        for (code, severity), count in counts.items()
    ]
    return sorted(rows, key=lambda row: (SEVERITIES.index(row[1]), row[0]))


def format_table(rows: list[tuple[str, str, int, str]]) -> str:
    width = max((len(row[0]) for row in rows), default=4)
    lines = [f"{'rule':{width}}  {'severity':8}  {'count':>5}  handled in"]
    lines += [f"{code:{width}}  {sev:8}  {count:5}  {where}" for code, sev, count, where in rows]
    return "\n".join(lines)
