import pytest
import torch

from kdlib import data

# Bit-identical runs need a fixed thread count; one thread is also the fastest for these tiny models.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, split 60/20/20 with seed 0: the offline data every quick test trains on."""
    return data.load_splits("digits", seed=0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """`make test` runs `--dist loadgroup`: a test without its own xdist_group stays with its file (nbval needs a
    notebook's cells in one kernel, in order); the grader proofs group themselves by lesson."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
