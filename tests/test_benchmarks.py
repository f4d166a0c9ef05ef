"""The benchmarks' protocol (benchmarks/protocol.py) and a --quick smoke run of every script into tmp_path.

Each quick run goes through the same code as the full run on tiny data (digits, upsampled to 28×28 where a
script uses MNIST), so this needs no download; docs/results.md is never written.
"""
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import protocol  # noqa: E402

BENCHMARKS = ["hinton_mnist", "takd", "rkd", "dataset_distillation", "datafree", "speed", "language", "lesson_times"]
QUICK_ONCE = [name for name in BENCHMARKS if name != "rkd"]  # rkd runs twice in test_a_seed_gives_the_same_table
INTERVAL = re.compile(r"\[[-+]?[\d.e+-]+, [-+]?[\d.e+-]+\], n = \d+")


@pytest.fixture(autouse=True)
def results_untouched(tmp_path, monkeypatch):
    """Any write to docs/results.md would land in tmp_path instead, and fails the test."""
    monkeypatch.setattr(protocol, "RESULTS", tmp_path / "results.md")
    yield
    assert not (tmp_path / "results.md").exists(), "a benchmark wrote results.md without --results"


def goal_rows(text):
    """The rows of the goals table: (goal, measured, verdict)."""
    lines = text.split(protocol.GOALS_HEADER, 1)[1].strip().splitlines()[1:]  # after the |---| line
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def quick_table(name, out):
    importlib.import_module(f"benchmarks.{name}").main(["--quick", "--out", str(out)])
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", QUICK_ONCE)
def test_quick_run_writes_its_table_with_intervals_and_verdicts(name, tmp_path):
    check_table(quick_table(name, tmp_path / "section.md"))


def check_table(text):
    assert "Quick smoke run" in text and "Command:" in text
    assert re.search(r"Run: [\d.]+ min wall, [\d.]+ min CPU", text), "no wall/CPU time in the header"
    assert re.search(r"load average (unknown|[\d./]+) at the start", text), "no machine load in the header"
    assert protocol.GOALS_HEADER in text
    rows = goal_rows(text)
    assert rows, "the goals table has no rows"
    for goal, measured, verdict in rows:
        assert verdict in protocol.VERDICTS, (goal, verdict)
    assert any(INTERVAL.search(measured) for _, measured, _ in rows), "no 95 % interval in the goals table"
    # two quick seeds are below the protocol's minimum: nothing may be declared met or missed on them,
    # except calibrations and run times, which are judged on their own terms
    for goal, _, verdict in rows:
        if not re.search(r"calibration|matches|≤ \d+ s", goal):
            assert verdict == "not shown", (goal, verdict)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_help_lists_the_common_options_and_runs_nothing(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(f"benchmarks.{name}").main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--device", "--quick", "--out", "--results", "--seeds", "--threads"):
        assert option in text


@pytest.mark.parametrize("argv", [["--seeds", "1"], ["--threads", "0"], ["--device", "nonsense"], ["--unknown"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module("benchmarks.rkd").main(["--quick", *argv])
    assert exit_.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_seed_gives_the_same_table(tmp_path):
    first, second = (quick_table("rkd", tmp_path / f"{run}.md") for run in range(2))
    check_table(first)
    assert goal_rows(first) == goal_rows(second)
    # RKD's gain is also measured where KD can beat labels alone: the students keep 5% of the labels
    assert {goal.split(":")[0] for goal, _, _ in goal_rows(first)} == {"full labels", "5% labels"}


def test_llm_quick_run_writes_a_table(tmp_path):
    """benchmarks/llm.py (its own process: it also remakes lesson 10's checkpoints) follows the protocol: a
    learning rate chosen on validation for every method, then a goals table with verdicts."""
    out = tmp_path / "llm.md"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "llm.py"), "--quick", "--out", str(out)],
                   check=True, cwd=tmp_path, capture_output=True, timeout=300)
    text = out.read_text(encoding="utf-8")
    assert protocol.GOALS_HEADER in text and text.count("lr ") == 8  # 4 methods from the start, 2 × 2 from scratch
    assert len(goal_rows(text)) == 5 and {v for _, _, v in goal_rows(text)} == {"not shown"}  # 2 seeds: not shown


def test_interval_is_the_t_interval_of_the_paired_differences():
    measured = protocol.paired([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])  # differences 2, 3, 4
    assert measured.mean == pytest.approx(3.0) and measured.sd == pytest.approx(1.0) and measured.n == 3
    half = 4.302653 / 3 ** 0.5  # t(0.975, 2 degrees of freedom) · sd / √n
    assert (measured.low, measured.high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    with pytest.raises(ValueError, match="one value per seed"):
        protocol.paired([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        protocol.interval([1.0])


@pytest.mark.parametrize("values, goal, options, expected", [
    ([0.90, 0.91, 0.92, 0.93, 0.94], 0.8, {}, "met"),
    ([0.50, 0.51, 0.52, 0.53, 0.54], 0.8, {}, "missed"),
    ([0.70, 0.90, 0.80, 0.75, 0.85], 0.8, {}, "not shown"),  # the interval straddles the goal
    ([0.90, 0.91, 0.92, 0.93, 0.94], 0.8, {"like_for_like": False}, "not shown"),
    ([0.90, 0.91, 0.92], 0.8, {}, "not shown"),  # fewer seeds than the protocol asks for
    ([0.0, 0.0, 0.0, 0.0, 0.0], 0.0, {}, "not shown"),  # identical on every seed: "beats" is not shown
    ([60.0, 62.0, 61.0, 63.0, 59.0], 80, {"higher_is_better": False}, "met"),  # errors: lower is better
    ([90.0, 92.0, 91.0, 93.0, 89.0], 80, {"higher_is_better": False}, "missed"),
])
def test_verdicts(values, goal, options, expected):
    assert protocol.verdict(protocol.interval(values), goal, **options) == expected


def test_choose_keeps_the_best_validation_score_and_records_all():
    best, record = protocol.choose([1, 2, 3], lambda c: {1: 0.5, 2: 0.7, 3: 0.7}[c])
    assert best == 2 and record == "1: 0.5000; 2: 0.7000; 3: 0.7000"


def test_a_section_is_replaced_between_its_markers(tmp_path):
    path = tmp_path / "r.md"
    protocol.write_section(path, "x", "X", "first")
    protocol.write_section(path, "y", "Y", "other")
    protocol.write_section(path, "x", "X", "second")
    text = path.read_text(encoding="utf-8")
    assert "second" in text and "first" not in text and "other" in text


def test_hinton_teacher_recipe_options_reach_the_teachers_and_the_table(tmp_path, monkeypatch):
    hinton = importlib.import_module("benchmarks.hinton_mnist")
    calls, train = [], hinton.train
    monkeypatch.setattr(hinton, "train", lambda *a, **kw: calls.append(kw) or train(*a, **kw))
    out = tmp_path / "hinton.md"
    hinton.main(["--quick", "--teacher-max-norm", "0.5", "--teacher-sgd", "0.1", "--out", str(out)])
    teachers = [kw for kw in calls if "val" in kw]  # the teachers are early-stopped on validation, students not
    assert len(teachers) == 2 and all((kw["optimizer"], kw["lr"], kw["max_norm"]) == ("sgd", 0.1, 0.5) for kw in teachers)
    assert all("max_norm" not in kw and "optimizer" not in kw for kw in calls if "val" not in kw)
    teacher_row = next(line for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| teacher |"))
    assert "SGD lr 0.1 momentum 0.9, max-norm 0.5" in teacher_row
