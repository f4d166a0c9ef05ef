import pytest
import torch

from kdlib import data

# Bit-identical runs need a fixed thread count; one thread is also the fastest for these tiny models.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, split 60/20/20 with seed 0: the offline data every quick test trains on."""
    return data.load_splits("digits", seed=0)

