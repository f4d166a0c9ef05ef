"""nbgrader driven from tests: a temporary course per lesson, submissions autograded through the command line.

Shared by the grader proofs (test_course.py) and the grader-integrity tests. Each lesson gets its own
course folder and gradebook: one lesson's grading never reads another's.
"""
import ast
import os
import shutil
import subprocess
import symtable
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


def names_read_and_bound(sources):
    """What code cells run in order read from the notebook (names they use before binding them, at the top
    level or inside their functions) and the names they bind. Code that is not plain Python reads "*"."""
    names = _Names()
    for source in sources:
        try:
            names.visit(ast.parse(source))
        except SyntaxError:
            return {"*"}, names.bound
    return names.read, names.bound


class _Names(ast.NodeVisitor):
    """Walks a cell in the order Python runs it, as far as binding goes: a value before its targets, a loop's
    iterable before its variable; a function, lambda or comprehension reads the globals its body uses."""

    def __init__(self):
        self.read, self.bound, self.imported = set(), set(), set()

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self.read |= {node.id} - self.bound
        else:
            self.bound.add(node.id)

    def visit_Assign(self, node):
        for child in (node.value, *node.targets):
            self.visit(child)

    def visit_AugAssign(self, node):
        self.read |= {getattr(node.target, "id", None)} - self.bound - {None}
        self.generic_visit(node)

    def visit_For(self, node):
        for child in (node.iter, node.target, *node.body, *node.orelse):
            self.visit(child)

    def _scope(self, node):  # its own names are local; what it reads from the module is read here
        self.read |= _reads(symtable.symtable(ast.unparse(node), "<cell>", "exec")) - self.bound

    visit_Lambda = visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _scope

    def visit_FunctionDef(self, node):
        self._scope(node)
        self.bound.add(node.name)

    visit_ClassDef = visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        self.imported |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        self.bound |= self.imported

    visit_ImportFrom = visit_Import


def _reads(table):
    """Names a symbol table reads from the module: a name used at module level, a global used inside a function."""
    names = {s.get_name() for s in table.get_symbols()
             if s.is_referenced() and (table.get_type() == "module" or s.is_global())}
    return names.union(*(_reads(child) for child in table.get_children()))


def mutant_groups(lesson, mutants):
    """Mutants of ``lesson`` (rows of tests/mutants: index → (exercise, source)) packed into as few submissions as
    can each prove every one of them: at most one mutant per exercise, and only exercises whose cells cannot reach
    each other (neither reads a name the other binds, and they read no shared variable of the imports cell), so
    each mutant scores as it would alone. Returns [{index: (exercise, source)}, ...]."""
    notebook = nbformat.read(notebook_path(ROOT / "solutions", lesson), as_version=4)
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    sources = {}  # exercise → its solution, every mutant of it and its test cell, in notebook order
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            variants = [source for exercise, source in mutants.values() if exercise == grade_id]
            sources[grade_id] = [cell.source, *variants]
        elif grade_id and grade_id.startswith("test_") and grade_id[5:] in sources:
            sources[grade_id[5:]].append(cell.source)
    names = {exercise: names_read_and_bound(cells) for exercise, cells in sources.items()}
    first = _Names()
    first.visit(ast.parse(first_code.source))
    shared = first.bound - first.imported  # the imports cell's variables (DEVICE, ...): a mutant could change them

    def apart(a, b):
        (read_a, bound_a), (read_b, bound_b) = names[a], names[b]
        return a != b and "*" not in read_a | read_b and not (
            read_a & bound_b or read_b & bound_a or read_a & read_b & shared)

    groups = []
    for index, (exercise, source) in mutants.items():
        group = next((g for g in groups if all(apart(exercise, other) for other, _ in g.values())), None)
        if group is None:
            groups.append(group := {})
        group[index] = (exercise, source)
    return groups


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
