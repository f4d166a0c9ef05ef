"""Wall time of each solution notebook, executed top to bottom as a learner would run it.

    python benchmarks/lesson_times.py --out lesson_times.md          # all lessons
    python benchmarks/lesson_times.py 02 --out t.md                  # lessons whose name contains "02"
    python benchmarks/lesson_times.py --results                      # also rewrite docs/lesson_times.md
    python benchmarks/lesson_times.py --quick --out /tmp/times.md    # one tiny notebook: a smoke run

Each notebook runs --seeds times (repeats) in a fresh kernel, kernel start included; the goal, each lesson
≤ 120 s on a 2-core CPU, is judged on the 95 % interval of its repeats. The lessons pin DEVICE = "cpu".
"""
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import protocol  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 120


def run_seconds(path):
    """Execute a copy of the notebook in its own folder; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def tiny_notebook(folder):
    """A one-cell notebook for --quick: the same execution path as a lesson, in a second or two."""
    path = Path(folder) / "00_quick.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("DEVICE = 'cpu'\nprint(1 + 1)")]), path)
    return [path]


def main(argv=None):
    p = protocol.parser(__doc__, seeds=2)
    p.add_argument("patterns", nargs="*", help="only lessons whose name contains one of these")
    args = protocol.parse(p, argv)
    if args.device != "cpu":
        p.error(f"--device: the lessons pin DEVICE = 'cpu', got {args.device}")
    with tempfile.TemporaryDirectory() as folder:
        paths = tiny_notebook(folder) if args.quick else sorted((ROOT / "solutions").glob("*/*.ipynb"))
        rows = []
        for path in paths:
            if args.patterns and not any(pattern in path.stem for pattern in args.patterns):
                continue
            seconds = [run_seconds(path) for _ in protocol.seeds(args)]
            rows.append((path.stem, seconds))
            print(f"{path.stem:<28}{protocol.mean_sd(seconds)} s", flush=True)
    if not rows:
        p.error(f"no lesson matches {args.patterns}")
    goals = [(f"{name} ≤ {BUDGET_SECONDS} s", protocol.interval(seconds),
              protocol.verdict(protocol.interval(seconds), BUDGET_SECONDS, seeds_needed=2, higher_is_better=False))
             for name, seconds in rows]
    body = "\n".join([f"Each notebook executed top to bottom in a fresh kernel, kernel start included, "
                      f"{len(protocol.seeds(args))} times. Budget: {BUDGET_SECONDS} s.", "",
                      protocol.goals_table(goals)])
    print(body)
    text = f"# Lesson run times\n\n{protocol.header(args)}\n\n{body}\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    if args.results:
        (ROOT / "docs" / "lesson_times.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
