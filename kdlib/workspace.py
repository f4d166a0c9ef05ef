"""The learner's own copy of course/: updates bring new lessons and never touch edited notebooks.

    python -m kdlib.workspace course workspace     (what `make lab` runs before starting JupyterLab)

A manifest in the workspace remembers the hash of each file as it was released. A file whose
hash still matches was not edited, so a newer release may replace it; an edited file is kept as
it is, and the report says a newer version exists.
"""
import hashlib
import json
import shutil
import sys
from pathlib import Path

MANIFEST = ".kdlib-released.json"


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync_workspace(course_dir, workspace_dir):
    """Copy course_dir into workspace_dir; returns {"added", "updated", "kept_edited"} lists of paths."""
    course_dir, workspace_dir = Path(course_dir), Path(workspace_dir)
    if not course_dir.is_dir():
        raise ValueError(f"course folder {course_dir} does not exist; run this from the project root")
    manifest_path = workspace_dir / MANIFEST
    released = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    report = {"added": [], "updated": [], "kept_edited": []}
    for source in sorted(course_dir.rglob("*")):
        relative = source.relative_to(course_dir)
        if not source.is_file() or ".ipynb_checkpoints" in relative.parts:
            continue
        key, target, new_hash = relative.as_posix(), workspace_dir / relative, _sha256(source)
        if target.exists():
            current = _sha256(target)
            if current == new_hash:
                continue
            if current != released.get(key):  # the learner changed it: never overwrite
                report["kept_edited"].append(key)
                continue
            report["updated"].append(key)
        else:
            report["added"].append(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        released[key] = new_hash
    workspace_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(released, indent=1, sort_keys=True), encoding="utf-8")
    return report


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: python -m kdlib.workspace COURSE_DIR WORKSPACE_DIR")
    report = sync_workspace(*argv)
    for key in report["added"]:
        print(f"new lesson: {key}")
    for key in report["updated"]:
        print(f"updated (you had not edited it): {key}")
    for key in report["kept_edited"]:
        print(f"kept your edited {key}; a newer version is in {Path(argv[0]) / key}")


if __name__ == "__main__":
    main(sys.argv[1:])
