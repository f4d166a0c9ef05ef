"""The grading pipeline, end to end through nbgrader itself.

- course/ is exactly what `nbgrader generate_assignment` makes from solutions/;
- the solution's graded cells score full marks (nbval runs the whole solution), the untouched learner notebook
  zero on every graded cell;
- every plausible wrong answer in tests/mutants/ scores zero on its exercise and full marks elsewhere;
- a learner stuck on every exercise still sees every other cell of the lesson run;
- no solution or hidden test leaks into course/.
"""
import json
from functools import cache

import nbformat
import pytest

from course_tools import (LESSONS, ROOT, autograde, course_root, graded_cells, graded_only, mutant_groups,
                          names_read_and_bound, notebook_path)
from mutants import MUTANTS

@cache
def autograded(lesson):
    """Autograde the solution's graded cells, the untouched release and the lesson's mutants; scores per student.
    (nbval executes every cell of the whole solution notebook; here only nbgrader's scoring is proven.) The
    mutants go several to a submission, one per exercise, when their exercises share no names
    (course_tools.mutant_groups): each kernel start costs seconds, and the proofs are the same."""
    submissions = {
        "solution": graded_only(lesson),
        "untouched": nbformat.read(notebook_path(ROOT / "course", lesson), as_version=4),
    }
    for number, group in enumerate(mutant_submissions(lesson)):
        submissions[f"mutants{number:02d}"] = graded_only(lesson, **dict(group.values()))
    return autograde(course_root(lesson), lesson, submissions)


@cache
def mutant_submissions(lesson):
    """The rows of tests/mutants for ``lesson`` packed into submissions: [{index: (exercise, source)}, ...]."""
    return mutant_groups(lesson, {index: (exercise, source) for index, (row_lesson, exercise, _, source)
                                  in enumerate(MUTANTS) if row_lesson == lesson})


def notebook_names(folder, lesson):
    """The lesson's notebooks in ``folder``: its graded one and any optional "going further" notebook beside it."""
    return sorted(p.name for p in (folder / lesson).glob("*.ipynb"))


@pytest.mark.parametrize("lesson", LESSONS)
def test_course_is_generated_from_solutions(lesson):
    generated_folder, committed_folder = course_root(lesson) / "course", ROOT / "course"
    names = notebook_names(generated_folder, lesson)
    assert names == notebook_names(committed_folder, lesson) and f"{lesson}.ipynb" in names, \
        f"course/{lesson} does not hold the notebooks of solutions/{lesson}: run `make release` and commit course/"
    for name in names:
        generated = json.loads((generated_folder / lesson / name).read_text(encoding="utf-8"))
        committed = json.loads((committed_folder / lesson / name).read_text(encoding="utf-8"))
        assert generated == committed, f"course/{lesson}/{name} is out of date: run `make release` and commit course/"


@pytest.mark.parametrize("lesson", LESSONS)
def test_no_solution_or_hidden_test_reaches_the_learner(lesson):
    for name in notebook_names(ROOT / "course", lesson):
        released = (ROOT / "course" / lesson / name).read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in released, f"{marker} in course/{lesson}/{name}"
        notebook = nbformat.reads(released, as_version=4)
        assert notebook.metadata["kernelspec"]["name"] == "python3"
        assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), f"{name} carries outputs"


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
    executed = nbformat.read(notebook_path(course_root(lesson) / "autograded" / "untouched", lesson), as_version=4)
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


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_mutant_is_in_exactly_one_submission_with_one_mutant_per_exercise(lesson):
    groups = mutant_submissions(lesson)
    indices = [index for group in groups for index in group]
    assert sorted(indices) == [i for i, row in enumerate(MUTANTS) if row[0] == lesson]
    for group in groups:
        exercises = [exercise for exercise, _ in group.values()]
        assert len(set(exercises)) == len(exercises), f"two mutants of one exercise in a submission: {exercises}"


@pytest.mark.parametrize("cells, read, bound", [
    (["x = x + 1"], {"x"}, {"x"}),                                    # the value runs before the name is bound
    (["y = 2", "y += 1"], set(), {"y"}),                               # bound by an earlier cell
    (["z += 1"], {"z"}, {"z"}),
    (["for t in range(3):\n    u = t"], {"range"}, {"t", "u"}),       # the loop variable is bound before its body
    (["def f(a):\n    return a + g"], {"g"}, {"f"}),                  # a global read inside a function
    (["h = lambda q: q + r"], {"r"}, {"h"}),
    (["v = [w * k for w in items]"], {"k", "items"}, {"v"}),           # a comprehension's variable is its own
    (["import torch.nn as nn\nfrom math import pi", "nn.Linear(1, 1), pi"], set(), {"nn", "pi"}),
    (["%time x = 1"], {"*"}, set()),                                   # not plain Python: reads anything
])
def test_names_a_cell_reads_and_binds(cells, read, bound):
    """What mutant_groups keeps apart: a cell that reads a name another exercise binds depends on it."""
    assert names_read_and_bound(cells) == (read, bound)


@pytest.mark.parametrize("index", range(len(MUTANTS)), ids=[f"{m[0][:2]}-{m[1]}-{m[2]}" for m in MUTANTS])
def test_mutant_loses_the_points_of_its_exercise_only(index):
    lesson, exercise, mistake, _ = MUTANTS[index]
    number, group = next((n, g) for n, g in enumerate(mutant_submissions(lesson)) if index in g)
    scores = autograded(lesson)[f"mutants{number:02d}"]
    assert scores[f"test_{exercise}"][0] == 0, f"the tests of {exercise} did not catch: {mistake}"
    mutated = {f"test_{other}" for other, _ in group.values()}  # every other exercise of its submission is a
    others = {name: s for name, s in scores.items() if name not in mutated}  # mutant too, sharing no names with it
    assert all(score == maximum for score, maximum in others.values()), others
