"""A team server on "another host": a real Label Studio with its own data dir, local-files serving off and a
document root that does not hold the curator's workspace. Push uploads every image once, resumably; annotators
sign up through the invite link and see exactly the workspace's PNG bytes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from label_studio_sdk import LabelStudio

from annotation import server, uploads, workflow
from annotation.server import Connection
from curation.core.errors import WidespecError
from curation.core.pairs import iter_pairs
from curation.core.workspace import Workspace, init_workspace
from tests.annotation_fixtures import configure, free_port
from tests.dataset_fixtures import populate
from tests.test_cli import widespec

pytestmark = pytest.mark.slow  # a real Label Studio server

TOKEN_ENV = "WIDESPEC_TEST_TEAM_TOKEN"


@dataclass
class TeamServer:
    url: str
    token: str  # the admin's
    docroot: Path


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServer]:
    """Label Studio as a team would run it: sign-up by invite link only, no local-files serving."""
    host = init_workspace(tmp_path_factory.mktemp("team-host") / "host")  # holds the data dir and admin login
    venv = server.venv_dir(host)
    data = server.ensure_data_dir(host, venv)
    docroot = tmp_path_factory.mktemp("team-docroot")  # empty: nothing of the curator's is below it
    env = server.server_env(venv, data) | {
        "LOCAL_FILES_SERVING_ENABLED": "false",
        "LOCAL_FILES_DOCUMENT_ROOT": str(docroot),
        "DISABLE_SIGNUP_WITHOUT_LINK": "true",
    }
    port = free_port()
    proc = server.launch(venv, data, port, env)
    try:
        yield TeamServer(f"http://127.0.0.1:{port}", server.admin_login(host).token, docroot)
    finally:
        server.terminate(proc.pid)
        host.close()


@pytest.fixture
def curator(team_server: TeamServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv(TOKEN_ENV, team_server.token)
    ws = configure(
        init_workspace(tmp_path / "curator"),
        url=team_server.url,
        token_env=TOKEN_ENV,
        gold_rate=0.0,
        upload_batch=3,  # several requests, two at a time
        upload_concurrency=2,
    )
    assert not ws.root.resolve().is_relative_to(team_server.docroot)
    yield ws
    ws.close()


def _sign_up(link: str, email: str, password: str) -> str:
    """Follow the invite link as a new annotator would; returns the new account's API token."""
    browser = httpx.Client(follow_redirects=True)
    browser.get(link)
    answer = browser.post(
        link,
        data={"email": email, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": link},
    )
    assert answer.status_code == 200 and "sessionid" in browser.cookies, answer.text[-500:]
    return str(browser.get(link.split("/user/")[0] + "/api/current-user/token").json()["token"])


class FailAfter:
    """An HTTP client that loses the connection on the answer to its `n`-th image upload: the server has stored
    that request's files, the workspace never hears of them (as when a push is killed mid-request)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def __call__(self, response: httpx.Response) -> None:
        if response.request.method == "POST" and "commit_to_project=false" in str(response.request.url):
            self.seen += 1
            if self.seen == self.n:
                raise httpx.ReadError("connection lost", request=response.request)

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=60, event_hooks={"response": [self]})


def _uploads_on_server(conn: Connection, project_id: int) -> list[str]:
    return [str(u["file"]) for u in httpx.get(
        f"{conn.url}/api/projects/{project_id}/file-uploads", params={"all": "true"},
        headers={"Authorization": f"Token {conn.token}"},
    ).json()]  # fmt: skip


def test_push_uploads_each_image_once_resumes_and_annotators_see_the_bytes(
    team_server: TeamServer, curator: Workspace
) -> None:
    ws = curator
    populate(ws, 8)
    conn = Connection(team_server.url, team_server.token)

    # A push that loses the server on its third upload request (two run at once, so at least one has finished)
    # fails clearly and keeps what it finished.
    failing = FailAfter(3)
    with pytest.raises(WidespecError, match="not reachable"):
        workflow.push(ws, 1, http=failing.client())
    images_project = ws.store.state_get(uploads.project_key(team_server.url))
    recorded = uploads.recorded(ws.store, team_server.url, images_project)
    on_server = _uploads_on_server(conn, images_project)
    assert 0 < len(recorded) < len(on_server)  # the lost request's files reached the server only
    assert ws.store.runs()[0]["status"] == "failed"

    # The rerun finds those files by name, uploads only the rest and imports every task.
    plan = ws.store.state_get("annotation:round:1")
    assert plan is not None
    pairs = {p.id: p for p in iter_pairs(ws.store)}
    shas = {
        r["image_sha256"] for pair, _g, _o in plan["tasks"] for r in (pairs[pair].anti_render, pairs[pair].base_render)
    }
    pushed = json.loads(widespec("-w", str(ws.root), "annotate", "push", "--round", "1", "--json", cwd=ws.root).stdout)
    assert pushed["imported"] == len(plan["tasks"]) and pushed["uploaded"] == len(shas) - len(on_server)
    files = _uploads_on_server(conn, images_project)
    assert len(files) == len(shas)  # each image once: nothing uploaded twice
    assert set(uploads.recorded(ws.store, team_server.url, images_project)) == shas

    # An annotator signs up through the link add-annotator prints, then sees every task's two images: exactly
    # the PNG bytes of the workspace, served by the team server (which cannot read the workspace).
    added = widespec("-w", str(ws.root), "annotate", "add-annotator", "rita", cwd=ws.root)
    assert added.returncode == 0, added.stderr
    link = added.stdout.split(" signs up at ")[1].split()[0]
    assert link.startswith(f"{team_server.url}/user/signup/?token=")
    rita = _sign_up(link, "rita@widespec.local", "a-long-Passw0rd")
    ls = LabelStudio(base_url=team_server.url, api_key=rita)
    orders = {pair: order for pair, _g, order in plan["tasks"]}
    tasks = list(ls.tasks.list(project=pushed["project_id"], page_size=100))
    assert len(tasks) == len(plan["tasks"])
    for task in tasks:
        data = task.data or {}
        pair = pairs[data["pair_id"]]
        first, second = (pair.anti_render, pair.base_render)[:: 1 if orders[pair.id] == "anti_first" else -1]
        for field, render in (("image_a", first), ("image_b", second)):
            assert data[field].startswith("/data/upload/")
            seen = httpx.get(team_server.url + data[field], headers={"Authorization": f"Token {rita}"})
            assert seen.status_code == 200 and seen.headers["content-type"] == "image/png"
            assert seen.content == ws.images.path_for(render["image_sha256"]).read_bytes()
    assert httpx.get(team_server.url + tasks[0].data["image_a"]).status_code == 401  # type: ignore[index]

    # A rerun uploads nothing and imports nothing.
    again = workflow.push(ws, 1)
    assert (again.uploaded, again.imported, again.already_there) == (0, 0, len(plan["tasks"]))
    assert len(_uploads_on_server(conn, images_project)) == len(shas)


def test_add_annotator_without_an_admin_token_says_the_admin_makes_accounts(
    curator: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    refused = widespec("-w", str(curator.root), "annotate", "add-annotator", "ana", cwd=curator.root)
    assert refused.returncode == 2  # a bad input: one line
    [line] = refused.stderr.strip().splitlines()
    assert "server's admin must create ana@widespec.local's account" in line and TOKEN_ENV in line
    wrong = widespec(
        "-w", str(curator.root), "annotate", "add-annotator", "ana", cwd=curator.root, env={TOKEN_ENV: "f" * 40}
    )
    assert wrong.returncode == 2 and "refused the API token" in wrong.stderr and "admin must create" in wrong.stderr


def test_a_push_killed_mid_upload_resumes_without_duplicates(team_server: TeamServer, curator: Workspace) -> None:
    """SIGKILL while images go up one a request: the rerun uploads only the rest, every image sits on the server
    once, and every task is imported once."""
    ws = configure(curator, upload_batch=1, upload_concurrency=1)
    populate(ws, 24)
    push = subprocess.Popen(
        [sys.executable, "-m", "curation.app.cli", "-w", str(ws.root), "annotate", "push", "--round", "1"],
        cwd=ws.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    recorded = 0
    deadline = time.monotonic() + 90
    while recorded < 4 and push.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        with closing(sqlite3.connect(f"file:{ws.root / 'widespec.db'}?mode=ro", uri=True, timeout=5)) as db:
            recorded = db.execute("SELECT count(*) FROM state WHERE key LIKE 'annotation:upload:%'").fetchone()[0]
    push.send_signal(signal.SIGKILL)
    push.wait()
    assert push.returncode == -signal.SIGKILL and recorded >= 4, "the push was not killed mid-upload"

    resumed = workflow.push(ws, 1)
    plan = ws.store.state_get("annotation:round:1")
    assert plan is not None
    pairs = {p.id: p for p in iter_pairs(ws.store)}
    shas = {
        r["image_sha256"] for pair, _g, _o in plan["tasks"] for r in (pairs[pair].anti_render, pairs[pair].base_render)
    }
    images_project = ws.store.state_get(uploads.project_key(team_server.url))
    files = _uploads_on_server(Connection(team_server.url, team_server.token), images_project)
    assert 0 < resumed.uploaded <= len(shas) - recorded and len(files) == len(shas)
    assert resumed.imported == len(plan["tasks"]) and workflow.push(ws, 1).imported == 0
    assert "interrupted" in {run["status"] for run in ws.store.runs(stage="annotate-push")}
