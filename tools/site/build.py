"""Build the course website with Jupyter Book 2, offline, into the work folder (`make site`).

    python tools/site/build.py        # then open work/site/html/index.html

Stages what the site shows (README, notebooks, docs, the exercise stubs) with the
site configuration (tools/site/myst.yml) and the course's own template
(tools/site/template) in work/site/src, runs `jupyter book build --html` there
(Jupyter Book writes its _build folder next to its configuration, so the checkout
stays clean), and copies the pages to work/site/html. Notebooks are rendered with
their stored outputs; nothing is executed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SITE_TOOLS = ROOT / "tools" / "site"
STAGED = ("README.md", "notebooks", "docs", "exercises")
SKIP = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")


def site_dir() -> Path:
    return Path(os.environ.get("COURSE_WORK_DIR", ROOT / "work")) / "site"


def stage(source: Path) -> None:
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for name in STAGED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=SKIP)
        else:
            shutil.copy2(ROOT / name, source / name)
    shutil.copy2(SITE_TOOLS / "myst.yml", source / "myst.yml")
    shutil.copytree(SITE_TOOLS / "template", source / "_template", ignore=SKIP)


def build(source: Path) -> None:
    env = {**os.environ, "COURSE_SITE_PYTHON": sys.executable}
    # --ci: no prompts; --strict: a build error fails the build (warnings are printed).
    command = [sys.executable, "-m", "jupyter_book", "build", "--html", "--ci", "--strict"]
    subprocess.run(command, cwd=source, env=env, check=True)


def verify(html: Path) -> list[str]:
    """Every notebook has its page, linking to its exercise's stub; the README is the landing page."""
    problems = []
    index = html / "index.html"
    if not index.is_file() or "Course map" not in index.read_text():
        problems.append("index.html is missing or is not the README with the course map")
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        number, slug = notebook.stem.split("-", 1)
        page = html / f"{slug}.html"
        if not page.is_file():
            problems.append(f"no page for {notebook.name} (expected {page.name})")
            continue
        has_exercise = any((ROOT / "exercises").glob(f"ex{number}_*"))
        if has_exercise and not re.search(rf'href="exercises/ex{number}_', page.read_text()):
            problems.append(f"{page.name} does not link to exercises/ex{number}_*")
    return problems


def main() -> int:
    started = time.monotonic()
    source = site_dir() / "src"
    html = site_dir() / "html"
    stage(source)
    build(source)
    shutil.rmtree(html, ignore_errors=True)
    shutil.copytree(source / "_build" / "html", html)
    report = json.loads((html / "render-report.json").read_text())
    (html / "render-report.json").unlink()
    if report["plain_node_types"]:
        plain = report["plain_node_types"]
        print(f"site: shown as plain content (the template has no HTML form for them yet): {plain}")
    problems = verify(html)
    for problem in problems:
        print(f"site: {problem}", file=sys.stderr)
    if problems:
        return 1
    where = html.relative_to(ROOT) if html.is_relative_to(ROOT) else html
    elapsed = time.monotonic() - started
    counts = f"{report['pages']} pages, {report['files']} files"
    print(f"site: {counts} in {where} ({elapsed:.0f} s): open index.html there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
