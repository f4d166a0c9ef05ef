"""The protocol every benchmark follows (written out at the top of docs/results.md), in one place.

- Choices (epochs, learning rate, T, α, width, recipe) are made on the validation split with ``choose``;
  the test split is scored once, at the end, for the chosen setting only.
- Seeds: ≥ 3 teachers where feasible, ≥ 5 students (``STUDENT_SEEDS``), paired by seed: seed s gives the
  same data order and initial weights to every method compared on it.
- Every comparison is a ``Paired`` difference: mean, standard deviation and a 95 % t-interval.
- Every goal gets a ``verdict``: "met" (the whole interval clears the goal), "missed" (the whole interval falls
  short), "not shown" (the interval straddles the goal, fewer than ``STUDENT_SEEDS`` seeds, or the comparison
  is not like-for-like).
- Every script takes ``--help``, ``--device`` (default: the CPU), ``--quick`` (a smoke run of a few seconds on
  tiny data, through the same code as the full run), ``--out`` (a file for the section), ``--results``
  (also write the section into docs/results.md; only when asked) and ``--threads`` (CPU threads, default 1).
"""
import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from scipy.stats import t as student_t

from kdlib import data

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"
STUDENT_SEEDS, TEACHER_SEEDS = 5, 3
VERDICTS = ("met", "missed", "not shown")
GOALS_HEADER = "| goal | measured: mean ± sd [95 % interval], n | verdict |"


# ---------------------------------------------------------------------------------------------------------
# command line

def parser(doc, seeds=STUDENT_SEEDS):
    """The common options; a script adds its own and calls ``parse``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="torch device to train on (default: cpu)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run of a few seconds on tiny data, through the same code as the full run")
    p.add_argument("--out", type=Path, help="write the markdown section to this file")
    p.add_argument("--results", action="store_true", help="also write the section into docs/results.md")
    p.add_argument("--seeds", type=int, default=seeds, help=f"paired seeds (default {seeds})")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1, so two runs can share two cores); a run is bit-identical "
                        "for one seed and one thread count, and other counts can differ in the last digits")
    return p


def parse(p, argv=None):
    """Parse and check the options and pin torch's thread count, so a seed gives a bit-identical CPU run."""
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be at least 1, got {args.threads}")
    if args.seeds < 2:
        p.error(f"--seeds must be at least 2 (a paired interval needs two differences), got {args.seeds}")
    try:
        torch.device(args.device)
    except RuntimeError as error:
        p.error(f"--device: {error}")
    if args.out is not None and args.out.is_dir():
        p.error(f"--out must be a file, got the folder {args.out}")
    torch.set_num_threads(args.threads)
    args.started = (time.perf_counter(), time.process_time(), load_average())
    return args


def load_average():
    """The machine's 1-, 5- and 15-minute load averages (what `uptime` prints), as text."""
    try:
        return "/".join(f"{value:.2f}" for value in os.getloadavg())
    except (AttributeError, OSError):  # not on every OS
        return "unknown"


def seeds(args):
    """Seeds 0 .. n-1 (2 with --quick)."""
    return list(range(2 if args.quick else args.seeds))


# ---------------------------------------------------------------------------------------------------------
# data

def load(name, quick, seed=0):
    """Splits of "digits" or "mnist" (55,000 / 5,000 validation / official 10,000 test). With ``quick``, a tiny
    stand-in of the same shapes: digits, upsampled to 28×28 for "mnist", so the smoke run needs no download."""
    if not quick:
        return data.load_splits(name, seed=seed)
    splits = data.load_splits("digits", seed=seed)
    if name == "mnist":
        splits = data.Splits(*(data.Split(F.interpolate(s.x, size=28, mode="bilinear"), s.y) for s in splits))
    return data.Splits(*(data.Split(s.x[:n], s.y[:n]) for s, n in zip(splits, (300, 100, 100))))


# ---------------------------------------------------------------------------------------------------------
# statistics and verdicts

class Paired(NamedTuple):
    """Mean, sample standard deviation and 95 % t-interval of n paired differences."""

    mean: float
    sd: float
    low: float
    high: float
    n: int

    def __str__(self):
        return f"{self.mean:+.4g} ± {self.sd:.2g} [{self.low:+.4g}, {self.high:+.4g}], n = {self.n}"


def interval(values, level=0.95):
    """``Paired`` summary of a list of per-seed values (already differences, or fractions)."""
    values = [float(v) for v in values]
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"need at least 2 finite values for an interval, got {values}")
    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = student_t.ppf(0.5 + level / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return Paired(mean, sd, mean - half, mean + half, len(values))


def paired(a, b):
    """a − b, paired by seed (lists in seed order)."""
    if len(a) != len(b):
        raise ValueError(f"paired lists must have one value per seed each, got {len(a)} and {len(b)}")
    return interval([x - y for x, y in zip(a, b)])


def verdict(measured, goal, like_for_like=True, seeds_needed=STUDENT_SEEDS, higher_is_better=True):
    """ "met" if the whole interval lies beyond the goal on its good side (above it, or below when lower is
    better), "missed" if it lies wholly on the other side, else "not shown" (an interval touching the goal, e.g.
    a difference of exactly 0 on every seed, shows nothing); also "not shown" when the comparison is not
    like-for-like or rests on fewer than ``seeds_needed`` seeds."""
    if not like_for_like or measured.n < seeds_needed:
        return "not shown"
    good, bad = (measured.low, measured.high) if higher_is_better else (-measured.high, -measured.low)
    goal = goal if higher_is_better else -goal
    if good > goal:
        return "met"
    return "missed" if bad < goal else "not shown"


def matches(measured, target, tolerance):
    """Calibration: "met" if the 95 % interval overlaps target ± tolerance (a paper's mean ± sd), else "missed"."""
    return "met" if measured.low <= target + tolerance and measured.high >= target - tolerance else "missed"


def mean_sd(values):
    """'mean ± sd' of per-seed values."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} ± {sd:.2g}"


def goals_table(rows):
    """Markdown table of (goal, Paired or text, verdict) rows."""
    for _, _, v in rows:
        if v not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {v!r}")
    return "\n".join([GOALS_HEADER, "|---|---|---|", *[f"| {g} | {m} | {v} |" for g, m, v in rows]])


def choose(candidates, score):
    """The candidate with the highest ``score(candidate)`` (validation accuracy), first on ties, and a
    one-line record of every score: choices are never made on the test split."""
    scores = [(candidate, score(candidate)) for candidate in candidates]
    best = max(scores, key=lambda pair: pair[1])[0]
    record = "; ".join(f"{c}: {s:.4f}" for c, s in scores)
    return best, record


# ---------------------------------------------------------------------------------------------------------
# output

def header(args):
    """Machine, date, command, and the run's wall and CPU time with the machine's load (1/5/15-minute load
    averages, as `uptime` prints them) at its start and end: wall times on a shared machine mean little without it."""
    command = f"python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}".strip()
    run = ""
    if getattr(args, "started", None) is not None:
        wall, cpu, load = args.started
        threads = torch.get_num_threads()
        run = (f" Run: {(time.perf_counter() - wall) / 60:.1f} min wall, {(time.process_time() - cpu) / 60:.1f} min "
               f"CPU ({threads} thread{'s' * (threads > 1)}); load average {load} at the start, {load_average()} at the end.")
    return (f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()} CPU kernels), device {args.device}. "
            f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
            f"Command: `{command}`.{run}"
            + (" **Quick smoke run: tiny data, numbers mean nothing.**" if args.quick else ""))


def write_section(path, name, title, body):
    """Replace (or append) the section of ``path`` between the markers named ``name``."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    section = f"{start}\n## {title}\n\n{body.strip()}\n{end}"
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if start in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def emit(args, name, title, body):
    """Print the section and write it where asked: ``--out``, and docs/results.md only with ``--results``."""
    body = header(args) + "\n\n" + body.strip()
    print(body, flush=True)
    if args.out is not None:
        write_section(args.out, name, title, body)
    if args.results:
        write_section(RESULTS, name, title, body)
