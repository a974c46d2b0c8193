"""Fixtures for rewrite tests: the OpenAI-compatible stand-in server and workspaces pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from curation.core.config import set_value
from curation.core.ids import normalise_text
from curation.core.records import base_prompt_id
from curation.core.store import utc_now
from curation.core.workspace import Workspace
from tests.openai_standin import StandinServer

API_KEY_ENV = "WIDESPEC_TEST_LLM_KEY"
API_KEY = "sk-test-9f8e7d6c5b4a"

PROMPTS = [
    "An elderly man reading a newspaper on a park bench under autumn trees.",
    "A red fox crossing a snowy field at dawn.",
    "A bowl of ripe oranges on a wooden kitchen table.",
    "A lighthouse on a rocky cliff above a stormy sea.",
    "Two children flying a kite on a windy beach.",
    "A vintage bicycle leaning against a brick wall in a narrow alley.",
]


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    server = StandinServer().start()
    yield server
    server.stop()


def add_prompts(ws: Workspace, texts: list[str]) -> list[str]:
    """Store base prompts directly (the import stage has its own tests); returns their ids."""
    records = [
        {
            "id": base_prompt_id(text),
            "text": normalise_text(text),
            "source": "tests",
            "source_row": i + 1,
            "category": None,
            "status": "ok",
            "block_rule": None,
            "created_at": utc_now(),
        }
        for i, text in enumerate(texts)
    ]
    ws.store.put("base_prompt", records)
    return [r["id"] for r in records]


def configure(ws: Workspace, **values: object) -> None:
    for key, value in values.items():
        set_value(ws.config_path, "rewriter", key, value)
    ws.reload_config()


def point_at(ws: Workspace, server: StandinServer, **overrides: object) -> None:
    """Make `ws` rewrite with the LLM rewriter against `server`, with short timeouts and backoff."""
    settings: dict[str, object] = {
        "kind": "llm",
        "base_url": server.base_url,
        "model": "standin",
        "api_key_env": API_KEY_ENV,
        "timeout_s": 0.5,
        "backoff_s": 0.01,
        "max_backoff_s": 0.5,
        "max_attempts": 3,
        "max_concurrency": 4,
    }
    configure(ws, **{**settings, **overrides})


@pytest.fixture
def llm_workspace(workspace: Workspace, standin: StandinServer, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    point_at(workspace, standin)
    add_prompts(workspace, PROMPTS)
    return workspace


def workspace_bytes(root: Path) -> bytes:
    """Every file of a workspace, for checking that a secret never reached the disk."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())
