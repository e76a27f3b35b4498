# Backend Python Architect: every command creates (or repairs) .venv itself.
#   make lab      open the course in JupyterLab                       (learners)
#   make test     lint, type-check, the course's tests, every notebook (learners and maintainers)
#   make verify   the course's own invariants, on pristine stubs      (maintainers and CI)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-stamp
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with nbval-sanitize.cfg
EX     ?= 00
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/0
# JupyterLab refuses to run as root unless told; containers often run as root.
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: help setup lab test lint typecheck pytest verify test-db check progress class-report hint solution \
        variants bench-check notebooks lock spectral lint-openapi clean pytest-tests pytest-notebooks \
        test-redis bench site test-installed test-browser

help:
	@echo "make lab              open the course in JupyterLab (sets everything up first)"
	@echo "make test             all checks: ruff, mypy --strict, tests, every notebook"
	@echo "make check EX=01      run exercise 01's tests against your code"
	@echo "make progress         which exercises are done"
	@echo "make class-report DIRS=\"/home/*\"  (instructors) the room: done, in progress, stuck per exercise (HTML=room.html, NAMES=1)"
	@echo "make hint EX=01       the next hint for exercise 01 (TASK=3 for a chosen task)"
	@echo "make solution EX=01   the reference solution (once yours passes)"
	@echo "make spectral         install the OpenAPI linter (needs Node.js and npm)"
	@echo "make lint-openapi EX=03  lint your API's OpenAPI with the OWASP rules"
	@echo "make verify           (maintainers) stubs fail, wrong answers fail, tooling survives faults"
	@echo "make test-db          database tests on PostgreSQL (PG_URL=$(PG_URL))"
	@echo "make test-redis       rate-limit (06) and outbox stream (11) tests on Redis (REDIS_URL=$(REDIS_URL))"
	@echo "make bench-check      (maintainers) median check time per exercise"
	@echo "make bench            notebook 10's load test, longer: hello world, naive, tuned side by side"
	@echo "make notebooks        (maintainers) re-execute every notebook and store its outputs"
	@echo "make lock             (maintainers) re-resolve requirements.txt and environment.yml"
	@echo "make site             the course website (Jupyter Book) in work/site/html, built offline"
	@echo "make test-installed   (maintainers, CI) plain pytest --nbval in a fresh venv: requirements.txt + pip install -e ."
	@echo "make test-browser     (maintainers, CI) headless Chromium runs notebook 00 in JupyterLab, opens the site"

# Builds .venv, or rebuilds it when the lock changed or a set-up was interrupted.
setup:
	@$(PYTHON) tools/setup_venv.py

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	    --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	    $(LAB_ROOT) $(LAB_ARGS) notebooks/00-welcome.ipynb

lint: setup
	$(PY) -m ruff check coursekit solutions tests tools data

typecheck: setup
	$(PY) -m mypy --strict coursekit solutions

# The learner's own exercises/ are not tested here (the tests import solutions/),
# so `make test` stays green whatever state a learner's exercises are in.
# Two halves of about equal length run side by side, one per core: the tests plus
# the locust lab (notebook 10, the longest notebook), and every other notebook. Each
# half's output is printed whole when it ends, and either half failing fails the target.
LONG_NOTEBOOKS := $(wildcard notebooks/10-*.ipynb)

pytest: setup
	@$(MAKE) --no-print-directory -j2 --output-sync=target pytest-tests pytest-notebooks

pytest-tests:
	$(PY) -m pytest -p no:nbval tests
	$(PY) -m pytest $(NBVAL) $(LONG_NOTEBOOKS)

pytest-notebooks:
	$(PY) -m pytest $(NBVAL) $(filter-out $(LONG_NOTEBOOKS),$(wildcard notebooks/*.ipynb))

test: lint typecheck pytest

# Maintainers and CI: every exercise test fails on the pristine stub, stub and
# solution expose one API, every known wrong answer fails, and check survives
# learner faults and concurrent runs. Needs pristine exercises/ (a clean clone).
verify: setup
	$(PY) -m pytest -m maintainers -p no:nbval tests
	$(PY) -m coursekit variants $$(ls tests/wrong | sed -n 's/^ex\([0-9][0-9]\)\.toml$$/\1/p')

test-db: setup
	COURSE_DATABASE_URL="$(PG_URL)" $(PY) -m pytest -m db -p no:nbval tests

test-redis: setup
	COURSE_REDIS_URL="$(REDIS_URL)" $(PY) -m pytest -m redis -p no:nbval tests

# Notebook 10's load test, for longer: three apps side by side, 30 s of load.
bench: setup
	$(PY) -m coursekit bench

check: setup
	$(PY) -m coursekit check $(EX)

progress: setup
	$(PY) -m coursekit progress

# Instructors: where the room is, from every learner's progress record (a glob such as /home/* works).
class-report: setup
	@test -n "$(DIRS)" || { echo 'usage: make class-report DIRS="/home/*" [HTML=room.html] [NAMES=1]'; exit 2; }
	$(PY) -m coursekit class-report $(DIRS) $(if $(HTML),--html $(HTML)) $(if $(NAMES),--names)

hint: setup
	$(PY) -m coursekit hint $(EX) $(if $(TASK),--task $(TASK))

solution: setup
	$(PY) -m coursekit solution $(EX)

variants: setup
	$(PY) -m coursekit variants $(EX)

bench-check: setup
	$(PY) -m coursekit bench-check

notebooks: setup
	$(PY) tools/execute_notebooks.py

lock:
	$(PYTHON) tools/lock.py

# Spectral (OpenAPI and OWASP API Security lint, notebooks 03 and 06): a Node.js tool,
# installed from tools/spectral/package-lock.json. Needs node and npm.
spectral:
	cd tools/spectral && npm ci --no-audit --no-fund --silent

lint-openapi: setup
	$(PY) -m coursekit lint-openapi $(EX)

# The course website: Jupyter Book 2 renders the README (landing page), every notebook
# with its stored outputs (nothing re-executed) and docs/ into work/site/html, offline,
# with the course's own site template (tools/site/template).
site: setup
	$(PY) tools/site/build.py

# The course as others install it (Binder, conda, JupyterHub, their own CI): a fresh venv
# in the work folder from requirements.txt plus `pip install -e .`, no make and no .pth,
# then plain `pytest --nbval` on notebooks 00, 01 and 04 (NOTEBOOKS=... for others).
test-installed:
	$(PYTHON) tools/test_installed.py $(NOTEBOOKS)

# A real browser (headless Chromium, over the DevTools protocol): JupyterLab runs notebook
# 00 and shows its outputs; two pages of the built site open (run `make site` first).
test-browser: setup
	$(PY) -m pytest -m browser -p no:nbval tests/course/test_browser_smoke.py

clean:
	rm -rf work .pytest_cache .mypy_cache .ruff_cache
