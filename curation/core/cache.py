"""The response cache and spend rows of paid calls, through a connection of its own to the workspace database.

Stages never write records outside the executor, but answers of paid calls (LLM rewrites, moderation results)
must be kept the moment they are paid for, so that a killed run never pays twice. `ResponseCache` writes
those, and only those: the `cache` and `usage` tables of widespec.db (created by the store's migrations).
A cache is a cache: deleting its rows loses nothing durable. It is a plain value (the database path) until
first used, so a compute that holds one stays picklable.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curation.core.ids import canonical_json
from curation.core.store import utc_now

# SQLite's default limit on host parameters is 999 on older builds: stay below it per lookup.
_LOOKUP_CHUNK = 900


class ResponseCache:
    """Cached answers by key, and the usage of each paid call, in the workspace database at `path`."""

    def __init__(self, path: Path, *, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout_s": self.timeout_s, "_conn": None}

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.timeout_s, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def get(self, key: str) -> Any | None:
        row = self._db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of those `keys` that have one (one query per 900 keys)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM cache WHERE key IN ({marks})", chunk):
                found[key] = json.loads(value)
        return found

    def put(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            self._put(db, key, value)

    def record_call(
        self,
        key: str | None,
        answer: Any,
        *,
        stage: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float | None = None,
        run_id: int | None = None,
    ) -> None:
        """The usage row of one paid call and, when `key` is given, its answer, in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO usage (run_id, stage, model, prompt_tokens, completion_tokens, cost, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, stage, model, prompt_tokens, completion_tokens, cost, utc_now()),
            )
            if key is not None:
                self._put(db, key, answer)

    @staticmethod
    def _put(db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute(
            "INSERT INTO cache (key, value, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, canonical_json(value), utc_now()),
        )
