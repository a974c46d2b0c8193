"""A real Label Studio for the annotation tests: one server per test session, started from its own venv on a
free loopback port (a copy of the cached pre-migrated template, so seconds), with three annotators."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio

from annotation import server
from curation.core.config import set_value
from curation.core.workspace import Workspace, init_workspace

TOKEN_ENV = "WIDESPEC_TEST_LS_TOKEN"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(ws: Workspace, **values: Any) -> Workspace:
    for key, value in values.items():
        set_value(ws.config_path, "annotation", key, value)
    ws.reload_config()
    return ws


@dataclass
class LabelStudioServer:
    root: Path  # document root: every test workspace lives below it
    url: str
    token: str
    annotators: list[server.Login]
    password: str  # admin password, for browser logins


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    root = tmp_path_factory.mktemp("label-studio-root")
    ws = configure(init_workspace(root / "server"), document_root=str(root))
    try:
        conn = server.start(ws, free_port())
        logins = [server.add_annotator(ws, f"ann{i}") for i in (1, 2, 3)]
        yield LabelStudioServer(root, conn.url, conn.token, logins, server.admin_login(ws).password)
    finally:
        server.stop(ws)
        ws.close()


@pytest.fixture
def team_ws(ls_server: LabelStudioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace under the server's document root that uses it as a team server."""
    monkeypatch.setenv(TOKEN_ENV, ls_server.token)
    folder = ls_server.root / tmp_path.name
    ws = configure(init_workspace(folder), url=ls_server.url, token_env=TOKEN_ENV, document_root=str(ls_server.root))
    yield ws
    ws.close()


def set_clip_outcomes(ws: Workspace, outcomes: dict[str, str]) -> None:
    """Overwrite the CLIP decisions written by `populate`."""
    records = []
    for pair, outcome in outcomes.items():
        record = next(ws.store.iter("decision", subject_id=pair, stage="clip"))
        records.append({**record, "outcome": outcome})
    ws.store.put("decision", records, on_conflict="replace")


def submit(
    url: str,
    token: str,
    task_id: int,
    choice: str,
    order: str,
    *,
    qualities: tuple[str, ...] = (),
    subject: str = "yes",
    flags: tuple[str, ...] = (),
    comment: str = "",
) -> None:
    """Submit one annotation as the token's user: `choice` is anti / base / tie, turned into A / B by `order`."""
    first, second = ("anti", "base") if order == "anti_first" else ("base", "anti")
    answer = {first: "a", second: "b", "tie": "tie"}[choice]
    result = [_choices("choice", [answer]), _choices("subject_kept", [subject])]
    if qualities:
        result.append(_choices("qualities", list(qualities)))
    if flags:
        result.append(_choices("flags", list(flags)))
    if comment:
        result.append({"from_name": "comment", "to_name": "image_a", "type": "textarea", "value": {"text": [comment]}})
    LabelStudio(base_url=url, api_key=token).annotations.create(id=task_id, result=result, lead_time=3.0)


def _choices(name: str, values: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": "image_a", "type": "choices", "value": {"choices": values}}
