"""Create and remove the system users of a kdlib class (run as root; Python standard library only).

    python3 deploy/classroom.py add-instructor teacher
    python3 deploy/classroom.py add-students classlist.csv --instructor teacher
    python3 deploy/classroom.py remove-users classlist.csv          # the end of the course

`add-instructor` makes the user (and prints a random password for them), puts them in the instructors'
group and gives them a course folder ~/kdlib-course with this repository's nbgrader_config.py, grading.py (the
course's grading, which the config loads) and solutions/ (the instructor notebooks). It also makes the system user
kdlib-grader (no home, no login), whom root's `nbgrader autograde --SandboxKernelManager.user=kdlib-grader` runs the
learners' code as: that user can read neither the instructor's home nor the gradebook in it.

`add-students` reads a class list, a CSV file with a header line and the columns
`username,first_name,last_name,email` (only `username` is required; a plain text file with one
username per line also works). Each student gets a user in the students' group, a home folder no one
else can read (mode 700) and a random password, written to passwords.csv beside the class list
(mode 600) for you to hand out, and is added to the instructor's gradebook. Users that exist
already are left as they are (their password too), so the command can be run again after adding lines.

Groups and the home folders' parent come from the same environment variables as the hub's config
(KDLIB_STUDENTS_GROUP, KDLIB_INSTRUCTORS_GROUP), or from the options.
"""
import argparse
import csv
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COURSE_FOLDER = "kdlib-course"
GRADER_USER = "kdlib-grader"  # grading kernels run as this user (see grading.SandboxKernelManager)


def run(*command, **kwargs):
    subprocess.run(command, check=True, **kwargs)


def ensure_group(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        run("groupadd", name)


def ensure_user(name, group, home_base):
    """Create ``name`` (home folder mode 700) unless it exists; put it in ``group``. True if created."""
    created = False
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        run("useradd", "--create-home", "--home-dir", str(Path(home_base) / name), "--shell", "/bin/bash",
            "--user-group", name)
        user, created = pwd.getpwnam(name), True
    run("usermod", "--append", "--groups", group, name)
    os.chmod(user.pw_dir, 0o700)  # useradd leaves 755 on many systems: other learners could read it
    return created


def set_random_password(name):
    password = "-".join(secrets.token_urlsafe(4) for _ in range(3))
    run("chpasswd", input=f"{name}:{password}\n", text=True)
    return password


def as_user(name, *command, cwd=None):
    """Run ``command`` as ``name`` with their own HOME, in ``cwd``."""
    user = pwd.getpwnam(name)
    env = {"HOME": user.pw_dir, "USER": name, "LOGNAME": name, "LANG": os.environ.get("LANG", "C.UTF-8"),
           "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"}
    for key in ("JUPYTER_CONFIG_PATH", "KDLIB_COURSE_ID", "KDLIB_EXCHANGE"):
        if key in os.environ:
            env[key] = os.environ[key]
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # the user's PATH below has no sbin
    return subprocess.run([runuser, "-u", name, "--", *command], cwd=cwd or user.pw_dir, env=env, check=True,
                          capture_output=True, text=True)


def read_class_list(path):
    """Rows of a class list: dicts with username and, where given, first_name, last_name, email."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if lines and "username" in lines[0].split(",")[0].strip().lower():
        rows = list(csv.DictReader(lines))
    else:
        rows = [{"username": line.split(",")[0]} for line in lines]
    for row in rows:
        row["username"] = row["username"].strip()
    return rows


def add_instructor(args):
    ensure_group(args.instructors_group)
    ensure_group(args.students_group)
    if ensure_user(args.name, args.instructors_group, args.home_base):
        print(f"password for {args.name}: {set_random_password(args.name)}  (change it with `passwd`)")
    user = pwd.getpwnam(args.name)
    course = Path(user.pw_dir) / COURSE_FOLDER
    if not course.exists():
        course.mkdir()
        for name in ("nbgrader_config.py", "grading.py"):
            shutil.copy(Path(args.repo) / name, course)
        shutil.copytree(Path(args.repo) / "solutions", course / "solutions",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    # Formgrader and every nbgrader command find the course wherever the instructor runs them
    config = Path(user.pw_dir) / ".jupyter" / "nbgrader_config.py"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f'c = get_config()  # noqa: F821\nc.CourseDirectory.root = "{course}"\n'
                      f'load_subconfig("{course / "nbgrader_config.py"}")  # noqa: F821\n', encoding="utf-8")
    run("chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(course), str(config.parent))
    try:
        pwd.getpwnam(GRADER_USER)
    except KeyError:
        run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", GRADER_USER)
    print(f"instructor {args.name}: course folder {course}")


def add_students(args):
    ensure_group(args.students_group)
    rows = read_class_list(args.class_list)
    passwords = {}
    for row in rows:
        if ensure_user(row["username"], args.students_group, args.home_base) and args.passwords:
            passwords[row["username"]] = set_random_password(row["username"])
    if passwords:
        out = Path(args.class_list).with_name("passwords.csv")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.writelines(f"{name},{password}\n" for name, password in passwords.items())
        print(f"{len(passwords)} new passwords appended to {out}")
    if args.instructor:  # one `nbgrader db student import` for the whole list
        instructor = pwd.getpwnam(args.instructor)
        course = Path(instructor.pw_dir) / COURSE_FOLDER
        listing = course / ".class-list-import.csv"
        with open(listing, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "first_name", "last_name", "email"])
            writer.writerows([row["username"], row.get("first_name") or "", row.get("last_name") or "",
                              row.get("email") or ""] for row in rows)
        os.chown(listing, instructor.pw_uid, instructor.pw_gid)
        try:
            as_user(args.instructor, str(Path(sys.executable).parent / "nbgrader"), "db", "student", "import",
                    str(listing), cwd=course)
        finally:
            listing.unlink()
    print(f"{len(rows)} students in group {args.students_group}")


def remove_users(args):
    names = [row["username"] for row in read_class_list(args.class_list)] if Path(args.class_list).exists() \
        else args.class_list.split(",")
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        run("userdel", *([] if args.keep_homes else ["--remove"]), name)
    print(f"removed {len(names)} users{' (homes kept)' if args.keep_homes else ''}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home-base", default="/home", help="parent of the new home folders (default /home)")
    parser.add_argument("--students-group", default=os.environ.get("KDLIB_STUDENTS_GROUP", "kdlib-students"))
    parser.add_argument("--instructors-group", default=os.environ.get("KDLIB_INSTRUCTORS_GROUP", "kdlib-instructors"))
    commands = parser.add_subparsers(dest="command", required=True)
    instructor = commands.add_parser("add-instructor", help="an instructor with a course folder")
    instructor.add_argument("name")
    instructor.add_argument("--repo", default=str(REPO), help="where nbgrader_config.py and solutions/ come from")
    instructor.set_defaults(run=add_instructor)
    students = commands.add_parser("add-students", help="students from a class list")
    students.add_argument("class_list")
    students.add_argument("--instructor", help="also add the students to this instructor's gradebook")
    students.add_argument("--no-passwords", dest="passwords", action="store_false",
                          help="set no password (logins by another authenticator)")
    students.set_defaults(run=add_students)
    remove = commands.add_parser("remove-users", help="delete the users of a class list (or name1,name2)")
    remove.add_argument("class_list")
    remove.add_argument("--keep-homes", action="store_true")
    remove.set_defaults(run=remove_users)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: it creates system users")
    args.run(args)


if __name__ == "__main__":
    main()
