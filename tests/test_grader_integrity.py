"""The grader under abuse: what a learner's submission can do to its own and others' grades.

Each case goes through `nbgrader autograde` itself (with the course's own preprocessors, grading.py): an honest
answer keeps its points, an abuse costs only the points of the abused exercise, and the tamper scan
(`python grading.py scan`) names every trick that tries to earn points it should not.
"""
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbformat.corpus.words import generate_corpus_id

from course_tools import ROOT, autograde, course_root, graded_only, notebook_path

sys.path.insert(0, str(ROOT))
import grading  # noqa: E402 (the course's grading module lives beside nbgrader_config.py)

LESSON = "01_soft_targets"
WRONG_SIMILARITY = "def class_similarity(probabilities, labels, classes):\n    return probabilities"
# right on the visible tests' 1-D and 2-D logits, wrong on the hidden tests' 3-D ones
HALF_RIGHT_SOFT = ("def soft_targets(logits, temperature):\n"
                   "    return torch.softmax(logits / temperature, dim=-1 if logits.dim() < 3 else 1)")
WRONG_SOFT = "def soft_targets(logits, temperature):\n    return torch.softmax(logits, dim=-1)"  # ignores T
CALLS_KDLIB = "    return kdlib.soft_targets(logits, temperature)"
SOFT_BY_SOURCE = "def soft_targets(logits, temperature):\n" + CALLS_KDLIB

# name: (cells replaced, test cells that must score 0, what the scan must find in the cell it names)
ABUSE = {
    # older cases: endless loops, edited or deleted tests, errors
    "endless-loop": ({"soft_targets": "while True:\n    pass"}, {"test_soft_targets"}, {}),
    "edited-test-cell": ({"class_similarity": WRONG_SIMILARITY, "test_class_similarity": "print('all good')"},
                         {"test_class_similarity"}, {}),
    "deleted-test-cell-wrong-answer": ({"class_similarity": WRONG_SIMILARITY, "test_class_similarity": None},
                                       {"test_class_similarity"}, {}),
    "deleted-test-cell-right-answer": ({"test_class_similarity": None}, set(), {}),
    "exercise-raises": ({"entropy": "raise ValueError('half-finished')"}, {"test_entropy"}, {}),
    # honest work: full marks, nothing flagged
    "answer-warns-on-stderr": (
        {"soft_targets": "def soft_targets(logits, temperature):\n"
                         "    return torch.softmax(torch.tensor(logits) / temperature, dim=-1)",  # a UserWarning
         "entropy": "import sys\n\ndef entropy(probabilities):\n    print('computing', file=sys.stderr)\n"
                    "    return -torch.special.xlogy(probabilities, probabilities).sum(dim=-1)"},
        set(), {}),
    "kernel-dies": ({"class_similarity": "import os\nos._exit(1)"}, {"test_class_similarity"},
                    {"class_similarity": {"os._exit"}}),
    "interrupt-swallowed": ({"soft_targets": "import time\nwhile True:\n    try:\n        time.sleep(1)\n"
                                             "    except KeyboardInterrupt:\n        pass"},
                            {"test_soft_targets"}, {}),
    # cheats: a wrong answer that would pass, or kdlib's own function
    "redefined-checks": ({"soft_targets": WRONG_SOFT + "\n\ndef check_close(*args, **kwargs):\n    pass\n\n"
                                          "def check(*args, **kwargs):\n    pass"},
                         {"test_soft_targets"}, {"soft_targets": {"redefines check", "redefines check_close"}}),
    "patched-allclose": ({"soft_targets": WRONG_SOFT + "\ntorch.allclose = lambda *args, **kwargs: True"},
                         {"test_soft_targets"}, {"soft_targets": {"assigns torch.allclose"}}),
    "input-transformer": ({"soft_targets": WRONG_SOFT + "\nget_ipython().input_transformers_post.append(\n    lambda"
                                           " lines: [] if any('check' in line for line in lines) else lines)"},
                          {"test_soft_targets"}, {"soft_targets": {"get_ipython", "input_transformers_post"}}),
    "display-hook-credit": ({"soft_targets": "def soft_targets(logits, temperature):\n"
                                             "    __import__('sys').displayhook(3.0)\n    raise NotImplementedError"},
                            {"test_soft_targets"}, {"soft_targets": {"__import__", "displayhook"}}),
    "replaced-reference": ({"soft_targets": HALF_RIGHT_SOFT + "\n\nkdlib.soft_targets = lambda logits, temperature: "
                                            "soft_targets(logits, temperature)"},
                           {"test_soft_targets"}, {"soft_targets": {"assigns kdlib.soft_targets"}}),
    "own-code-exec-source": ({"soft_targets": "import inspect\nnamespace = dict(vars(kdlib.losses))\n"
                                              "exec(inspect.getsource(kdlib.losses.soft_targets), namespace)\n"
                                              "soft_targets = namespace['soft_targets']"},
                             {"test_soft_targets"}, {"soft_targets": {"uses exec", "inspect.getsource"}}),
    "own-code-profiler-off": ({"soft_targets": "import sys\n\ndef soft_targets(logits, temperature):\n"
                                               "    hook = sys.getprofile()\n    sys.setprofile(None)\n    try:\n"
                                               "    " + CALLS_KDLIB + "\n    finally:\n        sys.setprofile(hook)"},
                              {"test_soft_targets"}, {"soft_targets": {"sys.setprofile"}}),
    "own-code-thread": ({"soft_targets": "from concurrent.futures import ThreadPoolExecutor\n\n"
                                         "def soft_targets(logits, temperature):\n"
                                         "    with ThreadPoolExecutor(1) as pool:\n"
                                         "        return pool.submit(kdlib.soft_targets, logits, temperature)"
                                         ".result()"},
                        {"test_soft_targets"}, {"soft_targets": {"concurrent.futures"}}),
}


def copy_pasted(grade_id):
    """Lesson 01 with the cell ``grade_id`` pasted again after itself, nbgrader metadata and all, as JupyterLab does."""
    notebook = graded_only(LESSON)
    index = next(i for i, c in enumerate(notebook.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    pasted = copy.deepcopy(notebook.cells[index])
    pasted.id = generate_corpus_id()  # a new cell id, the metadata kept
    notebook.cells.insert(index + 1, pasted)
    return notebook


COPY_PASTED = {"copy-pasted-answer-cell": "class_similarity", "copy-pasted-test-cell": "test_class_similarity"}

# A right answer whose cell then tries to read the hidden tests from the course's solutions/ (by the absolute path
# and by the path relative to nbgrader's autograded/<student>/<lesson>/) and, with write=True, to make every
# stored test cell `pass` in the gradebook, so that the next learner is graded by nothing.
THIEF = """import sqlite3

def class_similarity(probabilities, labels, classes):
    return torch.stack([probabilities[labels == c].mean(dim=0) for c in range(classes)])

for path in ("{root}/solutions/{lesson}/{lesson}.ipynb", "../../../solutions/{lesson}/{lesson}.ipynb"):
    try:
        print("read:", [line for line in open(path).read().split("\\n") if "HIDDEN" in line][:1])
    except OSError as error:
        print("read:", type(error).__name__)
if {write}:
    try:
        with sqlite3.connect("{root}/gradebook.db") as db:
            db.execute("UPDATE source_cell SET source = 'pass' WHERE name LIKE 'test_%'")
        print("gradebook rewritten")
    except sqlite3.Error as error:
        print("write:", error)
"""


def thief(root, write):
    return graded_only(LESSON, class_similarity=THIEF.format(root=root, lesson=LESSON, write=write))


@cache
def submissions():
    notebooks = {name: graded_only(LESSON, **cells) for name, (cells, _, _) in ABUSE.items()}
    notebooks.update({name: copy_pasted(grade_id) for name, grade_id in COPY_PASTED.items()})
    notebooks["reads-hidden-tests"] = thief(course_root(LESSON, "abuse"), write=False)
    return notebooks


@cache
def abused():
    return autograde(course_root(LESSON, "abuse"), LESSON, submissions(), "--Execute.timeout=20")


def outputs(root, student):
    """All the text a learner's autograded notebook shows (their feedback), the grader's notes included."""
    notebook = nbformat.read(notebook_path(root / "autograded" / student, LESSON), as_version=4)
    return "\n".join(str(output.get("text", "")) + str(output.get("evalue", ""))
                     for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.mark.parametrize("case", [*ABUSE, *COPY_PASTED, "reads-hidden-tests"])
def test_abuse_costs_only_the_points_of_the_abused_exercise(case):
    scores, failing = abused()[case], ABUSE[case][1] if case in ABUSE else set()
    assert set(scores) == {"test_soft_targets", "test_class_similarity", "test_entropy"}, scores
    for name, (score, maximum) in scores.items():
        assert score == (0 if name in failing else maximum), (case, scores)


@pytest.mark.parametrize("case", ["answer-warns-on-stderr", "kernel-dies", "interrupt-swallowed",
                                  "redefined-checks", "input-transformer", "replaced-reference", *COPY_PASTED])
def test_the_feedback_says_what_the_grader_did(case):
    """A restart, a restored helper or an ignored copy is named in the learner's feedback; an honest answer's
    warning is kept (on stdout) and nothing is restored for it."""
    abused()
    shown = outputs(course_root(LESSON, "abuse"), case)
    expected = {"answer-warns-on-stderr": "UserWarning", "kernel-dies": "the kernel died",
                "interrupt-swallowed": "did not stop when interrupted", "redefined-checks": "check_close",
                "input-transformer": "get_ipython().input_transformers_post",
                "replaced-reference": "kdlib.soft_targets"}.get(case, "")
    assert expected in shown, (case, shown)
    assert ("grader: before this test, put back" in shown) == (case in {"redefined-checks", "input-transformer",
                                                                        "replaced-reference"}), (case, shown)


def test_without_the_sandbox_the_kernel_reads_the_hidden_tests():
    """Why the sandbox below matters: graded as the instructor, learner code reads solutions/."""
    abused()
    assert "BEGIN HIDDEN TESTS" in outputs(course_root(LESSON, "abuse"), "reads-hidden-tests")


# ---- the tamper scan --------------------------------------------------------------------------------------------

@cache
def scanned():
    abused()
    found = grading.scan(course_root(LESSON, "abuse") / "submitted")
    return {path.split("/")[0]: cells for path, cells in found.items()}


@pytest.mark.parametrize("case", [*ABUSE, *COPY_PASTED, "reads-hidden-tests"])
def test_the_scan_names_every_trick_and_nothing_else(case):
    expected = ABUSE[case][2] if case in ABUSE else {"class_similarity": {"uses open", "imports sqlite3"}} \
        if case == "reads-hidden-tests" else {}
    found = scanned().get(case, {})
    assert set(found) == set(expected), (case, found)
    for cell, words in expected.items():
        assert all(word in "; ".join(found[cell]) for word in words), (case, found)


@pytest.mark.parametrize("folder", ["solutions", "course"])
def test_the_scan_finds_nothing_in_the_lessons(folder):
    assert grading.scan(ROOT / folder) == {}


def test_the_scan_command_lists_findings_and_fails():
    abused()
    submitted = course_root(LESSON, "abuse") / "submitted"
    result = subprocess.run([sys.executable, str(ROOT / "grading.py"), "scan", str(submitted)],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert f"patched-allclose/{LESSON}/{LESSON}.ipynb  soft_targets: assigns torch.allclose" in result.stdout
    clean = subprocess.run([sys.executable, str(ROOT / "grading.py"), "scan", str(ROOT / "solutions")],
                           capture_output=True, text=True)
    assert (clean.returncode, clean.stdout.strip()) == (0, f"nothing found under {ROOT / 'solutions'}")


# ---- the sandbox: kernels as another user ------------------------------------------------------------------------

GRADER_USER = "kdlib-grader"


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox runs grading kernels as another system user: needs root")
def test_a_sandboxed_kernel_cannot_read_the_hidden_tests_or_rewrite_the_gradebook():
    from test_classroom import user_venv  # this Python may be private to root (pyenv): one every user can run

    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", GRADER_USER],
                   capture_output=True)  # exit code 9: it exists already
    root, outside = course_root(LESSON, "sandbox"), Path(tempfile.mkdtemp(prefix="kdlib-grader-python-"))
    outside.chmod(0o755)  # the course folder is private (mode 700); the kernel's Python is not
    sandbox = (f"--SandboxKernelManager.user={GRADER_USER}",
               f"--SandboxKernelManager.python={user_venv(outside) / 'bin' / 'python'}")
    scores = autograde(root, LESSON, {"thief": thief(root, write=True)}, *sandbox)["thief"]
    assert all(score == maximum for score, maximum in scores.values()), scores
    shown = outputs(root, "thief")
    assert "HIDDEN" not in shown and "gradebook rewritten" not in shown, shown
    assert "read: PermissionError" in shown and "read: FileNotFoundError" in shown and "write: unable to open" in shown
    scores = autograde(root, LESSON, {"next": graded_only(LESSON, class_similarity=WRONG_SIMILARITY)}, *sandbox)["next"]
    assert scores["test_class_similarity"] == (0, 2), scores
    shutil.rmtree(outside)
