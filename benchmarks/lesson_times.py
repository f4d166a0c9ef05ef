"""Wall time of each solution notebook, executed top to bottom as a learner would run it.

    python benchmarks/lesson_times.py --out lesson_times.md          # all lessons
    python benchmarks/lesson_times.py 02 --out t.md                  # lessons whose name contains "02"
    python benchmarks/lesson_times.py --results                      # also rewrite docs/lesson_times.md
    python benchmarks/lesson_times.py --quick --out /tmp/times.md    # one tiny notebook: a smoke run

Each notebook runs --seeds times (repeats) in a fresh kernel, kernel start included. Two clocks: the wall time,
and the kernel's CPU time (user + system of the kernel process and its children). The goal, each lesson ≤ 120 s
on a 2-core CPU, is judged on the 95 % interval of the CPU times: on a quiet machine a lesson's wall time is its
CPU time (the lessons compute on one thread) plus waiting for the kernel, and on a shared machine the CPU time
still says what the lesson costs while the wall time says how busy the machine was. The lessons pin DEVICE = "cpu".
A lesson's optional "going further" notebook (beside it, under another name) is timed the same way but has no
budget: it exists because its experiment needs longer than a lesson may take.
"""
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import protocol  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 120


def run_seconds(path):
    """Execute a copy of the notebook in its own folder; return (wall seconds, the kernel's CPU seconds)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    cpu = []

    def kernel_cpu(**_):  # after every cell, while the kernel is alive: the last reading is the whole run's
        times = psutil.Process(client.km.provisioner.pid).cpu_times()
        cpu.append(times.user + times.system + times.children_user + times.children_system)

    client.on_cell_executed = kernel_cpu
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start, cpu[-1]


def tiny_notebook(folder):
    """A one-cell notebook for --quick: the same execution path as a lesson, in a second or two."""
    path = Path(folder) / "00_quick" / "00_quick.ipynb"  # laid out as a lesson: solutions/NN_x/NN_x.ipynb
    path.parent.mkdir()
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
            wall, cpu = zip(*[run_seconds(path) for _ in protocol.seeds(args)])
            rows.append((path.stem, wall, cpu, path.stem == path.parent.name))
            print(f"{path.stem:<32}wall {protocol.mean_sd(wall)} s, CPU {protocol.mean_sd(cpu)} s", flush=True)
    if not rows:
        p.error(f"no lesson matches {args.patterns}")
    goals = [(f"{name} ≤ {BUDGET_SECONDS} s of CPU", protocol.interval(cpu),
              protocol.verdict(protocol.interval(cpu), BUDGET_SECONDS, seeds_needed=2, higher_is_better=False))
             for name, _, cpu, lesson in rows if lesson]
    walls = "\n".join(["| notebook | CPU seconds (mean ± sd) | wall seconds on this machine (mean ± sd) |",
                       "|---|---:|---:|",
                       *[f"| {name}{'' if lesson else ' (optional, no budget)'} | {protocol.mean_sd(cpu)} | "
                         f"{protocol.mean_sd(wall)} |" for name, wall, cpu, lesson in rows]])
    body = "\n".join([f"Each notebook executed top to bottom in a fresh kernel, kernel start included, "
                      f"{len(protocol.seeds(args))} times. Budget: {BUDGET_SECONDS} s, judged on the kernel's CPU "
                      "time (see the script's docstring); wall times, which depend on the machine's load, below it.",
                      "", protocol.goals_table(goals), "", walls])
    print(body)
    text = f"# Lesson run times\n\n{protocol.header(args)}\n\n{body}\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    if args.results:
        (ROOT / "docs" / "lesson_times.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
