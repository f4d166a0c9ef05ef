"""The grading pipeline, end to end through nbgrader itself.

- course/ is exactly what `nbgrader generate_assignment` makes from solutions/;
- the solution notebook scores full marks, the untouched learner notebook zero on every graded cell;
- every plausible wrong answer in tests/mutants/ scores zero on its exercise and full marks elsewhere;
- a learner stuck on every exercise still sees every other cell of the lesson run;
- abuse: an endless cell, an edited or deleted test cell, an exercise that raises cost only their own points;
- no solution or hidden test leaks into course/.
"""
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))


def notebook_path(folder, lesson):
    return folder / lesson / f"{lesson}.ipynb"


def graded_cells(notebook, key):
    """grade_ids of the cells whose nbgrader metadata has ``key`` (\"solution\" or \"grade\") set."""
    return [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells if c.metadata.get("nbgrader", {}).get(key)]


@cache
def course_root(purpose="grading"):
    """A fresh temporary course: config, solutions and a new gradebook; assignments generated into it."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=f"kdlib-{purpose}-"))
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for lesson in LESSONS:
        nbgrader("generate_assignment", lesson, "--force", root=root)
    return root


def nbgrader(*args, root):
    """Run the nbgrader command line in ``root`` with its own gradebook; fail with its output."""
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` from the same environment
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}",
               f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}"]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def graded_only(lesson, **replacements):
    """The solution notebook cut to its imports and graded cells; ``grade_id=source`` replaces a cell,
    ``grade_id=None`` deletes it."""
    notebook = nbformat.read(notebook_path(ROOT / "solutions", lesson), as_version=4)
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    kept = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell is first_code or meta.get("solution") or meta.get("grade"):
            grade_id = meta.get("grade_id")
            if grade_id in replacements and replacements[grade_id] is None:
                continue
            if grade_id in replacements:
                cell.source = replacements[grade_id].strip()
            kept.append(cell)
    missing = set(replacements) - {c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells}
    assert not missing, f"no such cells in {lesson}: {missing}"
    notebook.cells = kept
    return notebook


def autograde(root, lesson, submissions, *options):
    """Put each student's notebook in submitted/, run `nbgrader autograde`, return scores per student."""
    for student, notebook in submissions.items():
        path = notebook_path(root / "submitted" / student, lesson)
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)
    nbgrader("autograde", lesson, "--force", *options, root=root)
    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for student in submissions:
            submitted = gradebook.find_submission_notebook(lesson, lesson, student)
            scores[student] = {grade.name: (grade.score, grade.max_score) for grade in submitted.grades}
    return scores


@cache
def autograded(lesson):
    """Autograde the solution, the untouched release and every mutant of ``lesson``; scores per student."""
    submissions = {
        "solution": nbformat.read(notebook_path(ROOT / "solutions", lesson), as_version=4),
        "untouched": nbformat.read(notebook_path(ROOT / "course", lesson), as_version=4),
    }
    for index, (mutant_lesson, exercise, _, source) in enumerate(MUTANTS):
        if mutant_lesson == lesson:
            submissions[f"mutant{index:02d}"] = graded_only(lesson, **{exercise: source})
    return autograde(course_root(), lesson, submissions)


@pytest.mark.parametrize("lesson", LESSONS)
def test_course_is_generated_from_solutions(lesson):
    generated = json.loads(notebook_path(course_root() / "course", lesson).read_text(encoding="utf-8"))
    committed = json.loads(notebook_path(ROOT / "course", lesson).read_text(encoding="utf-8"))
    assert generated == committed, f"course/{lesson} is out of date: run `make release` and commit course/"


@pytest.mark.parametrize("lesson", LESSONS)
def test_no_solution_or_hidden_test_reaches_the_learner(lesson):
    released = notebook_path(ROOT / "course", lesson).read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in released
    notebook = nbformat.reads(released, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "release carries outputs"


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_scores_full_marks(lesson):
    scores = autograded(lesson)["solution"]
    source = nbformat.read(notebook_path(ROOT / "solutions", lesson), as_version=4)
    assert set(scores) == set(graded_cells(source, "grade")) and scores
    assert all(score == maximum > 0 for score, maximum in scores.values()), scores


@pytest.mark.parametrize("lesson", LESSONS)
def test_untouched_notebook_scores_zero(lesson):
    scores = autograded(lesson)["untouched"]
    assert scores and all(score == 0 for score, _ in scores.values()), scores


@pytest.mark.parametrize("lesson", LESSONS)
def test_a_learner_stuck_on_every_exercise_still_sees_the_whole_lesson_run(lesson):
    """The untouched notebook, exactly as released, was executed by autograde above: only its graded test
    cells may fail; every other cell runs on kdlib's reference functions (checks.yours_or_kdlib)."""
    autograded(lesson)
    executed = nbformat.read(notebook_path(course_root() / "autograded" / "untouched", lesson), as_version=4)
    failed = [(index, output.get("ename"), output.get("evalue", "")[:200]) for index, cell in enumerate(executed.cells)
              if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("grade")
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not failed, f"cells of the unsolved {lesson} that fail (index, error, message): {failed}"
    tests = [c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert all(any(o.get("output_type") == "error" for o in c.get("outputs", [])) for c in tests), \
        "an unsolved exercise's test cell passed: the stub must fail its tests"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_has_a_mutant_and_a_test_cell(lesson):
    source = nbformat.read(notebook_path(ROOT / "solutions", lesson), as_version=4)
    exercises, tests = graded_cells(source, "solution"), graded_cells(source, "grade")
    assert exercises and sorted(tests) == sorted(f"test_{e}" for e in exercises)
    assert set(exercises) == {exercise for mutant_lesson, exercise, _, _ in MUTANTS if mutant_lesson == lesson}


@pytest.mark.parametrize("index", range(len(MUTANTS)), ids=[f"{m[0][:2]}-{m[1]}-{m[2]}" for m in MUTANTS])
def test_mutant_loses_the_points_of_its_exercise_only(index):
    lesson, exercise, mistake, _ = MUTANTS[index]
    scores = autograded(lesson)[f"mutant{index:02d}"]
    assert scores[f"test_{exercise}"][0] == 0, f"the tests of {exercise} did not catch: {mistake}"
    others = {name: s for name, s in scores.items() if name != f"test_{exercise}"}
    assert all(score == maximum for score, maximum in others.values()), others


# ---- the grader under abuse (lesson 01; a 20 s per-cell timeout keeps the endless cell short) ------

WRONG_SIMILARITY = "def class_similarity(probabilities, labels, classes):\n    return probabilities"
ABUSE = {
    "endless-loop": ({"soft_targets": "while True:\n    pass"}, {"test_soft_targets"}),
    "edited-test-cell": ({"class_similarity": WRONG_SIMILARITY, "test_class_similarity": "print('all good')"},
                         {"test_class_similarity"}),
    "deleted-test-cell-wrong-answer": ({"class_similarity": WRONG_SIMILARITY, "test_class_similarity": None},
                                       {"test_class_similarity"}),
    "deleted-test-cell-right-answer": ({"test_class_similarity": None}, set()),
    "exercise-raises": ({"entropy": "raise ValueError('half-finished')"}, {"test_entropy"}),
}


@cache
def abused():
    submissions = {name: graded_only("01_soft_targets", **cells) for name, (cells, _) in ABUSE.items()}
    return autograde(course_root("abuse"), "01_soft_targets", submissions, "--Execute.timeout=20")


@pytest.mark.parametrize("case", ABUSE)
def test_abuse_costs_only_the_points_of_the_abused_exercise(case):
    scores, failing = abused()[case], ABUSE[case][1]
    assert set(scores) == {"test_soft_targets", "test_class_similarity", "test_entropy"}, scores
    for name, (score, maximum) in scores.items():
        assert score == (0 if name in failing else maximum), (case, scores)
