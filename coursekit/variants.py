"""Known wrong answers: the reference with one realistic learner mistake each.

Each exercise ships ``tests/wrong/exNN.toml``::

    [[variant]]
    name = "float-total"
    mistake = "adds line totals as floats"     # what a learner did, in one line
    [[variant.edit]]
    file = "ex01_modern_python.py"             # path inside the solution module or package
    old = "..."                                # text that must occur exactly once
    new = "..."

A variant is built by copying the reference into a scratch ``exercises`` folder
and applying its edits; an edit whose ``old`` text is gone fails loudly, so the
variants cannot drift silently away from the reference. The course invariant:
every variant fails the exercise's tests (all stages, on the configured
database). Variants are never shown by ``check``: they live with the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coursekit import db, paths
from coursekit.catalog import Exercise
from coursekit.impl import EXERCISES_DIR_ENV
from coursekit.runner import RunResult, run_tests

VARIANTS_DIR = paths.TESTS_DIR / "wrong"
MIN_VARIANTS = 8
REDIS_URL_ENV = "COURSE_REDIS_URL"  # the Redis switch the tests read (conftest.py)


@dataclass(frozen=True)
class Edit:
    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Variant:
    exercise: Exercise
    name: str
    mistake: str
    edits: tuple[Edit, ...]
    # "sqlite" or "postgresql": the one database that can show the mistake; "redis": it
    # shows only with COURSE_REDIS_URL set (several processes sharing one server).
    only: str = ""


_ONLY = re.compile(r"\((PostgreSQL|SQLite) only\b", re.IGNORECASE)


def _only_on(entry: dict[str, object]) -> str:
    """``only = "postgresql"``, or a mistake line that says "(PostgreSQL only: ...)"."""
    explicit = str(entry.get("only", "")).lower()
    if explicit:
        return explicit
    match = _ONLY.search(str(entry.get("mistake", "")))
    return match.group(1).lower() if match else ""


class VariantError(ValueError):
    """A variant that cannot be built from today's reference (its edit no longer applies)."""


def variants_path(exercise: Exercise) -> Path:
    return VARIANTS_DIR / f"{exercise.id}.toml"


def load_variants(exercise: Exercise) -> list[Variant]:
    path = variants_path(exercise)
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        Variant(
            exercise=exercise,
            name=str(entry["name"]),
            mistake=str(entry["mistake"]),
            edits=tuple(Edit(str(e["file"]), str(e["old"]), str(e["new"])) for e in entry["edit"]),
            only=_only_on(entry),
        )
        for entry in data.get("variant", [])
    ]


def _solution_root(exercise: Exercise) -> Path:
    """The solution's file, or its package folder."""
    path = exercise.solution_path
    return path.parent if path.name == "__init__.py" else path


def build(variant: Variant, scratch: Path) -> Path:
    """Write ``scratch/exercises/<module>`` = reference + the variant's edits; return the folder."""
    package = scratch / "exercises"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    source = _solution_root(variant.exercise)
    target = package / source.name
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy(source, target)
    for edit in variant.edits:
        edited = (target / edit.file) if target.is_dir() else target
        if not target.is_dir() and edit.file != target.name:
            raise VariantError(f"{variant.name}: {edit.file} is not {target.name}")
        text = edited.read_text(encoding="utf-8")
        count = text.count(edit.old)
        if count != 1:
            raise VariantError(
                f"{variant.exercise.id}/{variant.name}: the text to replace occurs {count} times in "
                f"{edit.file} (expected once): {edit.old[:60]!r}"
            )
        edited.write_text(text.replace(edit.old, edit.new), encoding="utf-8")
    return package


def run_variant(variant: Variant, *, stop_at_first_failure: bool = True) -> RunResult:
    """Run the exercise's tests (every stage) against one wrong variant."""
    with tempfile.TemporaryDirectory(prefix=f"variant-{variant.exercise.id}-") as scratch:
        package = build(variant, Path(scratch))
        extra = ["-x"] if stop_at_first_failure else []
        return run_tests(
            [variant.exercise.test_path], "exercises", extra_args=extra,
            env={EXERCISES_DIR_ENV: str(package)},
        )  # fmt: skip


def caught(result: RunResult) -> bool:
    """A variant is caught when at least one test fails against it."""
    return result.failed > 0


def _verdict(variant: Variant) -> tuple[bool, str]:
    if variant.only == "redis":
        if not os.environ.get(REDIS_URL_ENV, "").strip():
            return True, f"  skip    {variant.name}: only Redis ({REDIS_URL_ENV}) can show this mistake"
    elif variant.only and variant.only != db.backend():
        return True, f"  skip    {variant.name}: only {variant.only} can show this mistake"
    try:
        result = run_variant(variant)
    except VariantError as exc:
        return False, f"  BROKEN  {variant.name}: {exc}"
    failure = next((o for o in result.outcomes if o.failed), None)
    if caught(result) and failure is not None:
        return True, f"  caught  {variant.name}: by {failure.nodeid.split('::', 1)[-1]}"
    return False, f"  PASSES  {variant.name}: {variant.mistake} ({result.passed} tests passed)"


def report(exercise: Exercise, jobs: int = 2, *, only: str = "") -> tuple[bool, str]:
    """Run every variant of one exercise (``jobs`` at a time); ``(all caught, a line per variant)``.

    ``only="redis"`` (or a database name) runs just the variants that only that
    service can show: the others already ran where they need nothing more.
    """
    variants = load_variants(exercise)
    enough = len(variants) >= MIN_VARIANTS
    lines = [f"{exercise.id}: {len(variants)} wrong variants (at least {MIN_VARIANTS} expected)"]
    if only:
        variants = [variant for variant in variants if variant.only == only]
        lines.append(f"  running the {len(variants)} that only {only} can show")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        verdicts = list(pool.map(_verdict, variants))
    lines += [line for _, line in verdicts]
    ok = enough and all(caught_it for caught_it, _ in verdicts)
    return ok, "\n".join(lines)
