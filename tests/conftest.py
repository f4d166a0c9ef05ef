from datetime import datetime

import nbformat
import pytest
import torch
from xdist.scheduler import LoadFileScheduling

from kdlib import data

# Bit-identical runs need a fixed thread count; one thread is also the fastest for these tiny models.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, split 60/20/20 with seed 0: the offline data every quick test trains on."""
    return data.load_splits("digits", seed=0)



class LessonScheduling(LoadFileScheduling):
    """`--dist loadfile`, except that test_course.py is one work unit per lesson: the grader proofs of a lesson
    share one autograde run (cached per worker), and the ten lessons' runs are the suite's longest unit, so
    whole-file scheduling left them on one worker. Scopes are read from node ids, not from markers (xdist's
    loadgroup cannot tag tests under pytest 9). Lesson ids start with the lesson number: "05_teacher…", "05-…"."""

    def __init__(self, config, log=None):
        super().__init__(config, log)
        config.option.loadscopereorder = False  # keep the order of pytest_collection_modifyitems: longest first

    def _split_scope(self, nodeid):
        path, _, test = nodeid.partition("::")
        if path.endswith("test_course.py") and "[" in test:
            return f"{path}::{test.split('[', 1)[1][:2]}"
        return path


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadfile":
        return LessonScheduling(config, log)


HEAVY = ("tests/test_browser.py", "tests/test_classroom.py", "tests/test_course.py", "tests/test_grader_integrity.py")


def recorded_seconds(path):
    """How long a stored notebook's last run took, cell by cell (nbclient's execution timestamps; 0 if none)."""
    seconds = 0.0
    for cell in nbformat.read(path, as_version=4).cells:
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                          for key in ("iopub.execute_input", "shell.execute_reply"))
            seconds += (end - start).total_seconds()
    return seconds


def pytest_collection_modifyitems(config, items):
    """Longest work first, so that at the end both workers finish small tests rather than one of them waiting
    for a notebook: the solution notebooks by their last recorded run (nbval), then the grader, classroom and
    browser tests, then the rest in collection order (a stable sort)."""
    notebooks = {item.path for item in items if item.path.suffix == ".ipynb"}
    seconds = {path: recorded_seconds(path) for path in notebooks}

    def rank(item):
        if item.path in seconds:
            return 0, -seconds[item.path]
        return (1, 0) if item.nodeid.startswith(HEAVY) else (2, 0)

    items.sort(key=rank)
