"""nbgrader settings: instructor notebooks live in solutions/, the generated learner notebooks in course/.

Run nbgrader from the project root: solutions/01_soft_targets/01_soft_targets.ipynb is released
as course/01_soft_targets/01_soft_targets.ipynb by `nbgrader generate_assignment 01_soft_targets --force`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # grading.py, beside this file
import grading  # noqa: E402

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
# nbgrader 0.9 reads the per-cell limit from Execute (its default of 30 s is too short for training cells).
c.Execute.timeout = 300
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# A learner who deletes a graded test cell is still graded by the original tests.
c.OverwriteCells.add_missing_cells = True
# Warnings, pasted cells, dead kernels and tampering: the course's own preprocessors (grading.py).
grading.configure(c)
