"""Write one benchmark's table into docs/results.md, between markers that name it."""
import datetime
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def write_section(name, title, body):
    """Replace (or append) the section of docs/results.md marked with ``name``; adds machine, date and command."""
    header = (f"## {title}\n\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}. Date: {datetime.date.today()}. "
              f"Command: `python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`.\n\n")
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    section = f"{start}\n{header}{body.strip()}\n{end}"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if start in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text, encoding="utf-8")
