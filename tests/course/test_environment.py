"""The set-up promises: one lock, mirrored for conda, two commands, CI calls them."""

from __future__ import annotations

import re
import tomllib

from coursekit import paths

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (paths.ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            match = PIN.match(line.strip())
            assert match, f"not an exact pin: {line!r}"
            pins[normalise(match.group(1))] = match.group(3)
    return pins


def environment_pins() -> dict[str, str]:
    text = (paths.ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    pins = {}
    for line in pip_section.splitlines():
        entry = line.strip().removeprefix("- ").strip()
        if entry:
            match = PIN.match(entry)
            assert match, f"not an exact pin in environment.yml: {entry!r}"
            pins[normalise(match.group(1))] = match.group(3)
    return pins


def test_requirements_pin_every_declared_dependency() -> None:
    """Every dependency of pyproject.toml is pinned in requirements.txt."""
    declared = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {normalise(re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0]) for d in declared}
    missing = names - set(requirement_pins())
    assert not missing, f"declared but not pinned: {sorted(missing)}"


def test_environment_yml_mirrors_requirements() -> None:
    """environment.yml installs exactly the pins of requirements.txt, on Python 3.11."""
    assert environment_pins() == requirement_pins()
    assert "python=3.11" in (paths.ROOT / "environment.yml").read_text()


def test_readme_leads_with_the_two_commands() -> None:
    """The README shows `make lab` and `make test` before anything else technical."""
    readme = (paths.ROOT / "README.md").read_text()
    first_block = readme.split("```", 2)[1]
    assert "make lab" in first_block
    assert "make test" in first_block


def test_ci_runs_the_readme_test_command_and_postgresql() -> None:
    """.ci/run calls `make test`, then the database tests on PostgreSQL."""
    script = (paths.ROOT / ".ci" / "run").read_text()
    assert "make test\n" in script
    assert "make test-db" in script
    makefile = (paths.ROOT / "Makefile").read_text()
    assert "--nbval " in makefile
    assert "--nbval-lax" not in makefile
