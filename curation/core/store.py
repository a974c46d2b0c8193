"""The SQLite store: the only module that speaks SQL. Records go in validated and come out as dicts.

Every record kind has its own table holding the record as JSON plus a few indexed columns used to select
pending work. Ids are deterministic, so writing the same record twice stores it once.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from curation.core.contracts import RECORD_KINDS, validate_record
from curation.core.errors import WidespecError
from curation.core.ids import canonical_json
from curation.core.process import process_alive, process_token

Record = dict[str, Any]

# Indexed columns per record kind (each is also a field of the record itself).
INDEXED: dict[str, tuple[str, ...]] = {
    "base_prompt": ("status", "category"),
    "variant": ("base_id", "status"),
    "render": ("prompt_id", "status"),
    "pair": ("kind", "variant_id", "base_id", "model", "status"),
    "score": ("subject_id", "metric", "status"),
    "decision": ("subject_id", "stage", "outcome"),
    "annotation": ("round", "subject_id", "annotator"),
    "verdict": ("round", "subject_id", "label"),
    "release": ("version",),
    "audit": ("population", "model", "subject_id", "status"),
    "judgment": ("subject_id", "judge", "status"),
}
assert set(INDEXED) == set(RECORD_KINDS)


def _record_table(kind: str) -> str:
    columns = "".join(f", {c} {'INTEGER' if c == 'round' else 'TEXT'}" for c in INDEXED[kind])
    indexes = "".join(f"CREATE INDEX {kind}_{c} ON {kind}({c});\n" for c in INDEXED[kind])
    return f"CREATE TABLE {kind} (id TEXT PRIMARY KEY{columns}, data TEXT NOT NULL);\n{indexes}"


# Forward migrations: MIGRATIONS[i] takes a database from user_version i to i + 1.
# The record kinds the first schema had (later kinds get their tables in later migrations).
FIRST_KINDS = ("base_prompt", "variant", "render", "score", "decision", "annotation", "verdict", "release")
MIGRATIONS: list[str] = [
    "".join(_record_table(kind) for kind in FIRST_KINDS)
    + """
    CREATE TABLE run (
        id INTEGER PRIMARY KEY AUTOINCREMENT, stage TEXT NOT NULL, config_hash TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, counts TEXT, error TEXT);
    CREATE TABLE cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER, stage TEXT NOT NULL, model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cost REAL, created_at TEXT NOT NULL);
    """,
    # 2: durable state apart from the cache (round plans moved out of it); which process owns a running run.
    """
    CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
    INSERT INTO state (key, value, updated_at)
        SELECT key, value, created_at FROM cache WHERE key LIKE 'annotation:round:%';
    DELETE FROM cache WHERE key LIKE 'annotation:round:%';
    ALTER TABLE run ADD COLUMN process TEXT;
    UPDATE run SET status = 'interrupted', error = 'the process ended without finishing the run'
        WHERE status = 'running';
    """,
    # 3: reward-model audits.
    _record_table("audit"),
    # 4: VLM judgments.
    _record_table("judgment"),
    # 5: pairs as stored records (filled from the renders already stored by the workspace's backfill step).
    _record_table("pair"),
]

SCHEMA_VERSION = len(MIGRATIONS)


INTERRUPTED = "the process ended without finishing the run (killed, crashed or lost power)"
COPIED = "the workspace was backed up while this run was writing: the copy holds its finished batches"


def _alive(process: str | None) -> bool:
    if not process:
        return False
    return process_alive(int(process.split(":")[0]), process)


def utc_now() -> str:
    """The current UTC time as an ISO 8601 string (the store's only clock)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[str] = MIGRATIONS,
    backfills: Mapping[int, Callable[[], None]] | None = None,
) -> int:
    """Apply every migration past the database's user_version, each in its own transaction (with the backfill
    step of its target version, when there is one)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise WidespecError(
            f"widespec.db has schema version {version}, newer than this widespec knows ({len(migrations)}): upgrade widespec"
        )
    for target in range(version + 1, len(migrations) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migrations[target - 1]):
                conn.execute(statement)
            if backfills and target in backfills:
                backfills[target]()
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(migrations)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (complete_statement keeps quoted semicolons intact)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that can only read the database at `path` (and never creates it)."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=60)


def integrity_problems(path: Path) -> list[str]:
    """SQLite's `PRAGMA integrity_check` of the database at `path`, opened read only (a writer may keep writing
    meanwhile): the problems it reports, or why the file cannot be read as a database; [] when it is sound."""
    try:
        conn = _read_only(path)
        try:
            found = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [f"{type(exc).__name__}: {exc}"]
    return [] if found == ["ok"] else found


def backup_database(source: Path, target: Path) -> None:
    """Copy the database at `source` into a new file `target` with SQLite's online backup API, in one step: the
    copy is the database as of one instant, whatever another process commits meanwhile."""
    reader = _read_only(source)
    try:
        copy = sqlite3.connect(target)
        try:
            reader.backup(copy)
        finally:
            copy.close()
    finally:
        reader.close()


class Store:
    """A workspace's widespec.db: typed records in, typed records out, one transaction per batch."""

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[str] = MIGRATIONS,
        backfills: Mapping[int, Callable[[Store], None]] | None = None,
        read_only: bool = False,
    ) -> None:
        """Open (and migrate) the database; `backfills` are Python steps that fill what a migration adds from the
        records already stored, in that migration's transaction (by target version). `read_only` opens it for
        reading alone: nothing is migrated, and a database of another schema version is refused."""
        self.path = path
        self._depth = 0
        if read_only:
            self._conn = _read_only(path)
            self._conn.execute("PRAGMA busy_timeout=60000")
            if self.schema_version != len(migrations):
                found = self.schema_version
                self._conn.close()
                hint = "run `widespec status` once to migrate it" if found < len(migrations) else "upgrade widespec"
                raise WidespecError(
                    f"{path.name} has schema version {found}, this widespec reads {len(migrations)}: {hint}"
                )
            return
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=60000")
        steps = {version: partial(self._inside_migration, step) for version, step in (backfills or {}).items()}
        migrate(self._conn, migrations, steps)

    def _inside_migration(self, step: Callable[[Store], None]) -> None:
        """Run a backfill step inside the migration's own transaction (its writes join it)."""
        self._depth = 1
        try:
            step(self)
        finally:
            self._depth = 0

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all; nested blocks join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth = 0

    # -- records -----------------------------------------------------------------------------------------

    def put(self, kind: str, records: Iterable[Record], *, on_conflict: Literal["ignore", "replace"] = "ignore") -> int:
        """Validate and write records; returns how many rows were added or changed.

        `ignore` keeps an existing record with the same id (re-imports add nothing); `replace` overwrites it
        (a retried failure becoming a success) unless only its `created_at` differs.
        """
        columns = INDEXED[kind]
        rows = []
        for record in records:
            validate_record(kind, record)
            rows.append((record["id"], *(record[c] for c in columns), canonical_json(record)))
        if not rows:
            return 0
        names = ", ".join(("id", *columns, "data"))
        marks = ", ".join("?" * (len(columns) + 2))
        if on_conflict == "ignore":
            conflict = "DO NOTHING"
        else:
            updates = ", ".join(f"{c} = excluded.{c}" for c in (*columns, "data"))
            # A record that differs only in when it was written is unchanged: reruns rewrite nothing.
            unchanged = "json_remove(data, '$.created_at') = json_remove(excluded.data, '$.created_at')"
            conflict = f"DO UPDATE SET {updates} WHERE NOT ({unchanged})"
        sql = f"INSERT INTO {kind} ({names}) VALUES ({marks}) ON CONFLICT(id) {conflict}"
        with self.transaction():
            before = self._conn.total_changes
            self._conn.executemany(sql, rows)
            return self._conn.total_changes - before

    def get(self, kind: str, record_id: str) -> Record | None:
        row = self._conn.execute(f"SELECT data FROM {self._table(kind)} WHERE id = ?", (record_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def iter(self, kind: str, *, written_order: bool = False, **filters: Any) -> Iterator[Record]:
        """Records of `kind` in id order (or in the order they were first written), filtered by equality on
        indexed columns (a list means IN)."""
        where, params = self._where(kind, filters)
        order = "rowid" if written_order else "id"
        cursor = self._conn.execute(f"SELECT data FROM {kind}{where} ORDER BY {order}", params)
        for (data,) in cursor:
            yield json.loads(data)

    def ids(self, kind: str, **filters: Any) -> set[str]:
        where, params = self._where(kind, filters)
        return {row[0] for row in self._conn.execute(f"SELECT id FROM {kind}{where}", params)}

    def count(self, kind: str, **filters: Any) -> int:
        where, params = self._where(kind, filters)
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {kind}{where}", params).fetchone()[0])

    def counts_by(self, kind: str, column: str, **filters: Any) -> dict[str, int]:
        """Row counts grouped by one indexed column (of the rows `filters` select, as `iter` reads them)."""
        if column not in INDEXED[self._table(kind)]:
            raise KeyError(f"{kind} has no indexed column {column!r}")
        where, params = self._where(kind, filters)
        rows = self._conn.execute(
            f"SELECT {column}, COUNT(*) FROM {kind}{where} GROUP BY {column} ORDER BY {column}", params
        )
        return {str(value): n for value, n in rows}

    def delete(self, kind: str, record_ids: Iterable[str]) -> int:
        """Remove records by id (used only to undo work the user asked to redo)."""
        with self.transaction():
            before = self._conn.total_changes
            self._conn.executemany(f"DELETE FROM {self._table(kind)} WHERE id = ?", [(i,) for i in record_ids])
            return self._conn.total_changes - before

    # -- stage ledger --------------------------------------------------------------------------------------

    def start_run(self, stage: str, config_hash: str) -> int:
        """A ledger row for a stage run of this process (`running` until finished, or found dead)."""
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO run (stage, config_hash, started_at, status, counts, process) "
                "VALUES (?, ?, ?, 'running', '{}', ?)",
                (stage, config_hash, utc_now(), process_token(os.getpid())),
            )
        return int(cursor.lastrowid or 0)

    def update_run(self, run_id: int, counts: dict[str, Any]) -> None:
        """The run's counts so far (written in the batch's own transaction, so a killed run shows its part)."""
        with self.transaction():
            self._conn.execute("UPDATE run SET counts = ? WHERE id = ?", (canonical_json(counts), run_id))

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any], error: str | None = None) -> None:
        with self.transaction():
            self._conn.execute(
                "UPDATE run SET finished_at = ?, status = ?, counts = ?, error = ? WHERE id = ?",
                (utc_now(), status, canonical_json(counts), error, run_id),
            )

    def reap_runs(self, *, copied: bool = False) -> int:
        """Mark `running` runs whose process is gone (killed, crashed, power lost) as `interrupted`; `copied`: all
        of them (in a backup's copy of the database, no process runs them)."""
        dead = [run_id for run_id, process in self._running() if copied or not _alive(process)]
        with self.transaction():
            self._conn.executemany(
                "UPDATE run SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
                [(COPIED if copied else INTERRUPTED, run_id) for run_id in dead],
            )
        return len(dead)

    def _running(self) -> list[tuple[int, str | None]]:
        return [(int(r[0]), r[1]) for r in self._conn.execute("SELECT id, process FROM run WHERE status = 'running'")]

    def runs(self, limit: int = 10, stage: str | None = None) -> list[Record]:
        """The latest stage runs, newest first; a run whose process died reads as `interrupted`."""
        sql = "SELECT id, stage, config_hash, started_at, finished_at, status, counts, error, process FROM run"
        params: tuple[Any, ...] = ()
        if stage:
            sql, params = sql + " WHERE stage = ?", (stage,)
        rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        keys = ("id", "stage", "config_hash", "started_at", "finished_at", "status", "counts", "error")
        found = []
        for row in rows:
            run = {**dict(zip(keys, row[:8], strict=True)), "counts": json.loads(row[6] or "{}")}
            if run["status"] == "running" and not _alive(row[8]):
                run["status"], run["error"] = "interrupted", INTERRUPTED
            found.append(run)
        return found

    # -- durable state -------------------------------------------------------------------------------------

    def state_get(self, key: str) -> Any | None:
        """Durable state (round plans, scorer ids): never deleted with the cache."""
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def state_put(self, key: str, value: Any) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at "
                "WHERE state.value != excluded.value",
                (key, canonical_json(value), utc_now()),
            )

    def state_keys(self, prefix: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT key FROM state WHERE key >= ? AND key < ? ORDER BY key", (prefix, prefix + "\uffff")
        )
        return [r[0] for r in rows]

    def state_items(self, prefix: str) -> dict[str, Any]:
        """Every durable state entry whose key starts with `prefix`, in key order (one query)."""
        rows = self._conn.execute(
            "SELECT key, value FROM state WHERE key >= ? AND key < ? ORDER BY key", (prefix, prefix + "\uffff")
        )
        return {key: json.loads(value) for key, value in rows}

    # -- cache and spend -------------------------------------------------------------------------------------

    def cache_get(self, key: str) -> Any | None:
        row = self._conn.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def cache_clear(self) -> int:
        """Delete every cached answer; returns how many were deleted (nothing durable is lost)."""
        with self.transaction():
            before = self._conn.total_changes
            self._conn.execute("DELETE FROM cache")
            return self._conn.total_changes - before

    def cache_put(self, key: str, value: Any) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO cache (key, value, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, canonical_json(value), utc_now()),
            )

    def record_usage(
        self,
        stage: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float | None = None,
        run_id: int | None = None,
    ) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO usage (run_id, stage, model, prompt_tokens, completion_tokens, cost, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, stage, model, prompt_tokens, completion_tokens, cost, utc_now()),
            )

    def spend(self) -> list[Record]:
        """Calls, tokens and cost per stage and model."""
        rows = self._conn.execute(
            "SELECT stage, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost) "
            "FROM usage GROUP BY stage, model ORDER BY stage, model"
        ).fetchall()
        keys = ("stage", "model", "calls", "prompt_tokens", "completion_tokens", "cost")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- helpers -------------------------------------------------------------------------------------------

    @staticmethod
    def _table(kind: str) -> str:
        if kind not in INDEXED:
            raise KeyError(f"unknown record kind {kind!r}")
        return kind

    def _where(self, kind: str, filters: dict[str, Any]) -> tuple[str, list[Any]]:
        allowed = INDEXED[self._table(kind)]
        clauses, params = [], []
        for column, value in filters.items():
            if column not in (*allowed, "id"):
                raise KeyError(f"{kind} has no indexed column {column!r}")
            if isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
                params.extend(values)
            elif value is None:
                clauses.append(f"{column} IS NULL")
            else:
                clauses.append(f"{column} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
