"""The workspace's own Label Studio: `widespec annotate serve / add-annotator / stop`, restarts, errors."""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from label_studio_sdk import LabelStudio

from annotation import client, server, workflow
from curation.core.errors import InputError, WidespecError
from curation.core.workspace import init_workspace
from tests.annotation_fixtures import configure, free_port
from tests.dataset_fixtures import populate
from tests.test_cli import widespec


def _listening_addresses(pid: int, port: int) -> set[str]:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {
        c.laddr.ip for p in procs for c in p.net_connections("inet") if c.status == "LISTEN" and c.laddr.port == port
    }


@pytest.mark.slow
def test_serve_restart_mid_round_and_stopped_server(tmp_path: Path) -> None:
    ws = configure(init_workspace(tmp_path / "ws"), port=free_port(), gold_rate=0.0)
    populate(ws, 3)
    try:
        served = widespec("-w", "ws", "annotate", "serve", cwd=tmp_path)
        assert served.returncode == 0, served.stderr
        info = server.running(ws)
        assert info is not None and f"{info['url']}" in served.stdout and server.ADMIN_EMAIL in served.stdout
        assert _listening_addresses(int(info["pid"]), int(info["port"])) == {"127.0.0.1"}
        creds = server.credentials_path(ws)
        assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
        admin = server.admin_login(ws)
        assert admin.password in served.stdout and admin.token not in served.stdout

        added = widespec("-w", "ws", "annotate", "add-annotator", "rita", cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        rita = server.read_credentials(ws)["rita@widespec.local"]
        assert rita["password"] in added.stdout
        assert (
            LabelStudio(base_url=str(info["url"]), api_key=rita["token"]).users.whoami().email == "rita@widespec.local"
        )

        pushed = json.loads(widespec("-w", "ws", "annotate", "push", "--round", "1", "--json", cwd=tmp_path).stdout)
        assert pushed["imported"] == 3
        ls = LabelStudio(base_url=str(info["url"]), api_key=rita["token"])
        task = next(iter(client.task_pairs(ls, pushed["project_id"]).values()))
        ls.annotations.create(
            id=task,
            result=[{"from_name": "choice", "to_name": "image_a", "type": "choices", "value": {"choices": ["tie"]}}],
        )

        # Stopped mid-round: a clear error (exit 1) and nothing written.
        assert widespec("-w", "ws", "annotate", "stop", cwd=tmp_path).returncode == 0
        assert server.running(ws) is None
        before = (ws.store.count("annotation"), ws.store.runs(limit=50))
        stopped = widespec("-w", "ws", "annotate", "pull", "--round", "1", cwd=tmp_path)
        assert stopped.returncode == 1 and "annotate serve" in stopped.stderr
        runs = ws.store.runs(limit=50)
        assert (ws.store.count("annotation"), runs[1:]) == before
        assert (runs[0]["stage"], runs[0]["status"], runs[0]["counts"]) == ("annotate-pull", "failed", {})
        assert "annotate serve" in runs[0]["error"]  # the ledger keeps the reason

        # Restarted: the project, its tasks and the annotation are all there.
        assert server.start(ws).url == info["url"]
        assert workflow.pull(ws, 1).annotations == 1
        assert [a["choice"] for a in ws.store.iter("annotation", round=1)] == ["tie"]
        assert workflow.push(ws, 1).imported == 0
    finally:
        server.stop(ws)
        ws.close()


def test_busy_port_and_missing_install_are_clear_errors(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        configure(ws, port=busy.getsockname()[1])
        with pytest.raises(InputError, match="busy"):
            server.start(ws)
    configure(ws, server_venv=str(tmp_path / "no-venv"))
    with pytest.raises(WidespecError, match=r"not installed .*server_venv\.sh"):
        server.start(ws)
    assert server.running(ws) is None
    ws.close()


def _argv_watch(stop: threading.Event, seen: list[str]) -> None:
    """Every process's argv, polled until `stop` is set (what `ps` shows any user)."""
    while not stop.is_set():
        for proc in psutil.process_iter(["cmdline"]):
            seen.append(" ".join(proc.info["cmdline"] or []))
        time.sleep(0.01)


@pytest.mark.slow
def test_annotator_secrets_never_reach_a_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The password and token travel in the environment: no argv holds them while the account is made. A
    password that begins with "-" (token_urlsafe draws it one time in 64) would also have been read as a flag."""
    ws = init_workspace(tmp_path / "ws")
    dashed = "-" + secrets.token_urlsafe(12)
    monkeypatch.setattr(server.secrets, "token_urlsafe", lambda n: dashed)
    server.ensure_data_dir(ws, server.venv_dir(ws))
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_argv_watch, args=(stop, seen))
    watcher.start()
    try:
        login = server.add_annotator(ws, "dash")
    finally:
        stop.set()
        watcher.join()
    assert any("label-studio init" in argv for argv in seen)  # the watch did see the account being made
    leaks = [argv for argv in seen if login.password in argv or login.token in argv]
    assert not leaks, leaks
    assert login.password == dashed
    assert server.read_credentials(ws)["dash@widespec.local"]["password"] == login.password
    conn = server.start(ws, free_port())
    try:
        assert LabelStudio(base_url=conn.url, api_key=login.token).users.whoami().email == "dash@widespec.local"
        session = httpx.Client(base_url=conn.url)
        session.get("/user/login/")
        answer = session.post(
            "/user/login/",
            data={
                "email": login.email,
                "password": login.password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{conn.url}/user/login/"},
        )
        assert answer.status_code == 302 and "sessionid" in session.cookies  # the password itself logs in
    finally:
        server.stop(ws)
        ws.close()
