"""JupyterHub for a kdlib class on one machine: real system users, an nbgrader exchange, culled idle kernels.

Started as root by `deploy/kdlib-hub.service` (or by hand: `jupyterhub -f deploy/jupyterhub_config.py`
from the state folder). Every setting a class changes is an environment variable, read below with
its default; the service reads them from /etc/kdlib-hub.env (see deploy/kdlib-hub.env).

Who is who: members of the Unix group KDLIB_INSTRUCTORS_GROUP are instructors (hub admins, with
nbgrader's Formgrader); members of KDLIB_STUDENTS_GROUP are students, whose servers start with
deploy/student-config/ first on JUPYTER_CONFIG_PATH, so they see the Assignments list and not the
instructor tools. `deploy/classroom.py` creates both kinds of users from a class list.
"""
import grp
import os
import pwd
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by JupyterHub)

DEPLOY = Path(__file__).resolve().parent
env = os.environ.get

# ---- settings ---------------------------------------------------------------------------------
IP = env("KDLIB_HUB_IP", "0.0.0.0")  # put HTTPS in front (nginx, Caddy) or set ssl_cert/ssl_key below
PORT = int(env("KDLIB_HUB_PORT", "8000"))
HUB_API_PORT = int(env("KDLIB_HUB_API_PORT", "8081"))  # hub <-> user servers, on 127.0.0.1 only
PROXY_API_PORT = int(env("KDLIB_PROXY_API_PORT", "8001"))  # hub <-> proxy, on 127.0.0.1 only
STATE = Path(env("KDLIB_HUB_STATE", "/srv/kdlib-hub"))  # the hub's database, cookie secret, proxy pid
VENV = Path(env("KDLIB_VENV", sys.prefix))  # the environment user servers run from (readable by all)
COURSE_ID = env("KDLIB_COURSE_ID", "kdlib")
EXCHANGE = env("KDLIB_EXCHANGE", "/srv/nbgrader/exchange")  # mode 1777
STUDENTS_GROUP = env("KDLIB_STUDENTS_GROUP", "kdlib-students")
INSTRUCTORS_GROUP = env("KDLIB_INSTRUCTORS_GROUP", "kdlib-instructors")
IDLE_SERVER_SECONDS = int(env("KDLIB_CULL_SERVERS_AFTER", "7200"))  # a user server with no activity is stopped
IDLE_KERNEL_SECONDS = int(env("KDLIB_CULL_KERNELS_AFTER", "3600"))  # a kernel with no execution is shut down
# Login: the machine's own passwords (PAM) by default. A shared password (every listed user logs in
# with it, anyone who knows it can log in as anyone) is only for a demo or a test machine.
SHARED_PASSWORD = env("KDLIB_SHARED_PASSWORD")

# ---- the hub ------------------------------------------------------------------------------------
STATE.mkdir(parents=True, exist_ok=True)
c.JupyterHub.bind_url = f"http://{IP}:{PORT}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = HUB_API_PORT
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_API_PORT}"
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
# c.JupyterHub.ssl_cert = "/etc/letsencrypt/live/HOST/fullchain.pem"
# c.JupyterHub.ssl_key = "/etc/letsencrypt/live/HOST/privkey.pem"


def members(group):
    """Login names in a Unix group: listed members and users whose primary group it is."""
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return set()
    return set(entry.gr_mem) | {user.pw_name for user in pwd.getpwall() if user.pw_gid == entry.gr_gid}


# ---- who may log in ------------------------------------------------------------------------------
if SHARED_PASSWORD:
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = SHARED_PASSWORD
    # read at start: restart the hub after adding users
    c.Authenticator.allowed_users = members(STUDENTS_GROUP) | members(INSTRUCTORS_GROUP)
    c.Authenticator.admin_users = members(INSTRUCTORS_GROUP)
else:
    c.JupyterHub.authenticator_class = "pam"
    # groups are read at each login: users added by deploy/classroom.py can log in at once
    c.PAMAuthenticator.allowed_groups = {STUDENTS_GROUP, INSTRUCTORS_GROUP}
    c.PAMAuthenticator.admin_groups = {INSTRUCTORS_GROUP}
    c.PAMAuthenticator.open_sessions = False

# ---- each user's own server, as that user --------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(VENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                  "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
c.Spawner.environment = {
    **THREADS,  # one thread per kernel: 30 learners on 16 cores do not fight over 480 threads
    "PATH": f"{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",  # nbgrader runs `jupyter`, `alembic` by name
    "KDLIB_COURSE_ID": COURSE_ID,
    "KDLIB_EXCHANGE": EXCHANGE,
    "KDLIB_CULL_KERNELS_AFTER": str(IDLE_KERNEL_SECONDS),
}
if env("KDLIB_DATA_DIR"):
    c.Spawner.environment["KDLIB_DATA_DIR"] = env("KDLIB_DATA_DIR")  # a shared, read-only copy of MNIST


def pre_spawn_hook(spawner):
    """Students get the students-only config folder first: no Formgrader, no course list, no create-assignment."""
    folders = [str(DEPLOY / "jupyter-config")]
    if spawner.user.name not in members(INSTRUCTORS_GROUP):  # read at each start
        folders.insert(0, str(DEPLOY / "student-config"))
    # a new dict: the configured one may be shared by every spawner
    spawner.environment = {**spawner.environment, "JUPYTER_CONFIG_PATH": os.pathsep.join(folders)}


c.Spawner.pre_spawn_hook = pre_spawn_hook

# ---- idle servers stopped by the hub's culler (kernels are culled by each server, see jupyter-config/) ----
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={IDLE_SERVER_SECONDS}",
                f"--cull-every={max(60, IDLE_SERVER_SECONDS // 10)}"],
}]

# ---- local additions (kept out of this file so that it can be updated with the repository) ----------
if env("KDLIB_HUB_EXTRA_CONFIG"):
    load_subconfig(env("KDLIB_HUB_EXTRA_CONFIG"))  # noqa: F821 (provided by traitlets)
