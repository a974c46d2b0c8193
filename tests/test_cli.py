"""The command line as a user runs it: a real subprocess, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test runs the CLI in a subprocess


def widespec(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "curation.app.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_init_then_import_then_status(tmp_path: Path) -> None:
    assert widespec("init", "ws", cwd=tmp_path).returncode == 0
    for name in ("widespec.toml", "widespec.db", "images", "exports"):
        assert (tmp_path / "ws" / name).exists()
    first = widespec("-w", "ws", "prompts", "add", "--builtin", "starter", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    imported = json.loads(first.stdout)["imported"]
    assert imported >= 190
    second = widespec("prompts", "add", "--builtin", "starter", "--json", cwd=tmp_path / "ws")
    assert json.loads(second.stdout)["imported"] == 0
    status = widespec("status", "--json", cwd=tmp_path, env={"WIDESPEC_WORKSPACE": str(tmp_path / "ws")})
    data = json.loads(status.stdout)
    assert data["records"]["base_prompt"] == {"total": imported, "ok": imported}
    assert data["pending"]["rewrite"] == imported
    assert [run["stage"] for run in data["runs"]] == ["prompts", "prompts"]


def test_init_refuses_an_existing_workspace(tmp_path: Path) -> None:
    widespec("init", "ws", cwd=tmp_path)
    config = (tmp_path / "ws" / "widespec.toml").read_text()
    (tmp_path / "ws" / "widespec.toml").write_text(config.replace("seed = 0", "seed = 9"))
    again = widespec("init", "ws", cwd=tmp_path)
    assert again.returncode == 2
    assert "already a widespec workspace" in again.stderr
    assert "seed = 9" in (tmp_path / "ws" / "widespec.toml").read_text()


def test_bad_input_exits_2_with_one_line_naming_the_file(tmp_path: Path) -> None:
    widespec("init", "ws", cwd=tmp_path)
    (tmp_path / "bad.txt").write_bytes(b"fine\n\xff\xfe broken\n")
    result = widespec("-w", "ws", "prompts", "add", "bad.txt", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.txt:2: not valid UTF-8" in lines[0]


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    widespec("init", "ws", cwd=tmp_path)
    path = tmp_path / "ws" / "widespec.toml"
    path.write_text(path.read_text().replace("max_chars = 1000", 'max_chars = "many"'))
    result = widespec("-w", "ws", "status", cwd=tmp_path)
    assert result.returncode == 2
    assert "prompts.max_chars = 'many': expected integer" in result.stderr


def test_commands_outside_a_workspace_say_how_to_make_one(tmp_path: Path) -> None:
    result = widespec("status", cwd=tmp_path)
    assert result.returncode == 2
    assert "not a widespec workspace" in result.stderr and "widespec init" in result.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    assert widespec("prompts", "add", cwd=tmp_path).returncode == 2


def test_cache_clear_deletes_caches_and_keeps_durable_state(tmp_path: Path) -> None:
    from curation.core.workspace import open_workspace

    assert widespec("init", "ws", cwd=tmp_path).returncode == 0
    with open_workspace(tmp_path / "ws") as ws:
        ws.store.cache_put("llm:answer", {"text": "x"})
        ws.store.state_put("annotation:round:1", {"round": 1, "project_id": 3, "tasks": []})
        embeddings = ws.runtime_dir / "embeddings" / "scorer" / "images"
        embeddings.mkdir(parents=True)
        (embeddings / "part-0.npy").write_bytes(b"\x00")
    cleared = widespec("-w", "ws", "cache", "clear", cwd=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert "cleared 1 cached answers and 1 embedding files" in cleared.stdout
    with open_workspace(tmp_path / "ws") as ws:
        assert ws.store.cache_get("llm:answer") is None
        assert ws.store.state_get("annotation:round:1") == {"round": 1, "project_id": 3, "tasks": []}
        assert not (ws.runtime_dir / "embeddings").exists()
