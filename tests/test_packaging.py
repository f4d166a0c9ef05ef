"""environment.yml (conda) and pyproject.toml (pip) must ask for the same packages and versions."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name → PyPI name


def split_requirement(text):
    """'torch>=2.2' → ('torch', '>=2.2'); names lower-cased, spaces dropped."""
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)(.*)$", text.replace(" ", "")).groups()
    return name.lower(), spec


def pip_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in ("course", "test"):
        wanted += [r for r in project["optional-dependencies"][extra] if not r.startswith("kdlib")]
    return dict(split_requirement(r) for r in wanted), project["requires-python"]


def conda_requirements():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    found, python = {}, None
    for entry in environment["dependencies"]:
        if isinstance(entry, dict) or entry == "pip":
            continue
        name, spec = split_requirement(entry)
        if name == "python":
            python = spec
        else:
            found[CONDA_NAMES.get(name, name)] = spec
    return found, python


def test_environment_yml_matches_pyproject():
    pip, pip_python = pip_requirements()
    conda, conda_python = conda_requirements()
    assert conda == pip, f"only in pyproject: {set(pip.items()) - set(conda.items())}; " \
                         f"only in environment.yml: {set(conda.items()) - set(pip.items())}"
    assert conda_python == pip_python


def test_torch_is_a_range_not_a_pin():
    pip, _ = pip_requirements()
    assert pip["torch"].startswith(">=") and "==" not in pip["torch"]
