"""Malformed calls across kdlib's public API: each raises the right error, naming what was expected and what came.

The tables live in tests/bad_calls/, one per module (or group of core modules); every kdlib module is covered.
"""
import pkgutil

import pytest

import kdlib
from bad_calls import BAD_CALLS, TABLES
from kdlib import data


@pytest.mark.parametrize("name, call, error, fragment", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_malformed_call_raises_a_message_naming_expected_and_actual(name, call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), str(info.value)


def test_a_wrong_data_folder_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load_mnist(tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path) in message and "download=True" in message


CORE = {"arguments", "checks", "data", "devices", "losses", "metrics", "models", "plots", "training", "workspace"}


def test_every_method_module_has_its_own_table_and_the_core_is_covered():
    modules = {m.name for m in pkgutil.iter_modules(kdlib.__path__)}
    assert modules - CORE <= set(TABLES), f"modules without a bad-input table: {sorted(modules - CORE - set(TABLES))}"
    assert len(TABLES["core"]) >= 40
    assert all(len(rows) >= 8 for rows in TABLES.values()), {name: len(rows) for name, rows in TABLES.items()}
