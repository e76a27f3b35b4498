"""Re-execute notebooks from a clean kernel and store their outputs (maintainers).

    python tools/execute_notebooks.py                      # every notebook
    python tools/execute_notebooks.py notebooks/01-*.ipynb # some

Runs each notebook exactly as nbval will (kernel in notebooks/, the course's
environment), and stores no execution timestamps, so re-running a notebook
whose outputs did not change leaves git with nothing to commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        allow_errors=False,
    )
    client.execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    return time.perf_counter() - started


def main(args: list[str]) -> int:
    targets = [Path(a) for a in args] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in targets:
        seconds = execute(path)
        print(f"{path.name}: executed in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
