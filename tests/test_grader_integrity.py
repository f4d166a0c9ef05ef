"""The grader under abuse: what a learner's submission can do to its own and others' grades.

Each case goes through `nbgrader autograde` itself; an abuse costs only the points of the abused exercise.
"""
from functools import cache

import pytest

from course_tools import autograde, course_root, graded_only

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
    return autograde(course_root("01_soft_targets", "abuse"), "01_soft_targets", submissions, "--Execute.timeout=20")


@pytest.mark.parametrize("case", ABUSE)
def test_abuse_costs_only_the_points_of_the_abused_exercise(case):
    scores, failing = abused()[case], ABUSE[case][1]
    assert set(scores) == {"test_soft_targets", "test_class_similarity", "test_entropy"}, scores
    for name, (score, maximum) in scores.items():
        assert score == (0 if name in failing else maximum), (case, scores)
