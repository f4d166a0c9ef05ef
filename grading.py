"""The course's autograding on top of nbgrader: an honest learner keeps every point they earn, a cheat earns none.

nbgrader_config.py puts the preprocessors below into `nbgrader autograde`. What nbgrader alone gets wrong, and
what each one does about it:

- a correct answer that writes a warning to stderr scores 0 (nbgrader fails a test cell with stderr output), and
  a test cell that shows a number (``sys.displayhook(1.0)``) earns that number as partial credit:
  `TestOutputs` makes a test cell's score depend on its errors only;
- an answer cell pasted twice in JupyterLab keeps its nbgrader metadata: `KeepLastCopy` keeps the last copy
  (what the learner ran last), clears the others' metadata and says so in the cell;
- a kernel that dies (``os._exit``, the out-of-memory killer) or a cell that swallows the timeout's interrupt
  stops nbgrader for the whole notebook: `GuardedExecute` marks that cell with the reason, restarts the kernel,
  replays the cells before it and grades the rest;
- learner cells run in the same Python as the tests: before each test cell `GuardedExecute` restores what an
  earlier cell replaced (``torch.allclose = ...``, ``kdlib.kd_loss = wrapper``, ``def check_close(...)``,
  IPython input transformers) and says in the test's output what it restored.

Learner code can still reach anything in its own process; what it tried is listed by the tamper scan:

    python grading.py scan submitted/        # per student, lesson and cell: every suspicious construct

Nothing here is imported by kdlib or the lessons: the learner's library stays free of grading code.
"""
import argparse
import ast
import os
import pwd
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Unicode

# Runs in the kernel (as a user expression, which no input transformer sees) before the first cell: remembers
# the functions the tests rely on, and `restore(shell)` puts them back before each test cell.
KERNEL_GUARD = '''
import builtins, math, os, sys, types
import torch
import kdlib

SPACES = [builtins, math, torch, torch.nn.functional, torch.special, torch.linalg, torch.Tensor,
          *(module for name, module in sorted(sys.modules.items()) if name.split(".")[0] == "kdlib")]
ORIGINAL = [(space, name, value, getattr(value, "__code__", None))
            for space in SPACES for name, value in list(vars(space).items())
            if callable(value) or isinstance(value, types.ModuleType)]
SHELL = get_ipython()
TRANSFORMERS = {name: list(getattr(SHELL, name)) for name in
                ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}
NAMES = {}
LIBRARIES = tuple(os.path.dirname(module.__file__) for module in (torch, kdlib))


def library_wrapper(now, original):
    """True for torch's own wrapping of its functions when a submodule is first imported (torch._dynamo wraps
    torch.manual_seed): a wrapper of the original whose code is in torch's or kdlib's folder."""
    code = getattr(now, "__code__", None)
    return (getattr(now, "__wrapped__", None) is original and code is not None
            and code.co_filename.startswith(LIBRARIES))


def remember_names():
    """The user namespace's imports before the learner's first answer: the names the test cells use."""
    originals = {id(value) for _, _, value, _ in ORIGINAL}
    NAMES.update({name: value for name, value in SHELL.user_ns.items()
                  if isinstance(value, types.ModuleType) or id(value) in originals})


def restore():
    """Put back every remembered function, module and name that changed; return what was changed."""
    changed = []
    for space, name, value, code in ORIGINAL:
        now = vars(space).get(name)
        if (now is not value or getattr(value, "__code__", None) is not code) and not library_wrapper(now, value):
            if code is not None:
                value.__code__ = code
            setattr(space, name, value)
            changed.append(f"{getattr(space, '__name__', space)}.{name}")
    for name, value in NAMES.items():
        if SHELL.user_ns.get(name) is not value:
            SHELL.user_ns[name] = value
            changed.append(name)
    for name, transformers in TRANSFORMERS.items():
        if getattr(SHELL, name) != transformers:
            setattr(SHELL, name, list(transformers))
            changed.append(f"get_ipython().{name}")
    return changed


sys.modules["_kdlib_grader"] = types.SimpleNamespace(remember_names=remember_names, restore=restore)
'''


class TestOutputs(NbGraderPreprocessor):
    """A test cell scores by its errors only. Stderr (an honest answer's warning, a progress bar) is shown as
    ordinary output, and a result the cell displays is dropped: our tests never display one, so a number
    there is never partial credit. Runs after execution, before nbgrader saves the scores."""

    def preprocess_cell(self, cell, resources, index):
        if utils.is_grade(cell) and cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs if output.output_type != "execute_result"]
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


class KeepLastCopy(NbGraderPreprocessor):
    """A cell pasted twice keeps its grade_id twice. nbgrader's DeduplicateIds then leaves the copy an empty
    ``nbgrader`` entry, which OverwriteCells reads as a graded cell without a grade_id (KeyError: the notebook
    goes ungraded). Keep the last copy graded (the one below, usually the one the learner worked on), remove
    the others' metadata and say so in them. Runs first, on the submitted notebook."""

    def preprocess(self, nb, resources):
        seen = set()
        for cell in reversed(nb.cells):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in seen:
                self.log.warning("cell %s appears more than once: only its last copy is graded", grade_id)
                del cell.metadata["nbgrader"]
                if cell.cell_type == "code":
                    note = f"# grader: a copy of the cell {grade_id}; only its last copy is graded"
                    cell.source = f"{note}\n{cell.source}"
            elif grade_id is not None:
                seen.add(grade_id)
        return nb, resources


class SandboxKernelManager(AsyncKernelManager):
    """With ``user`` set, the kernel runs as that system user, in a fresh folder holding a copy of the submission's
    folder: it can then read neither solutions/ (the hidden tests) nor write the gradebook, whatever the learner's
    code tries, as long as those belong to the instructor and are not readable by others. Needs root."""

    user = Unicode("", help="Run grading kernels as this system user (e.g. kdlib-grader); empty: as the grader "
                            "itself").tag(config=True)
    python = Unicode("", help="The kernel's Python when the grader's own is private to its user (pyenv or conda "
                              "under /root); empty: the kernelspec's").tag(config=True)
    _sandbox = None

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if not self.user:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        try:
            account = pwd.getpwnam(self.user)
        except KeyError:
            raise ValueError(f"SandboxKernelManager.user: expected an existing system user, "
                             f"got {self.user!r}") from None
        if self._sandbox is None:  # a restarted kernel keeps its folder
            self._sandbox = Path(tempfile.mkdtemp(prefix="kdlib-sandbox-"))
            shutil.copytree(kw.get("cwd") or os.getcwd(), self._sandbox / "work")
        connection = self._sandbox / "kernel.json"  # the grader's own copy is in a folder only it can read
        shutil.copy(self.connection_file, connection)
        for path in [self._sandbox, *self._sandbox.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid)
        kernel_cmd = [str(connection) if argument == self.connection_file else argument for argument in kernel_cmd]
        kernel_cmd[0] = self.python or kernel_cmd[0]
        kw.update(cwd=str(self._sandbox / "work"), user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                  env={**(kw.get("env") or os.environ), "HOME": str(self._sandbox), "USER": self.user})
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._sandbox is not None:
            shutil.rmtree(self._sandbox, ignore_errors=True)
            self._sandbox = None


class GuardedExecute(Execute):
    """nbgrader's Execute that survives a dead or stuck kernel and runs each test against the original helpers.

    A cell whose kernel dies, or that does not stop when the timeout interrupts it, gets an error output saying
    so; the kernel is restarted, the cells that ran before are replayed silently and grading goes on. Kernels
    are started by `SandboxKernelManager` (as another user when configured).
    """

    def __init__(self, **kwargs):
        super().__init__(**{"kernel_manager_class": SandboxKernelManager, **kwargs})

    def preprocess_cell(self, cell, resources, index):
        if index == 0:
            self._ran, self._names_at = [], None  # the cells run so far; how many ran before the first answer
            self._start_guard()
        try:
            cell, resources = self._guarded_cell(cell, resources, index)
        except (DeadKernelError, CellTimeoutError, TimeoutError) as error:
            reason = ("the kernel died (os._exit, a crash or the out-of-memory killer)"
                      if isinstance(error, DeadKernelError)
                      else f"the kernel did not stop when interrupted after {self.timeout} s")
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="KernelRestarted", evalue=reason,
                traceback=[f"KernelRestarted: {reason}. The grader restarted the kernel, ran the cells before this "
                           "one again, and went on with the next cell."]))
            self._restart()
        return cell, resources

    def _guarded_cell(self, cell, resources, index):
        """Run one cell: the user namespace remembered before the first answer, the helpers restored before a test."""
        restored = []
        if cell.cell_type == "code" and utils.is_solution(cell) and self._names_at is None:
            self._kernel_call("remember_names")
            self._names_at = len(self._ran)
        if cell.cell_type == "code" and utils.is_grade(cell):
            restored = self._kernel_call("restore")
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.cell_type == "code" and not any(o.get("ename") == self.error_on_timeout["ename"] for o in cell.outputs):
            self._ran.append(cell.source)
        if restored:
            cell.outputs.insert(0, nbformat.v4.new_output(
                "stream", name="stdout",
                text=f"grader: before this test, put back what earlier cells had replaced: {', '.join(restored)}\n"))
        return cell, resources

    def _kernel_call(self, function):
        """Call the kernel guard's ``function`` as a user expression (no input transformer sees it); its value."""
        return self._evaluate(f"__import__('sys').modules['_kdlib_grader'].{function}()")

    def _evaluate(self, expression):
        reply = self._run("", user_expressions={"value": expression})
        result = reply["content"]["user_expressions"]["value"]
        if result["status"] != "ok":
            raise RuntimeError(f"the grader's {expression[:60]!r} failed in the kernel: "
                               f"{result['ename']}: {result['evalue']}")
        return ast.literal_eval(result["data"]["text/plain"])

    def _run(self, source, **options):
        return run_sync(self.kc.execute_interactive)(source, silent=True, store_history=False, allow_stdin=False,
                                                     timeout=self.timeout, output_hook=lambda message: None, **options)

    def _start_guard(self):
        self._evaluate(f"exec({KERNEL_GUARD!r}, {{'get_ipython': get_ipython}})")

    def _restart(self):
        run_sync(self.km.restart_kernel)(now=True)
        self.wait_for_reply(self.kc.kernel_info())
        self._start_guard()
        for index, source in enumerate(self._ran):
            if index == self._names_at:
                self._kernel_call("remember_names")
            self._run(source)
        if self._names_at == len(self._ran):
            self._kernel_call("remember_names")


def configure(c):
    """Put the course's preprocessors into nbgrader's default lists (nbgrader_config.py calls this)."""
    sanitize = Autograde.class_traits()["sanitize_preprocessors"].default()
    grading = Autograde.class_traits()["autograde_preprocessors"].default()
    c.Autograde.sanitize_preprocessors = [KeepLastCopy, *sanitize]
    grading = [GuardedExecute if p is Execute else p for p in grading]
    c.Autograde.autograde_preprocessors = grading[:1] + [TestOutputs] + grading[1:]


# ---- the tamper scan ---------------------------------------------------------------------------------------

MODULES_FLAGGED = {"threading", "_thread", "concurrent.futures", "multiprocessing", "subprocess", "sqlite3", "ctypes",
                   "gc", "importlib", "inspect", "shutil", "socket", "signal", "pickle", "marshal"}
NAMES_FLAGGED = {"__builtins__", "__loader__", "__spec__", "exec", "eval", "compile", "__import__", "open", "setattr",
                 "delattr", "globals", "vars", "get_ipython",
                 "inspect.getsource", "sys.setprofile", "sys.settrace", "sys.displayhook", "sys._getframe",
                 "threading.setprofile", "threading.settrace", "os._exit", "os.system", "os.kill", "os.remove",
                 "os.open", "os.popen", "os.chmod", "os.rename", "os.replace", "os.walk", "os.listdir",
                 "os.scandir", "os.chdir", "sys.exit"}
ATTRIBUTES_FLAGGED = {"input_transformers_post", "input_transformers_cleanup", "ast_transformers", "__code__",
                      "__globals__", "__builtins__", "displayhook", "excepthook", "f_globals", "f_locals", "f_back",
                      "write_text", "write_bytes", "unlink", "rmdir", "symlink_to", "hardlink_to"}  # pathlib writes
PROTECTED = {"torch", "kdlib", "sys", "builtins", "math", "IPython", "nbgrader"}  # what the tests run on
TEXT_FLAGGED = sorted(NAMES_FLAGGED | ATTRIBUTES_FLAGGED | MODULES_FLAGGED, key=len, reverse=True)


def scan_cell(source, imported):
    """What looks like tampering in one code cell. ``imported`` maps the names that imports in earlier cells bound
    to what they import (this cell's imports are added): the tests use those names, so rebinding one at the top
    level of a cell, or assigning to an attribute of torch, kdlib, sys or builtins, is reported."""
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:  # unparseable: fall back to the text
        return {f"mentions {word}" for word in TEXT_FLAGGED if re.search(rf"(?<![\w.]){re.escape(word)}\b", source)}
    found = set()
    for node in top_level(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                module = alias.name if isinstance(node, ast.Import) else node.module or ""
                if isinstance(node, ast.ImportFrom):
                    bound, origin = alias.asname or alias.name, f"{module}.{alias.name}"
                else:
                    bound = alias.asname or alias.name.split(".")[0]
                    origin = alias.name if alias.asname else bound
                if any(path == m or path.startswith(m + ".") for path in (module, origin) for m in MODULES_FLAGGED):
                    found.add(f"imports {origin}")
                if imported.setdefault(bound, origin) != origin:
                    found.add(f"redefines {bound}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in imported:
            found.add(f"redefines {node.name}")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and node.id in imported:
            found.add(f"redefines {node.id}")
    for node in ast.walk(tree):
        name = dotted(node)
        if (isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del))
                and imported.get(name.split(".")[0] if name else None, "").split(".")[0] in PROTECTED):
            found.add(f"assigns {name}")
        if isinstance(node, ast.Name) and node.id in NAMES_FLAGGED:
            found.add(f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and (node.attr in ATTRIBUTES_FLAGGED or name in NAMES_FLAGGED):
            found.add(f"uses {name or node.attr}")
    return found


def top_level(tree):
    """The nodes of a cell outside function and class bodies (what binds the notebook's names)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))


def dotted(node):
    """``a.b.c`` for a chain of names and attributes (subscripts skipped), else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript):
        return dotted(node.value)
    return None


def scan_notebook(path):
    """{cell label: findings} for one notebook; a cell is labelled by its grade_id, else by its number."""
    notebook = nbformat.read(path, as_version=4)
    imported, report = {}, {}
    for number, cell in enumerate(notebook.cells, 1):
        if cell.cell_type == "code":
            found = scan_cell(cell.source, imported)
            if found:
                report[cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {number}"] = sorted(found)
    return report


def scan(folder):
    """Every notebook under ``folder`` (e.g. submitted/<student>/<lesson>/), as {path: {cell: findings}}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder: expected a folder of submissions (e.g. submitted/), got {str(folder)!r}")
    return {str(path.relative_to(folder)): found for path in sorted(folder.rglob("*.ipynb"))
            if ".ipynb_checkpoints" not in path.parts and (found := scan_notebook(path))}


def main(argv=None):
    parser = argparse.ArgumentParser(description="List constructs in submitted notebooks that could tamper with "
                                                 "grading, per notebook and cell (see docs/instructors.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("scan", help="scan a folder of submissions").add_argument("folder")
    args = parser.parse_args(argv)
    found = scan(args.folder)
    for path, cells in found.items():
        for cell, findings in cells.items():
            print(f"{path}  {cell}: {'; '.join(findings)}")
    print(f"{len(found)} notebook(s) with findings under {args.folder}" if found else
          f"nothing found under {args.folder}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
