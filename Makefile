# Set-up and entry points. `make lab` starts the course; `make test` runs the whole suite.
# Both create .venv on first use and update it when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extra requirement installed before kdlib, e.g. TORCH_REQUIREMENT=torch==2.13.0 for a CPU build.
TORCH_REQUIREMENT ?=
# JupyterLab refuses to run as root unless told to (containers, CI).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# nbgrader runs `alembic` and `jupyter` by name: the venv must come first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: lab test release clean

$(VENV)/.course: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_REQUIREMENT),$(BIN)/python -m pip install --quiet "$(TORCH_REQUIREMENT)")
	$(BIN)/python -m pip install --quiet -e ".[course]"
	touch $@

$(VENV)/.test: $(VENV)/.course
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# Learners work in workspace/, their own copy of course/: new lessons are added, edited ones never overwritten.
lab: $(VENV)/.course
	$(BIN)/python -m kdlib.workspace course workspace
	$(BIN)/jupyter lab $(ALLOW_ROOT) --notebook-dir=workspace

# Two pytest workers, one file each at a time (nbval needs a notebook's cells together), except that the grader
# proofs of tests/test_course.py go one lesson at a time (tests/conftest.py). Not `--dist loadgroup`: with pytest 9
# xdist 3.8 cannot tag a test with its group, so groups are silently split. WORKERS=0 runs everything in one
# process; --durations lists the slowest tests.
WORKERS ?= 2
test: $(VENV)/.test
	$(BIN)/python -m pytest $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile --durations=15)

# Instructors: regenerate course/ from solutions/ after editing a solution notebook.
release: $(VENV)/.course
	for dir in solutions/*/; do $(BIN)/nbgrader generate_assignment "$$(basename $$dir)" --force; done
	rm -f gradebook.db

clean:
	rm -rf $(VENV)
