"""A class on one machine, as deploy/ sets it up: JupyterHub, real users, the whole nbgrader cycle.

The hub runs deploy/jupyterhub_config.py on 127.0.0.1 with its state, exchange and homes in a fresh
temporary folder. deploy/classroom.py creates an instructor and three students as system users
(unique names, removed at the end). Then the term of one lesson:

- the instructor generates and releases lesson 01 (nbgrader, as that OS user, in a shell);
- students 1 and 2 fetch and submit through the Assignments list of their own hub-spawned servers
  (the HTTP calls the Assignments tab makes): a solved notebook and an untouched one; student 3
  does it from a terminal with the nbgrader command line: a broken notebook;
- the instructor collects; root autogrades in the sandbox (kernels as kdlib-grader); the instructor
  generates and releases feedback; the students fetch it;
- `nbgrader export` writes the grades CSV, whose scores are checked per student.

Also: homes are private, students' servers have no Formgrader (404) while the instructor's has it,
kernels run one thread each, the idle culler runs as a hub service, and in headless Chromium a
student who logs in through the hub's login page sees the Assignments list and no Formgrader.

Skipped, with the reason, where it cannot run: not root, no useradd/runuser, JupyterHub, the idle
culler or configurable-http-proxy missing. User servers run from a venv that other users can read,
with this project's packages (hard-linked into the temporary folder where they sit under /root).
`nbgrader zip_collect` of a Moodle and a Canvas download (deploy/lms_collectors.py) needs none of
that and runs everywhere.
"""
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ARTEFACTS = ROOT / "tests" / "artefacts"
LESSON = "01_soft_targets"
NOTEBOOK = f"{LESSON}.ipynb"
CHP = shutil.which("configurable-http-proxy")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RUNUSER = shutil.which("runuser") or "runuser"
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


# ---- the learners' notebooks ---------------------------------------------------------------------

def points():
    """Points of each graded test cell of the lesson, from the solution's nbgrader metadata."""
    solution = nbformat.read(ROOT / "solutions" / LESSON / NOTEBOOK, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in solution.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def answered(notebook, **sources):
    """``notebook`` (a learner's copy) with its solution cells replaced: by the solution's code, or by ``sources``."""
    solution = nbformat.read(ROOT / "solutions" / LESSON / NOTEBOOK, as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: re.sub(r"\s*### (BEGIN|END) SOLUTION", "", c.source)
               for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
    answers.update(sources)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return notebook


BROKEN = {"class_similarity": "def class_similarity(probabilities, labels, classes:\n    return probabilities"}


# ---- LMS route: zip_collect of Moodle and Canvas downloads (no root needed) -----------------------

def nbgrader(*args, cwd, env=None):
    bin_dir = str(Path(sys.executable).parent)
    env = dict(env or os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("lms, files, mapping", [
    ("moodle", {"Ada Lovelace_1001_assignsubmission_file_/01_soft_targets.ipynb": "solved",
                "Alan Turing_1002_assignsubmission_file_/01_soft_targets.ipynb": "untouched",
                "Alan Turing_1002_assignsubmission_file_/notes.txt": None,
                "Grace Hopper_1003_assignsubmission_file_01_soft_targets.ipynb": "broken"},  # a flat download
     {"1001": "ada", "1002": "alan", "1003": "grace"}),
    ("canvas", {"lovelaceada_2001_9001_01_soft_targets.ipynb": "solved",
                "turingalan_LATE_2002_9002_01_soft_targets-1.ipynb": "untouched",  # a late resubmission
                "hoppergrace_2003_9003_01_soft_targets.ipynb": "broken",
                "strangerdanger_2999_9999_01_soft_targets.ipynb": "solved"},  # not on the class list: skipped
     {"2001": "ada", "2002": "alan", "2003": "grace"}),
])
def test_zip_collect_files_an_lms_download_under_each_username(tmp_path, lms, files, mapping):
    course = tmp_path / "course-root"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "course" / LESSON, course / "course" / LESSON)  # the release zip_collect checks names against
    released = nbformat.read(ROOT / "course" / LESSON / NOTEBOOK, as_version=4)
    versions = {"solved": answered(nbformat.from_dict(released)), "untouched": released,
                "broken": answered(nbformat.from_dict(released), **BROKEN)}
    archive = course / "downloaded" / LESSON / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / f"{lms}-download.zip", "w") as download:
        for name, version in files.items():
            download.writestr(name, nbformat.writes(versions[version]) if version else "my notes")
    (course / "students.csv").write_text("lms_id,username\n" + "".join(f"{k},{v}\n" for k, v in mapping.items()))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(DEPLOY), os.environ.get("PYTHONPATH")])))
    nbgrader("zip_collect", LESSON, "--ZipCollectApp.collector_plugin=lms_collectors.LMSCollector",
             f"--LMSCollector.lms={lms}", "--LMSCollector.student_map=students.csv", cwd=course, env=env)

    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "alan", "grace"]
    expected = {"ada": "solved", "alan": "untouched", "grace": "broken"}
    for student, version in expected.items():
        files_of_student = sorted(p.name for p in (submitted / student / LESSON).iterdir())
        assert files_of_student == [NOTEBOOK], (student, files_of_student)
        collected = nbformat.read(submitted / student / LESSON / NOTEBOOK, as_version=4)
        assert [c.source for c in collected.cells] == [c.source for c in versions[version].cells], student


# ---- the classroom on one machine (root) ---------------------------------------------------------

def readable_by_all(path):
    """True when any user can read ``path`` (and traverse every folder above it)."""
    path = Path(path).resolve()
    if not path.exists() or not path.stat().st_mode & stat.S_IROTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in [path, *path.parents] if parent.is_dir())


def python_for_everyone(tmp):
    """This Python, runnable by other users: itself where they can read it, else a copy of it (hard links
    where possible) whose library search path is relative ($ORIGIN) instead of inside a private folder
    such as /root/.pyenv. (Debian's own python3.11 is 3.11.2, too old for the project's soupsieve.)"""
    base = Path(sys.base_prefix)
    if readable_by_all(base / "bin" / PY) and readable_by_all(base / "lib" / PY):
        return base / "bin" / PY

    def link(source, target):
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    copy = tmp / "python"
    shutil.copytree(base, copy, symlinks=True, copy_function=link,
                    ignore=lambda folder, names: {"site-packages", "test"} & set(names) if Path(folder).name == PY else ())
    binary = copy / "bin" / PY
    data = binary.resolve().read_bytes()
    private = str(base / "lib").encode() + b"\0"
    if data.count(private) == 1 and len(private) >= len(b"$ORIGIN/../lib\0"):
        data = data.replace(private, b"$ORIGIN/../lib".ljust(len(private), b"\0"))
    binary.unlink()
    binary.write_bytes(data)
    binary.chmod(0o755)
    return binary


def skip_reason():
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (it creates system users and runs JupyterHub's LocalProcessSpawner)"
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "usermod", "runuser", "chpasswd"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    try:
        import jupyterhub  # noqa: F401
        import jupyterhub_idle_culler  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install -e '.[classroom]')"
    if CHP is None:
        return "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_venv(tmp):
    """A venv that every user can run, with this project's packages: a readable Python, and the project
    venv's site-packages added by a .pth file (or, where other users cannot read them, a hard-linked copy)."""
    venv = tmp / "venv"
    subprocess.run([str(python_for_everyone(tmp)), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(sysconfig.get_paths()["purelib"])
    prefix, source = Path(sys.prefix), ROOT / "kdlib"
    extra_paths = []
    if not (readable_by_all(site) and readable_by_all(prefix / "share" / "jupyter") and readable_by_all(source)):
        copy = tmp / "project-venv"
        for part in ("lib", "share", "etc"):
            if (prefix / part).exists():
                (copy / part).parent.mkdir(parents=True, exist_ok=True)
                if subprocess.run(["cp", "-al", str(prefix / part), str(copy / part)]).returncode != 0:
                    shutil.rmtree(copy / part, ignore_errors=True)
                    subprocess.run(["cp", "-a", str(prefix / part), str(copy / part)], check=True)
        site, prefix = copy / site.relative_to(sys.prefix), copy
        shutil.copytree(source, tmp / "src" / "kdlib")  # kdlib is installed in editable mode
        extra_paths.append(str(tmp / "src"))
    pth = "".join(f"{p}\n" for p in extra_paths) + f"import site; site.addsitedir({str(site)!r})\n"
    (venv / "lib" / PY / "site-packages" / "kdlib-project.pth").write_text(pth)
    for part in ("share", "etc"):
        if (prefix / part).exists():
            (venv / part).symlink_to(prefix / part)
    for script in Path(sys.prefix, "bin").iterdir():  # console scripts, with this venv's python
        target = venv / "bin" / script.name
        if target.exists() or not script.is_file():
            continue
        head = script.read_bytes()[:200]
        if head.startswith(b"#!") and b"python" in head.split(b"\n")[0]:
            body = script.read_text().split("\n", 1)[1]
            target.write_text(f"#!{venv / 'bin' / 'python'}\n{body}")
            target.chmod(0o755)
    return venv


# The hub's parent: a child subreaper, so that the proxy and user servers the hub leaves behind
# are this process's children, killed and reaped here (no zombies), whatever state the hub ends in.
REAPER = r"""
import ctypes, os, signal, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
hub = subprocess.Popen(sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *_: hub.terminate())
hub.wait()

def children():
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return found

deadline = time.monotonic() + 15
while True:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        if time.monotonic() > deadline:
            for child in children():
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.1)
sys.exit(hub.returncode)
"""


def pids_of(uids):
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid in uids:
                found.append(int(entry))
        except OSError:
            pass
    return found


class Classroom:
    """The hub, its users and helpers to act as them. Built by the ``classroom`` fixture."""

    def __init__(self, tmp):
        self.tmp = tmp
        tag = secrets.token_hex(3)
        self.instructor = f"kdt{tag}-teacher"
        self.students = [f"kdt{tag}-s{i}" for i in (1, 2, 3)]
        self.groups = {"KDLIB_STUDENTS_GROUP": f"kdt{tag}-students", "KDLIB_INSTRUCTORS_GROUP": f"kdt{tag}-teachers"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.exchange = tmp / "exchange"
        self.homes = tmp / "home"
        self.hub = None
        self.log = tmp / "hub.log"

    # -- environment as the deployed hub gives it to user servers
    def env(self, user, student=True):
        import pwd
        entry = pwd.getpwnam(user)
        folders = [str(DEPLOY / "jupyter-config")]
        if student:
            folders.insert(0, str(DEPLOY / "student-config"))
        return {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
                "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                "JUPYTER_CONFIG_PATH": os.pathsep.join(folders), "KDLIB_COURSE_ID": "kdlib-test",
                "KDLIB_EXCHANGE": str(self.exchange)}

    def as_user(self, user, *command, student=True, cwd=None, check=True, timeout=300):
        import pwd
        result = subprocess.run([RUNUSER, "-u", user, "--", *command], env=self.env(user, student),
                                cwd=cwd or pwd.getpwnam(user).pw_dir, capture_output=True, text=True,
                                timeout=timeout)
        if check:
            assert result.returncode == 0, f"{user}: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def instructor_nbgrader(self, *args):
        return self.as_user(self.instructor, str(self.venv / "bin" / "nbgrader"), *args, student=False,
                            cwd=self.course, timeout=900)  # autograde: three runs of the lesson

    def autograde_in_sandbox(self):
        """What docs/instructors.md has root run: autograde with every kernel as kdlib-grader (made by
        classroom.py add-instructor), then the course folder back to the instructor."""
        env = dict(self.env(self.instructor, student=False), HOME=str(self.tmp))
        result = subprocess.run([str(self.venv / "bin" / "nbgrader"), "autograde", LESSON,
                                 "--SandboxKernelManager.user=kdlib-grader"], env=env, cwd=self.course,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"sandboxed autograde failed:\n{result.stdout}\n{result.stderr}"
        subprocess.run(["chown", "-R", f"{self.instructor}:", str(self.course)], check=True)

    # -- the hub's REST API and the users' servers, with the test's service token
    def request(self, path, method="GET", data=None, form=None, timeout=120):
        body, headers = None, {"Authorization": f"token {self.token}"}
        if data is not None:
            body, headers["Content-Type"] = json.dumps(data).encode(), "application/json"
        if form is not None:
            body, headers["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text.strip()[:1] in ("{", "[") else text)

    def status(self, path):
        try:
            return self.request(path)[0]
        except urllib.error.HTTPError as error:
            return error.code

    def assignments(self, student, action):
        """What the Assignments tab does: POST /user/<name>/assignments/<action>."""
        _, answer = self.request(f"/user/{student}/assignments/{action}", method="POST",
                                 form={"course_id": "kdlib-test", "assignment_id": LESSON})
        assert isinstance(answer, dict) and answer.get("success"), f"{student} {action}: {answer}"
        return answer["value"]

    def tail(self):
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else "(no hub log)"

    # -- set-up and tear-down
    def start(self):
        clock = time.monotonic()
        self.tmp.chmod(0o755)
        self.venv = user_venv(self.tmp)
        print(f"user venv in {time.monotonic() - clock:.1f} s")
        self.homes.mkdir(mode=0o755)
        self.exchange.mkdir()
        self.exchange.chmod(0o1777)
        classroom = [str(self.venv / "bin" / "python"), str(DEPLOY / "classroom.py"), "--home-base", str(self.homes)]
        def run(*args):
            result = subprocess.run([*classroom, *args], env=dict(os.environ, **self.groups),  # the groups' names
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"classroom.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
            return result.stdout

        printed = run("add-instructor", self.instructor, "--repo", str(ROOT))
        instructor_password = re.search(rf"password for {self.instructor}: (\S+)", printed).group(1)
        class_list = self.tmp / "classlist.csv"
        class_list.write_text("username,first_name,last_name,email\n" + "".join(
            f"{name},Learner,{name[-2:].upper()},{name}@example.org\n" for name in self.students))
        run("add-students", str(class_list), "--instructor", self.instructor)
        self.passwords = dict(line.split(",", 1) for line in (self.tmp / "passwords.csv").read_text().split())
        self.passwords[self.instructor] = instructor_password
        import pwd
        self.course = Path(pwd.getpwnam(self.instructor).pw_dir) / "kdlib-course"
        probe = self.as_user(self.instructor, str(self.venv / "bin" / "python"), "-c",
                             "import jupyterhub, soupsieve", check=False)
        assert probe.returncode == 0, f"other users cannot run the course's Python:\n{probe.stderr}"

        print(f"users and gradebook in {time.monotonic() - clock:.1f} s")
        extra = self.tmp / "test_hub_config.py"
        extra.write_text(
            "c = get_config()\n"
            f"c.JupyterHub.services.append({{'name': 'kdlib-test', 'api_token': {self.token!r}}})\n"
            "c.JupyterHub.load_roles.append({'name': 'kdlib-test', 'services': ['kdlib-test'], 'scopes': "
            "['admin:users', 'admin:servers', 'access:servers', 'list:users', 'read:users', 'list:services', 'read:services']})\n")
        env = dict(os.environ, **self.groups, KDLIB_HUB_IP="127.0.0.1", KDLIB_HUB_PORT=str(self.port),
                   KDLIB_HUB_API_PORT=str(free_port()), KDLIB_PROXY_API_PORT=str(free_port()),
                   KDLIB_HUB_STATE=str(self.tmp / "state"), KDLIB_VENV=str(self.venv), KDLIB_COURSE_ID="kdlib-test",
                   KDLIB_EXCHANGE=str(self.exchange), KDLIB_HUB_EXTRA_CONFIG=str(extra),
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), str(Path(CHP).parent), os.environ["PATH"]]))
        env.pop("KDLIB_SHARED_PASSWORD", None)  # the real login: PAM, with the passwords classroom.py set
        command = [sys.executable, "-c", REAPER, sys.executable, "-m", "jupyterhub", "-f",
                   str(DEPLOY / "jupyterhub_config.py")]
        with open(self.log, "wb") as log:
            self.hub = subprocess.Popen(command, cwd=self.tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.hub.poll() is not None:
                pytest.fail(f"the hub exited with {self.hub.returncode}:\n{self.tail()}")
            try:
                urllib.request.urlopen(self.url + "/hub/api/", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"the hub did not answer within 90 s:\n{self.tail()}")

    def start_servers(self):
        """Ask the hub for every user's server (they start while the instructor works)."""
        users = [self.instructor, *self.students]
        code, _ = self.request("/hub/api/users", method="POST", data={"usernames": users})  # as an admin would
        assert code == 201
        for user in users:
            code, _ = self.request(f"/hub/api/users/{user}/server", method="POST")
            assert code in (201, 202), (user, code)

    def wait_for_servers(self):
        users = [self.instructor, *self.students]
        deadline = time.monotonic() + 180
        waiting = set(users)
        while waiting and time.monotonic() < deadline:
            for user in sorted(waiting):
                _, model = self.request(f"/hub/api/users/{user}")
                if model["servers"].get("", {}).get("ready"):
                    waiting.discard(user)
            time.sleep(1)
        assert not waiting, f"servers not ready after 180 s: {waiting}\n{self.tail()}"

    def stop(self):
        import pwd
        if self.hub is not None and self.hub.poll() is None:
            self.hub.send_signal(signal.SIGTERM)  # the hub stops the user servers and the proxy
            try:
                self.hub.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.hub.pid, signal.SIGKILL)
                self.hub.wait(timeout=30)
        uids = set()
        for user in [self.instructor, *self.students]:
            try:
                uids.add(pwd.getpwnam(user).pw_uid)
            except KeyError:
                pass
        for _ in range(50):  # anything still running as the test's users (their uids are new, unique)
            pids = pids_of(uids)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        for user in [self.instructor, *self.students]:
            subprocess.run(["userdel", "--remove", user], capture_output=True)
        for group in self.groups.values():
            subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def classroom():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    room = Classroom(Path(tempfile.mkdtemp(prefix="kdlib-classroom-")))
    started = time.monotonic()
    try:
        room.start()
        print(f"classroom set up in {time.monotonic() - started:.1f} s")
        yield room
    except BaseException:
        print("hub log:\n" + room.tail())
        raise
    finally:
        started = time.monotonic()
        room.stop()
        print(f"classroom torn down in {time.monotonic() - started:.1f} s")


@pytest.fixture(scope="module")
def term(classroom):
    """One lesson's whole cycle; returns the grades CSV rows and the timings of each step."""
    room, timings = classroom, {}
    clock = time.monotonic()

    def lap(name):
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    room.start_servers()
    room.instructor_nbgrader("generate_assignment", LESSON, "--force")
    room.instructor_nbgrader("release_assignment", LESSON)
    lap("generate and release")
    room.wait_for_servers()
    lap("four user servers ready")

    solved, untouched, broken = room.students
    for student in (solved, untouched):  # through their servers' Assignments list
        listing = room.assignments(student, "fetch")
        assert [a["status"] for a in listing if a["assignment_id"] == LESSON] == ["fetched"], listing
    _, model = room.request(f"/user/{solved}/api/contents/{LESSON}/{NOTEBOOK}?content=1")
    notebook = answered(nbformat.from_dict(model["content"]))
    code, _ = room.request(f"/user/{solved}/api/contents/{LESSON}/{NOTEBOOK}", method="PUT",
                           data={"type": "notebook", "format": "json", "content": notebook})
    assert code == 200
    for student in (solved, untouched):
        room.assignments(student, "submit")
    # student 3 in a terminal: the command line, as that OS user
    nbgrader = str(room.venv / "bin" / "nbgrader")
    room.as_user(broken, nbgrader, "fetch_assignment", LESSON)
    path = Path(room.env(broken)["HOME"]) / LESSON / NOTEBOOK
    text = nbformat.writes(answered(nbformat.read(path, as_version=4), **BROKEN))
    subprocess.run([RUNUSER, "-u", broken, "--", "tee", str(path)], input=text, text=True,
                   stdout=subprocess.DEVNULL, check=True)
    room.as_user(broken, nbgrader, "submit", LESSON)
    lap("three students fetch and submit")

    room.instructor_nbgrader("collect", LESSON)
    lap("collect")
    room.autograde_in_sandbox()
    lap("autograde")
    room.instructor_nbgrader("generate_feedback", LESSON)
    room.instructor_nbgrader("release_feedback", LESSON)
    for student in (solved, untouched):
        room.assignments(student, "fetch_feedback")
    room.as_user(broken, nbgrader, "fetch_feedback", LESSON)
    lap("feedback")
    room.instructor_nbgrader("export", "--to", "grades.csv")
    lap("export")
    grades = list(csv.DictReader((room.course / "grades.csv").read_text().splitlines()))
    print("timings (s):", timings)
    print((room.course / "grades.csv").read_text())
    return grades, timings


def test_grades_csv_scores_the_solved_untouched_and_broken_notebooks(classroom, term):
    grades, _ = term
    maximum = sum(points().values())
    solved, untouched, broken = classroom.students
    expected = {solved: maximum, untouched: 0, broken: maximum - points()["test_class_similarity"]}
    scores = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in grades
              if row["assignment"] == LESSON}
    assert scores == {student: (score, maximum) for student, score in expected.items()}, grades


def test_each_student_fetched_feedback_with_their_score(classroom, term):
    for student in classroom.students:
        home = Path(classroom.env(student)["HOME"])
        feedback = list((home / LESSON / "feedback").glob(f"*/{LESSON}.html"))
        assert len(feedback) == 1, (student, feedback)
        assert "Score" in feedback[0].read_text(errors="replace")


def test_learners_homes_and_the_gradebook_are_private(classroom, term):
    first, second, _ = classroom.students
    home = Path(classroom.env(first)["HOME"])
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    denied = classroom.as_user(second, "ls", str(home / LESSON), check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    denied = classroom.as_user(second, "cat", str(classroom.course / "gradebook.db"), check=False)
    assert denied.returncode != 0


def test_students_servers_have_no_formgrader_and_the_instructors_has(classroom, term):
    for student in classroom.students:
        assert classroom.status(f"/user/{student}/formgrader") == 404
        assert classroom.status(f"/user/{student}/assignments?course_id=kdlib-test") == 200
    request = urllib.request.Request(f"{classroom.url}/user/{classroom.instructor}/formgrader",
                                     headers={"Authorization": f"token {classroom.token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
        # JupyterLab's Formgrader tab frames this page: its own server must allow that
        assert response.headers["Content-Security-Policy"].startswith("frame-ancestors 'self'")


def test_kernels_run_one_thread_and_the_idle_culler_runs(classroom, term):
    _, services = classroom.request("/hub/api/services")
    assert "idle-culler" in services, services
    student = classroom.students[0]
    _, kernel = classroom.request(f"/user/{student}/api/kernels", method="POST", data={"name": "python3"})
    try:
        import psutil
        kernels = [p for p in psutil.process_iter(["username", "cmdline", "environ"])
                   if p.info["username"] == student and "ipykernel_launcher" in " ".join(p.info["cmdline"] or [])]
        assert kernels and all(p.info["environ"].get("OMP_NUM_THREADS") == "1" for p in kernels)
    finally:
        classroom.request(f"/user/{student}/api/kernels/{kernel['id']}", method="DELETE")


# ---- in a real browser: what a student and the instructor see ---------------------------------------

@pytest.fixture(scope="module")
def browser(classroom):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def log_in(browser, room, user, then="lab"):
    """Log ``user`` in through the hub's login page, with the password classroom.py gave them; land on ``then``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{room.url}/hub/login?next=" + urllib.parse.quote(f"/user/{user}/{then}"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", room.passwords[user])
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(rf".*/user/{user}/{then}.*"), timeout=90_000)
    return context, page


def test_a_student_sees_the_assignments_list_and_no_formgrader(classroom, term, browser):
    ARTEFACTS.mkdir(exist_ok=True)
    student = classroom.students[0]
    context, page = log_in(browser, classroom, student)
    try:
        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click(timeout=90_000)
        labels = page.locator(".lm-Menu-itemLabel").all_inner_texts()
        assert "Assignment List" in labels and not any("Formgrader" in label for label in labels), labels
        page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
        page.locator("#submitted_assignments_list").get_by_text(LESSON).first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTEFACTS / "classroom-student-assignments.png"))
        assert page.goto(f"{classroom.url}/user/{student}/formgrader").status == 404
    finally:
        context.close()


def test_the_instructor_sees_the_formgrader(classroom, term, browser):
    context, page = log_in(browser, classroom, classroom.instructor, then="formgrader")
    try:
        page.get_by_text(LESSON).first.wait_for(timeout=60_000)
        assert page.get_by_text("Manage Assignments").count()
        page.screenshot(path=str(ARTEFACTS / "classroom-instructor-formgrader.png"))
    finally:
        context.close()
