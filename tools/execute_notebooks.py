"""Re-execute notebooks from a clean kernel and store their outputs (maintainers).

    python tools/execute_notebooks.py                      # every notebook
    python tools/execute_notebooks.py notebooks/01-*.ipynb # some

Runs each notebook exactly as nbval will (kernel in notebooks/, the course's
environment), and stores no execution timestamps, so re-running a notebook
whose outputs did not change leaves git with nothing to commit.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def coalesce_streams(outputs: list[Any]) -> list[Any]:
    """Merge adjacent stdout (or stderr) chunks: how the kernel happened to flush
    them is noise, and would make every re-run show up in git as a change."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


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
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    return time.perf_counter() - started


def main(args: list[str]) -> int:
    # The kernel inherits this: check() and progress() then print no clock times,
    # which would otherwise be stored in the outputs.
    os.environ["COURSEKIT_NO_CLOCK"] = "1"
    targets = [Path(a) for a in args] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in targets:
        seconds = execute(path)
        print(f"{path.name}: executed in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
