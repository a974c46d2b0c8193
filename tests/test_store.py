"""The SQLite store: validated writes, idempotent ids, transactions, migrations, the stage ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from curation.core.errors import RecordInvalid, WidespecError
from curation.core.store import MIGRATIONS, SCHEMA_VERSION, Store
from tests.records import example


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "widespec.db")


def test_new_database_is_wal_at_the_current_schema_version(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_same_record_twice_is_stored_once(store: Store) -> None:
    assert store.put("base_prompt", [example("base_prompt")]) == 1
    assert store.put("base_prompt", [example("base_prompt")]) == 0
    assert store.count("base_prompt") == 1
    assert store.get("base_prompt", example("base_prompt")["id"]) == example("base_prompt")


def test_replace_overwrites_and_reports_only_real_changes(store: Store) -> None:
    failed = example("render") | {"status": "failed", "image_sha256": None, "error": "CUDA out of memory"}
    store.put("render", [failed])
    assert store.put("render", [example("render")], on_conflict="replace") == 1
    assert store.put("render", [example("render")], on_conflict="replace") == 0
    assert store.count("render", status="ok") == 1 and store.count("render", status="failed") == 0
    rewritten_later = example("render") | {"created_at": "2026-12-01T00:00:00+00:00"}
    assert store.put("render", [rewritten_later], on_conflict="replace") == 0
    assert store.get("render", example("render")["id"]) == example("render")


def test_invalid_record_in_a_batch_stores_nothing(store: Store) -> None:
    good = example("base_prompt")
    bad = example("base_prompt") | {"id": "0" * 16, "status": "maybe"}
    with pytest.raises(RecordInvalid, match=r"base_prompt 0000000000000000: \$\.status"):
        store.put("base_prompt", [good, bad])
    assert store.count("base_prompt") == 0


def test_transaction_rolls_back_every_write_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.put("base_prompt", [example("base_prompt")])
        run = store.start_run("prompts", "abc")
        store.finish_run(run, "ok", {"imported": 1})
        raise RuntimeError("crash mid-batch")
    assert store.count("base_prompt") == 0
    assert store.runs() == []


def test_filters_on_indexed_columns(store: Store) -> None:
    variant = example("variant")
    failed = variant | {"id": "1" * 16, "status": "failed", "text": None, "error": "timeout"}
    store.put("variant", [variant, failed])
    assert store.ids("variant", status="ok") == {variant["id"]}
    assert store.count("variant", status=["ok", "failed"]) == 2
    assert store.count("variant", status=[]) == 0
    assert [v["id"] for v in store.iter("variant", base_id=variant["base_id"])] == sorted([variant["id"], "1" * 16])
    assert store.counts_by("variant", "status") == {"failed": 1, "ok": 1}
    with pytest.raises(KeyError):
        store.count("variant", text="x")


def test_ledger_records_each_run(store: Store) -> None:
    run = store.start_run("rewrite", "cfg1")
    assert store.runs()[0]["status"] == "running"
    store.finish_run(run, "ok", {"ok": 3, "failed": 1})
    latest = store.runs()[0]
    assert latest["stage"] == "rewrite" and latest["config_hash"] == "cfg1"
    assert latest["counts"] == {"ok": 3, "failed": 1} and latest["finished_at"] is not None


def test_cache_and_spend(store: Store) -> None:
    assert store.cache_get("k") is None
    store.cache_put("k", {"text": "x"})
    store.cache_put("k", {"text": "y"})
    assert store.cache_get("k") == {"text": "y"}
    store.record_usage("rewrite", "m", 10, 5, cost=0.01)
    store.record_usage("rewrite", "m", 20, 5, cost=0.02)
    [row] = store.spend()
    assert row["calls"] == 2 and row["prompt_tokens"] == 30 and row["cost"] == pytest.approx(0.03)


def test_migrations_run_forward_from_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "widespec.db"
    Store(path).close()
    extra = [*MIGRATIONS, "CREATE TABLE note (id TEXT PRIMARY KEY, body TEXT);"]
    with Store(path, migrations=extra) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION + 1
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "note" in tables and "base_prompt" in tables


def test_a_workspace_from_before_audits_gains_the_audit_table_and_keeps_its_records(tmp_path: Path) -> None:
    from tests.records import example

    path = tmp_path / "widespec.db"
    with Store(path, migrations=MIGRATIONS[:2]) as old:
        old.put("variant", [example("variant")])
        assert old.schema_version == 2
    with Store(path) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION
        assert upgraded.count("variant") == 1
        upgraded.put("audit", [example("audit")])
        assert upgraded.count("audit", model="builtin:tiny-clip@0123456789ab") == 1


def test_failed_migration_leaves_the_database_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "widespec.db"
    Store(path).close()
    with pytest.raises(sqlite3.OperationalError):
        Store(path, migrations=[*MIGRATIONS, "CREATE TABLE a (x);\nTHIS IS NOT SQL;"])
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "a" not in tables


def test_database_from_a_newer_widespec_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "widespec.db"
    Store(path).close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(WidespecError, match="newer than this widespec knows"):
        Store(path)
