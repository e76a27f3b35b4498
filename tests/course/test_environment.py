"""The set-up promises: one lock, mirrored for conda, two commands, CI calls them."""

from __future__ import annotations

import re
import tomllib

from coursekit import paths

PROJECT_INSTALL = "-e ."  # the course itself, editable, from environment.yml's folder
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


def environment_pip_entries() -> list[str]:
    text = (paths.ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    entries = (line.strip().removeprefix("- ").strip() for line in pip_section.splitlines())
    return [entry for entry in entries if entry]


def environment_pins() -> dict[str, str]:
    pins = {}
    for entry in environment_pip_entries():
        if entry != PROJECT_INSTALL:
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


def test_environment_yml_installs_the_course_editable() -> None:
    """conda/Binder install the course itself (`-e .`), after its pins, so coursekit imports without make."""
    entries = environment_pip_entries()
    assert entries[-1] == PROJECT_INSTALL, f"environment.yml's pip list should end with {PROJECT_INSTALL!r}"


def test_course_is_an_installable_project() -> None:
    """`pip install -e .` works: a build backend, and coursekit, exercises, solutions as packages with their data."""
    pyproject = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    setuptools = pyproject["tool"]["setuptools"]
    included = set(setuptools["packages"]["find"]["include"])
    assert {"coursekit", "exercises", "solutions"} <= included
    assert "hints/*.toml" in setuptools["package-data"]["coursekit"]
    assert "timings.toml" in setuptools["package-data"]["coursekit"]


def test_binder_relies_on_the_project_install() -> None:
    """postBuild no longer writes a hand-made .pth: environment.yml's `-e .` puts the course on the path."""
    post_build = (paths.ROOT / "postBuild").read_text()
    assert ".pth" not in post_build
    assert "overrides.json" in post_build


def test_plain_pytest_nbval_gets_the_course_options() -> None:
    """`pytest --nbval notebooks/` alone uses this environment's kernel and the sanitize file (conftest.py)."""
    from types import SimpleNamespace
    from typing import cast

    import pytest

    from conftest import _configure_nbval

    def configured(**typed: object) -> SimpleNamespace:
        # nbval's defaults, then what the user typed; only the attributes the hook reads.
        defaults = {"nbval": False, "nbval_lax": False, "nbval_current_env": False}
        option = SimpleNamespace(**defaults, nbval_kernel_name=None, nbval_sanitize_with=None)
        vars(option).update(typed)
        _configure_nbval(cast(pytest.Config, SimpleNamespace(option=option, rootpath=paths.ROOT)))
        return option

    plain = configured(nbval=True)
    assert plain.nbval_current_env is True
    assert plain.nbval_sanitize_with == str(paths.ROOT / "nbval-sanitize.cfg")
    # An explicit choice wins: a named kernel is not overridden by the current env.
    assert configured(nbval=True, nbval_kernel_name="python3").nbval_current_env is False
    # Without --nbval (the Makefile's `-p no:nbval tests`), nothing is touched.
    assert configured().nbval_sanitize_with is None


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


def test_ci_proves_the_installed_course_the_website_and_a_real_browser() -> None:
    """.ci/run: plain `pytest --nbval` where `pip install -e .` built the env, the website, then the browser test (required)."""
    script = (paths.ROOT / ".ci" / "run").read_text()
    assert "make test-installed" in script
    assert "make site" in script
    assert script.index("make site") < script.index("make test-browser"), "the browser test opens the built site"
    assert "COURSE_REQUIRE_BROWSER=1" in script, "in CI a missing browser must fail the test, not skip it"
