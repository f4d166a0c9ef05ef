"""Plausible wrong answers, one row each: every graded exercise's tests must catch every row.

Each lesson has its own module here (``lesson_NN.py``) with a list ``MUTANTS`` of rows
(lesson, exercise, mistake, source). ``exercise`` is the nbgrader grade_id of the solution cell;
``source`` replaces that cell's code in a copy of the solution notebook cut to its graded cells,
which is then autograded (tests/test_course.py) and must score 0 on that exercise's test cell
``test_<exercise>`` and full marks on every other one. Mutants of exercises whose cells share no names
are graded together, one per exercise, in one submission (course_tools.mutant_groups). The mistakes are
the ones real code makes; several have shipped in published KD code.
"""
import importlib
from pathlib import Path

MUTANTS = [row for path in sorted(Path(__file__).parent.glob("lesson_*.py"))
           for row in importlib.import_module(f"{__name__}.{path.stem}").MUTANTS]
