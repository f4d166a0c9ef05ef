"""A learner's edited notebooks survive every course update (kdlib.workspace, run by `make lab`)."""
import subprocess
import sys

import pytest

from kdlib.workspace import sync_workspace


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_update_adds_new_lessons_and_never_touches_edited_ones(tmp_path):
    course, workspace = tmp_path / "course", tmp_path / "workspace"
    write(course / "01" / "01.ipynb", "release 1 of lesson 01")
    write(course / "02" / "02.ipynb", "release 1 of lesson 02")
    assert sync_workspace(course, workspace)["added"] == ["01/01.ipynb", "02/02.ipynb"]

    write(workspace / "01" / "01.ipynb", "the learner's answers")          # edited by the learner
    write(course / "01" / "01.ipynb", "release 2 of lesson 01")            # both lessons re-released
    write(course / "02" / "02.ipynb", "release 2 of lesson 02")
    write(course / "03" / "03.ipynb", "release 1 of lesson 03")            # and a new one
    report = sync_workspace(course, workspace)

    assert report == {"added": ["03/03.ipynb"], "updated": ["02/02.ipynb"], "kept_edited": ["01/01.ipynb"]}
    assert (workspace / "01" / "01.ipynb").read_text() == "the learner's answers"
    assert (workspace / "02" / "02.ipynb").read_text() == "release 2 of lesson 02"
    assert (workspace / "03" / "03.ipynb").read_text() == "release 1 of lesson 03"
    # nothing changes on a second run, and the edited notebook is still reported as kept
    assert sync_workspace(course, workspace) == {"added": [], "updated": [], "kept_edited": ["01/01.ipynb"]}


def test_a_deleted_notebook_comes_back(tmp_path):
    course, workspace = tmp_path / "course", tmp_path / "workspace"
    write(course / "01" / "01.ipynb", "release 1")
    sync_workspace(course, workspace)
    (workspace / "01" / "01.ipynb").unlink()
    assert sync_workspace(course, workspace)["added"] == ["01/01.ipynb"]


def test_command_line_reports_and_missing_course_folder_is_an_error(tmp_path):
    course, workspace = tmp_path / "course", tmp_path / "workspace"
    write(course / "01" / "01.ipynb", "release 1")
    result = subprocess.run([sys.executable, "-m", "kdlib.workspace", str(course), str(workspace)],
                            capture_output=True, text=True, check=True)
    assert "new lesson: 01/01.ipynb" in result.stdout
    with pytest.raises(ValueError, match="does not exist"):
        sync_workspace(tmp_path / "nowhere", workspace)
