"""The local Label Studio server of a workspace: start, stop, credentials, annotator accounts.

The server runs from its own virtual environment (annotation/server_venv.sh) with its data in
`<workspace>/.widespec/label-studio/data`, bound to 127.0.0.1, telemetry and version checks off. A pre-migrated
template data dir, built once per Label Studio version under ~/.cache/widespec, is copied on first start, so
starting takes seconds. A team server (`annotation.url` + the token in `annotation.token_env`) is used as is.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from curation.core.errors import InputError, WidespecError
from curation.core.files import write_atomic
from curation.core.workspace import Workspace

LS_VERSION = "1.23.2"
ADMIN_EMAIL = "admin@widespec.local"
ANNOTATOR_DOMAIN = "widespec.local"
STARTUP_TIMEOUT_S = 180.0
# The template's own admin secrets are replaced in every copy, so they never grant access to a workspace.
_TEMPLATE_PASSWORD = "template-only-password"
_TEMPLATE_TOKEN = "0" * 40


@dataclass(frozen=True)
class Connection:
    """Where widespec talks to Label Studio and with which token."""

    url: str
    token: str


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    token: str


def venv_dir(ws: Workspace) -> Path:
    configured = ws.settings.annotation.server_venv
    if configured:
        return ws.resolve_path(configured).resolve()
    default = Path.home() / ".cache" / "widespec" / f"label-studio-{LS_VERSION}"
    return Path(os.environ.get("WIDESPEC_LS_VENV", default)).resolve()


def label_studio_bin(venv: Path) -> Path:
    """The server executable; a clear error naming the set-up script when it is missing."""
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        script = Path(__file__).with_name("server_venv.sh")
        raise WidespecError(
            f"Label Studio server not installed at {venv}: create it with `bash {script} {venv}` (about a minute)"
        )
    return exe


def server_dir(ws: Workspace) -> Path:
    """Absolute: the server runs in its data dir, where a relative path would name another folder."""
    return (ws.runtime_dir / "label-studio").resolve()


def document_root(ws: Workspace) -> Path:
    """The folder Label Studio serves local files from; it must hold the workspace's images/."""
    configured = ws.settings.annotation.document_root
    root = (ws.resolve_path(configured) if configured else ws.root).resolve()
    images = (ws.root / "images").resolve()
    if not images.is_relative_to(root) or images == root:
        raise InputError(f"annotation.document_root = {configured!r}: must be a folder that contains {images}")
    return root


def server_env(venv: Path, data_dir: Path, docroot: Path | None = None) -> dict[str, str]:
    """The whole environment of a server process: Label Studio also reads plain HOST, PORT, USERNAME, …"""
    env = {
        "PATH": f"{venv}/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(Path.home())),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_DEBUG": "false",
        "DEBUG": "false",
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    if docroot is not None:
        env |= {"LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(docroot)}
    return env


def _run_cli(venv: Path, data_dir: Path, *args: str, login: Login | None = None) -> str:
    """A `label-studio` command on a data dir; a login travels in the environment (argv is public in `ps`)."""
    env = server_env(venv, data_dir)
    if login is not None:
        # `init` reads LABEL_STUDIO_USERNAME / _PASSWORD / _USER_TOKEN when no flag gives them
        env |= {
            "LABEL_STUDIO_USERNAME": login.email,
            "LABEL_STUDIO_PASSWORD": login.password,
            "LABEL_STUDIO_USER_TOKEN": login.token,
        }
    result = subprocess.run(
        [str(label_studio_bin(venv)), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise WidespecError(f"label-studio {args[0]} failed: {(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout + result.stderr


def template_dir(venv: Path) -> Path:
    """A migrated data dir with an admin and legacy API tokens enabled; built once per version (~30 s)."""
    template = Path.home() / ".cache" / "widespec" / f"label-studio-template-{LS_VERSION}"
    if (template / "label_studio.sqlite3").exists():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{template}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (template / "label_studio.sqlite3").exists():
            return template
        building = Path(tempfile.mkdtemp(prefix=f"{template.name}.", dir=template.parent))
        try:
            _run_cli(
                venv,
                building,
                "init",
                "--enable-legacy-api-token",
                login=Login(ADMIN_EMAIL, _TEMPLATE_PASSWORD, _TEMPLATE_TOKEN),
            )
            (building / ".env").unlink(missing_ok=True)  # each copy generates its own SECRET_KEY
            building.rename(template)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return template


def django_password_hash(password: str, iterations: int = 1_000_000) -> str:
    """A Django `pbkdf2_sha256` password hash (what Label Studio checks at login)."""
    salt = secrets.token_hex(11)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def credentials_path(ws: Workspace) -> Path:
    return ws.credentials_path.resolve()


def read_credentials(ws: Workspace) -> dict[str, dict[str, str]]:
    path = credentials_path(ws)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _save_login(ws: Workspace, login: Login) -> None:
    creds = read_credentials(ws)
    creds[login.email] = {"password": login.password, "token": login.token}
    write_atomic(credentials_path(ws), json.dumps(creds, indent=2), private=True)


def admin_login(ws: Workspace) -> Login:
    entry = read_credentials(ws).get(ADMIN_EMAIL)
    if entry is None:
        raise WidespecError("this workspace has no local Label Studio yet: start it with `widespec annotate serve`")
    return Login(ADMIN_EMAIL, entry["password"], entry["token"])


def ensure_data_dir(ws: Workspace, venv: Path) -> Path:
    """The workspace's server data dir: a copy of the template with a fresh admin password and token."""
    data = server_dir(ws) / "data"
    if (data / "label_studio.sqlite3").exists():
        return data
    data.parent.mkdir(parents=True, exist_ok=True)
    staging = data.with_name("data.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(template_dir(venv), staging)
    login = Login(ADMIN_EMAIL, secrets.token_urlsafe(12), secrets.token_hex(20))
    with sqlite3.connect(staging / "label_studio.sqlite3") as conn:
        conn.execute(
            "UPDATE htx_user SET password = ? WHERE email = ?", (django_password_hash(login.password), ADMIN_EMAIL)
        )
        conn.execute(
            "UPDATE authtoken_token SET key = ? WHERE user_id = (SELECT id FROM htx_user WHERE email = ?)",
            (login.token, ADMIN_EMAIL),
        )
    conn.close()
    _save_login(ws, login)
    staging.rename(data)
    return data


# -- process lifecycle -----------------------------------------------------------------------------------


def pid_path(ws: Workspace) -> Path:
    return server_dir(ws) / "server.pid"


def log_path(ws: Workspace) -> Path:
    return server_dir(ws) / "server.log"


def running(ws: Workspace) -> dict[str, int | str] | None:
    """The pid file's content when its process is this workspace's live server, else None."""
    path = pid_path(ws)
    if not path.exists():
        return None
    info = json.loads(path.read_text(encoding="utf-8"))
    try:
        proc = psutil.Process(int(info["pid"]))
        alive = (
            proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE and "label-studio" in " ".join(proc.cmdline())
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        alive = False
    if not alive:
        path.unlink(missing_ok=True)
        return None
    return dict(info)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server itself binds: connections of a just-stopped server in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    # Label Studio checks `localhost:P` by connecting: a server on another interface also counts as busy.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start(ws: Workspace, port: int | None = None) -> Connection:
    """Start this workspace's server (or return the running one) and wait until it answers."""
    info = running(ws)
    if info is not None:
        return Connection(str(info["url"]), admin_login(ws).token)
    port = port or int(ws.settings.annotation.port)
    venv = venv_dir(ws)
    exe = label_studio_bin(venv)
    docroot = document_root(ws)
    if not port_is_free(port):
        raise InputError(f"port {port} on 127.0.0.1 is busy: free it or set annotation.port (or pass --port)")
    data = ensure_data_dir(ws, venv)
    log = log_path(ws)
    proc = spawn(exe, data, port, log, server_env(venv, data, docroot))
    url = f"http://127.0.0.1:{port}"
    write_atomic(pid_path(ws), json.dumps({"pid": proc.pid, "port": port, "url": url}), private=True)
    try:
        wait_ready(proc, url, port, log)
    except BaseException:
        terminate(proc.pid)
        pid_path(ws).unlink(missing_ok=True)
        raise
    return Connection(url, admin_login(ws).token)


def spawn(exe: Path, data: Path, port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A Label Studio process serving `data` on 127.0.0.1:port with exactly `env`, logging to `log`."""
    with log.open("w", encoding="utf-8") as handle:
        return subprocess.Popen(
            [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=data,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def launch(venv: Path, data: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A Label Studio on `data` with exactly `env` (a team-like server for tests and benchmarks), ready to
    answer on 127.0.0.1:port; its log is `server.log` beside the data dir."""
    log = data.parent / "server.log"
    proc = spawn(label_studio_bin(venv), data, port, log, env)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", port, log)
    except BaseException:
        terminate(proc.pid)
        raise
    return proc


def wait_ready(proc: subprocess.Popen[bytes], url: str, port: int, log: Path) -> None:
    """Return once the process answers /health on its own port; a clear error when it exits or moves."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    ours = f"Starting development server at {url}/"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-800:]
            raise WidespecError(f"Label Studio exited with code {proc.returncode} during start-up (log {log}): {tail}")
        text = log.read_text(encoding="utf-8", errors="replace")
        if ours in text:
            if _healthy(url):
                return
        elif "Starting development server at" in text:
            raise InputError(f"port {port} was taken while Label Studio started: choose another with --port")
        time.sleep(0.2)
    raise WidespecError(f"Label Studio did not answer on {url} within {STARTUP_TIMEOUT_S:.0f} s (log {log})")


def terminate(pid: int, timeout: float = 20.0) -> None:
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def stop(ws: Workspace) -> bool:
    """Stop this workspace's server; False when none was running. Its data stays in the workspace."""
    info = running(ws)
    if info is None:
        return False
    terminate(int(info["pid"]))
    pid_path(ws).unlink(missing_ok=True)
    return True


# -- connections and accounts ------------------------------------------------------------------------------


def connection(ws: Workspace) -> Connection:
    """The team server from the config, else this workspace's running local server."""
    cfg = ws.settings.annotation
    if cfg.url:
        token = os.environ.get(cfg.token_env, "")
        if not token:
            raise InputError(f"annotation.url is set but ${cfg.token_env} is empty: export the server's API token")
        return Connection(str(cfg.url).rstrip("/"), token)
    info = running(ws)
    if info is None:
        raise WidespecError(
            "no Label Studio server is running for this workspace: start it with `widespec annotate serve` "
            "(or set annotation.url for a team server)"
        )
    return Connection(str(info["url"]), admin_login(ws).token)


def annotator_email(name: str) -> str:
    """An annotator's login e-mail: the name itself when it is one, else name@widespec.local."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+(@[A-Za-z0-9.-]+)?", name):
        raise InputError(f"annotator name {name!r}: use letters, digits, '.', '-' or '_'")
    return name if "@" in name else f"{name}@{ANNOTATOR_DOMAIN}"


def add_annotator(ws: Workspace, name: str) -> Login:
    """Create an annotator account on the local server (running or not) and return its login."""
    if ws.settings.annotation.url:
        raise InputError("annotation.url points at a team server: invite annotators from its Organization page instead")
    email = annotator_email(name)
    if email in read_credentials(ws):
        raise InputError(f"annotator {email} already exists (its login is in {credentials_path(ws)})")
    venv = venv_dir(ws)
    data = ensure_data_dir(ws, venv)
    login = Login(email, secrets.token_urlsafe(12), secrets.token_hex(20))
    output = _run_cli(venv, data, "init", login=login)
    if "already exists" in output:
        raise InputError(f"annotator {email} already exists on the server")
    _save_login(ws, login)
    return login
