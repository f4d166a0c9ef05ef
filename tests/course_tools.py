"""nbgrader driven from tests: a temporary course per lesson, submissions autograded through the command line.

Shared by the grader proofs (test_course.py) and the grader-integrity tests. Each lesson gets its own
course folder and gradebook: one lesson's grading never reads another's.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))


def notebook_path(folder, lesson):
    return folder / lesson / f"{lesson}.ipynb"


def graded_cells(notebook, key):
    """grade_ids of the cells whose nbgrader metadata has ``key`` (\"solution\" or \"grade\") set."""
    return [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells if c.metadata.get("nbgrader", {}).get(key)]


@cache
def course_root(lesson, purpose="grading"):
    """A fresh temporary course for one lesson: config, its solution and a new gradebook; the assignment
    generated into it (course/<lesson> inside the returned folder)."""
    root = Path(tempfile.mkdtemp(prefix=f"kdlib-{purpose}-{lesson[:2]}-"))
    for name in ("nbgrader_config.py", "grading.py"):  # the config imports grading.py from its own folder
        shutil.copy(ROOT / name, root)
    shutil.copytree(ROOT / "solutions" / lesson, root / "solutions" / lesson,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
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
