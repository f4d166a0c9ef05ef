"""`nbgrader zip_collect` for submissions downloaded from Moodle or Canvas.

An LMS names each submitted file after its own ids, not the learner's username, and Canvas renames
a resubmission `01_soft_targets-1.ipynb`. `LMSCollector` reads the LMS id from the file name, turns
it into the username through a two-column CSV (`lms_id,username`) and drops Canvas's `-N` suffix.

    # in the course folder, with this folder on PYTHONPATH (e.g. PYTHONPATH=/opt/kdlib/deploy)
    mkdir -p downloaded/01_soft_targets/archive && cp ~/Downloads/*.zip downloaded/01_soft_targets/archive/
    nbgrader zip_collect 01_soft_targets --ZipCollectApp.collector_plugin=lms_collectors.LMSCollector \
        --LMSCollector.lms=canvas --LMSCollector.student_map=canvas_students.csv
    nbgrader autograde 01_soft_targets

What the downloads look like, and where the ids of the map come from:

- Moodle, Assignment > "Download all submissions": a zip with one folder per learner,
  `Ada Lovelace_1001_assignsubmission_file_/01_soft_targets.ipynb` (or, without "Download
  submissions in folders", the flat `Ada Lovelace_1001_assignsubmission_file_01_soft_targets.ipynb`).
  The id is the participant number (1001); "Download grading worksheet" lists it as "Participant 1001"
  beside each learner's name and email.
- Canvas, Assignment > "Download Submissions": a zip of flat files
  `lovelaceada_2001_9001_01_soft_targets.ipynb`, `lovelaceada_LATE_2001_9002_01_soft_targets-1.ipynb`.
  The id is the Canvas user id (2001): the "ID" column of the gradebook's CSV export, beside "SIS Login ID".
"""
import csv
import re
from pathlib import Path

from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Enum, Unicode

PATTERNS = {
    # .../<Full name>_<participant>_assignsubmission_file_[/]<notebook>.ipynb
    "moodle": r".*/[^/]*?_(?P<lms_id>\d+)_assign(?:submission|feedback)_[a-z]+_/?(?P<file_id>[^/]+)\.ipynb$",
    # .../<sortablename>_[LATE_]<user id>_<submission id>_<notebook>[-N].ipynb
    "canvas": r".*/[^/_]+_(?:LATE_)?(?P<lms_id>\d+)_\d+_(?P<file_id>[^/]+?)(?:-\d+)?\.ipynb$",
}


class LMSCollector(FileNameCollectorPlugin):
    """FileNameCollectorPlugin that maps an LMS's ids to usernames."""

    lms = Enum(["moodle", "canvas"], default_value=None, allow_none=True,
               help="Use the file-name pattern of this LMS (else named_regexp, with an lms_id group)").tag(config=True)
    student_map = Unicode("", help="CSV file with a header line and the columns lms_id,username").tag(config=True)

    def _usernames(self):
        if not hasattr(self, "_map"):
            with open(Path(self.student_map), newline="", encoding="utf-8") as f:
                self._map = {row["lms_id"].strip(): row["username"].strip() for row in csv.DictReader(f)}
        return self._map

    def collect(self, submitted_file):
        if self.lms:
            self.named_regexp = PATTERNS[self.lms]
        info = super().collect(submitted_file)
        if not info:
            return None
        lms_id = info.pop("lms_id", None)
        if lms_id is not None:
            username = self._usernames().get(lms_id)
            if username is None:
                self.log.warning("LMS id %s is not in %s: skipped %s", lms_id, self.student_map, submitted_file)
                return None
            info["student_id"] = username
        info["file_id"] = re.sub(r"-\d+$", "", info["file_id"])  # Canvas: 01_soft_targets-1 -> 01_soft_targets
        return {key: value for key, value in info.items() if value is not None}
