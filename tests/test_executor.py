"""The kernel's executor, workspace lock and ledger, on a small stage of the test's own."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from curation.core.errors import InputError
from curation.core.executor import execute
from curation.core.ids import stable_id
from curation.core.lock import WorkspaceBusy, workspace_lock
from curation.core.records import base_prompt_record
from curation.core.stage import Output, Stage, Work
from curation.core.store import Store
from curation.core.workspace import Workspace
from tests.lock_holder import holder


def prompt(text: str) -> dict[str, Any]:
    return base_prompt_record(text, "toy", 1)


@dataclass(frozen=True)
class Writer:
    """Compute that makes one base prompt per unit, in outputs of two; fails at unit `fail_at`."""

    fail_at: int | None = None
    interrupt: bool = False
    message: str = "unit {start} broke"

    def run(self, units: Sequence[str]) -> Iterator[Output]:
        for start in range(0, len(units), 2):
            chunk = units[start : start + 2]
            if self.fail_at is not None and start >= self.fail_at:
                if self.interrupt:
                    raise KeyboardInterrupt
                raise RuntimeError(self.message.format(start=start))
            yield Output(records={"base_prompt": [prompt(t) for t in chunk]}, counts={"made": len(chunk)}, advance=2)

    @contextmanager
    def opened(self) -> Iterator[Writer]:
        yield self


class PromptStage(Stage):
    name = "toy"
    makes = ("base_prompt",)

    def __init__(self, texts: list[str], compute: Writer | None = None) -> None:
        self.texts, self.compute = texts, compute or Writer()

    def pending(self, ws: Workspace) -> int:
        return len(self.units(ws))

    def units(self, ws: Workspace) -> list[str]:
        stored = ws.store.ids("base_prompt")
        return [t for t in self.texts if stable_id("base_prompt", t) not in stored]

    def plan(self, ws: Workspace, options: Any = None) -> Work | None:
        return Work(self.units(ws), self.compute.opened, label="toy")


TEXTS = [f"prompt {i}" for i in range(6)]


def test_each_output_is_committed_and_counted_in_the_ledger(workspace: Workspace) -> None:
    result = execute(workspace, PromptStage(TEXTS))
    assert result.written == 6 and result.counts["made"] == 6
    [run] = workspace.store.runs()
    assert run["status"] == "ok" and run["counts"] == {"made": 6, "written": 6}


def test_nothing_to_do_is_a_normal_result_without_a_ledger_run(workspace: Workspace) -> None:
    execute(workspace, PromptStage(TEXTS))
    again = execute(workspace, PromptStage(TEXTS))
    assert again.nothing_to_do and again.written == 0
    assert len(workspace.store.runs()) == 1


def test_a_failure_keeps_finished_batches_and_records_the_error(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError, match="unit 4 broke"):
        execute(workspace, PromptStage(TEXTS, Writer(fail_at=4)))
    assert workspace.store.count("base_prompt") == 4
    [run] = workspace.store.runs()
    assert run["status"] == "failed" and "unit 4 broke" in run["error"] and run["counts"]["made"] == 4
    rerun = execute(workspace, PromptStage(TEXTS))
    assert rerun.written == 2 and workspace.store.count("base_prompt") == 6


def test_secrets_in_a_failure_never_reach_the_ledger(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured tokens' values (whatever their shape) and sk-/hf_-shaped keys are redacted."""
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "0123456789abcdef" * 2)  # annotation.token_env
    monkeypatch.setenv("OPENAI_API_KEY", "plain-provider-key-42")  # rewriter.api_key_env and judge.api_key_env
    monkeypatch.setenv("HF_TOKEN", "hub-token-value")
    leaked = "HTTP 401 for key plain-provider-key-42 (token {t}, hub hub-token-value, other sk-proj-AbCdEf123456789)"
    with pytest.raises(RuntimeError, match="plain-provider-key-42"):  # the caller still sees the real error
        execute(workspace, PromptStage(TEXTS, Writer(fail_at=2, message=leaked.replace("{t}", "0123456789abcdef" * 2))))
    [run] = workspace.store.runs()
    assert run["status"] == "failed"
    assert run["error"] == "RuntimeError: HTTP 401 for key *** (token ***, hub ***, other ***)"


def test_the_local_label_studio_logins_never_reach_the_ledger(workspace: Workspace) -> None:
    """The admin's API token and password (hex and URL-safe strings of no key shape) are redacted too."""
    admin = {"password": "Zq0-local-admin-pw", "token": "4f" * 20}
    workspace.credentials_path.parent.mkdir(parents=True)
    workspace.credentials_path.write_text(json.dumps({"admin@widespec.local": admin}), encoding="utf-8")
    leaked = f"Label Studio answered 401 to token {admin['token']} (login admin / {admin['password']})"
    with pytest.raises(RuntimeError):
        execute(workspace, PromptStage(TEXTS, Writer(fail_at=0, message=leaked)))
    [run] = workspace.store.runs()
    assert run["error"] == "RuntimeError: Label Studio answered 401 to token *** (login admin / ***)"


class UnplannableStage(PromptStage):
    def plan(self, ws: Workspace, options: Any = None) -> Work | None:
        raise InputError("toy.source: no such file")


def test_a_stage_that_cannot_plan_leaves_a_failed_run_and_no_records(workspace: Workspace) -> None:
    with pytest.raises(InputError, match="no such file"):
        execute(workspace, UnplannableStage(TEXTS))
    assert workspace.store.count("base_prompt") == 0
    [run] = workspace.store.runs()
    assert (run["stage"], run["status"], run["counts"], run["error"]) == (
        "toy",
        "failed",
        {},
        "toy.source: no such file",
    )


def test_ctrl_c_is_recorded_as_interrupted(workspace: Workspace) -> None:
    with pytest.raises(KeyboardInterrupt):
        execute(workspace, PromptStage(TEXTS, Writer(fail_at=2, interrupt=True)))
    assert workspace.store.runs()[0]["status"] == "interrupted"


def test_a_second_writer_is_refused_at_once_naming_the_holder(workspace: Workspace) -> None:
    with holder(workspace) as process:
        started = time.monotonic()
        with pytest.raises(WorkspaceBusy, match=f"pid {process.pid}") as refused:
            execute(workspace, PromptStage(TEXTS))
        assert time.monotonic() - started < 2 and refused.value.exit_code == 1
        assert workspace.store.count("base_prompt") == 0


def test_shard_co_writers_share_the_lock_and_exclude_everyone_else(workspace: Workspace) -> None:
    runtime = workspace.runtime_dir
    with holder(workspace, "shared", "shard 1/2"):
        with workspace_lock(runtime, "shared", shard="shard 2/2"):
            pass
        with pytest.raises(WorkspaceBusy, match="shard 1/2"), workspace_lock(runtime, "exclusive"):
            pass


def test_a_killed_holder_leaves_no_lock_and_its_run_reads_interrupted(workspace: Workspace) -> None:
    with holder(workspace) as process:
        assert workspace.store.runs()[0]["status"] == "running"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    [run] = workspace.store.runs()
    assert run["status"] == "interrupted" and "ended without finishing" in run["error"]
    execute(workspace, PromptStage(TEXTS))  # the lock died with its process
    # the writer that took the lock wrote the interruption into the ledger
    raw = Store(workspace.root / "widespec.db")
    assert [r[0] for r in raw._conn.execute("SELECT status FROM run ORDER BY id")] == ["interrupted", "ok"]


def test_round_plans_move_from_the_cache_to_durable_state(tmp_path: Path) -> None:
    from curation.core.store import MIGRATIONS

    path = tmp_path / "widespec.db"
    old = Store(path, migrations=MIGRATIONS[:1])
    old.cache_put("annotation:round:1", {"round": 1, "tasks": []})
    old.cache_put("llm:answer", {"text": "x"})
    old._conn.execute(
        "INSERT INTO run (stage, config_hash, started_at, status) VALUES ('rewrite', 'h', 'now', 'running')"
    )
    old.close()
    store = Store(path)
    assert store.state_get("annotation:round:1") == {"round": 1, "tasks": []}
    assert store.cache_get("annotation:round:1") is None
    assert store.runs()[0]["status"] == "interrupted"
    assert store.cache_clear() == 1
    assert store.state_get("annotation:round:1") is not None and store.cache_get("llm:answer") is None
