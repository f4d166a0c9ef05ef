"""Wall time of each solution notebook, executed top to bottom as a learner would run it.

    python benchmarks/lesson_times.py            # all lessons
    python benchmarks/lesson_times.py 02         # lessons whose name contains "02"

Prints a table and writes it to docs/lesson_times.md with the machine, date and command.
Budget: each lesson <= 120 s on a 2-core CPU.
"""
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 120


def run_seconds(path):
    """Execute a copy of the notebook in its own folder; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main(patterns):
    rows = []
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        if patterns and not any(p in path.stem for p in patterns):
            continue
        seconds = run_seconds(path)
        rows.append((path.stem, seconds))
        print(f"{path.stem:<28}{seconds:>8.1f} s  {'ok' if seconds <= BUDGET_SECONDS else 'OVER BUDGET'}", flush=True)
    lines = [
        "# Lesson run times",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}. "
        f"Date: {datetime.date.today()}. Command: `python benchmarks/lesson_times.py {' '.join(patterns)}`.",
        f"Each notebook executed top to bottom in a fresh kernel, kernel start included. Budget: {BUDGET_SECONDS} s.",
        "",
        "| lesson | seconds | within budget |",
        "|---|---:|---|",
        *[f"| {name} | {seconds:.1f} | {'yes' if seconds <= BUDGET_SECONDS else 'no'} |" for name, seconds in rows],
        "",
    ]
    (ROOT / "docs" / "lesson_times.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
