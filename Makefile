# Backend Python Architect: every command creates or refreshes .venv itself.
#   make lab      open the course in JupyterLab
#   make test     lint, type-check, all tests and every notebook (strict nbval)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-stamp
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with nbval-sanitize.cfg
EX     ?= 00
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# JupyterLab refuses to run as root unless told; containers often run as root.
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: help setup lab test lint typecheck pytest test-db check progress hint solution notebooks lock clean

help:
	@echo "make lab              open the course in JupyterLab (sets everything up first)"
	@echo "make test             all checks: ruff, mypy --strict, tests, every notebook"
	@echo "make check EX=01      run exercise 01's tests against your code"
	@echo "make progress         which exercises are done"
	@echo "make hint EX=01       the next hint for exercise 01"
	@echo "make solution EX=01   the reference solution (once yours passes)"
	@echo "make test-db          database tests on PostgreSQL (PG_URL=$(PG_URL))"
	@echo "make notebooks        re-execute every notebook and store its outputs (maintainers)"
	@echo "make lock             re-resolve requirements.txt and environment.yml (maintainers)"

# The virtual environment is rebuilt whenever the lock changes.
$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# Put the course root on the environment's import path (coursekit, exercises, solutions).
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "backend-python-architect.pth").write_text(pathlib.Path.cwd().as_posix() + "\n")'
	@touch $(STAMP)

setup: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(LAB_ROOT) $(LAB_ARGS) notebooks/00-welcome.ipynb

lint: $(STAMP)
	$(PY) -m ruff check coursekit solutions tests tools data

typecheck: $(STAMP)
	$(PY) -m mypy --strict coursekit solutions

pytest: $(STAMP)
	$(PY) -m pytest $(NBVAL) tests notebooks

test: lint typecheck pytest

test-db: $(STAMP)
	COURSE_DATABASE_URL="$(PG_URL)" $(PY) -m pytest -m db tests

check: $(STAMP)
	$(PY) -m coursekit check $(EX)

progress: $(STAMP)
	$(PY) -m coursekit progress

hint: $(STAMP)
	$(PY) -m coursekit hint $(EX)

solution: $(STAMP)
	$(PY) -m coursekit solution $(EX)

notebooks: $(STAMP)
	$(PY) tools/execute_notebooks.py

lock:
	$(PYTHON) tools/lock.py

clean:
	rm -rf work .pytest_cache .mypy_cache .ruff_cache
