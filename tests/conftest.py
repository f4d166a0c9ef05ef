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

    def _split_scope(self, nodeid):
        path, _, test = nodeid.partition("::")
        if path.endswith("test_course.py") and "[" in test:
            return f"{path}::{test.split('[', 1)[1][:2]}"
        return path


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadfile":
        return LessonScheduling(config, log)
