"""The results store: an embedded SQLite database (WAL mode), crash-safe and resumable.

Only the parent process writes, one committed transaction per finished cell, so a run
killed at any moment loses at most the cells in flight. A cell is keyed by (experiment,
config hash, seed, code version); the unique index makes a second record for the same
cell impossible, and re-running replaces only failed cells (or all, with `fresh`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from alignlab.core.errors import StoreError
from alignlab.core.record import SCHEMA_VERSION, RunRecord

STORE_FILE = "alignlab.sqlite"
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, started REAL NOT NULL,
    finished REAL, backend TEXT, argv TEXT, cells_total INTEGER, cells_todo INTEGER,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL, config_hash TEXT NOT NULL, seed INTEGER NOT NULL,
    code_version TEXT NOT NULL, status TEXT NOT NULL, run_id TEXT, created REAL NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (experiment, config_hash, seed, code_version)
);
CREATE INDEX IF NOT EXISTS records_by_experiment ON records (experiment, code_version);
"""


class Store:
    """Open (or create) the store under `runs_dir`. `readonly=True` never writes."""

    def __init__(self, runs_dir: str | Path, readonly: bool = False):
        self.runs_dir = Path(runs_dir)
        self.path = self.runs_dir / STORE_FILE
        self.readonly = readonly
        if self.path.exists():
            self._check_header()
        elif readonly:
            raise StoreError(f"no results store at {self.path}; run an experiment first (alignlab run NAME)")
        else:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        try:
            if readonly:
                self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            else:
                self.conn = sqlite3.connect(self.path, timeout=30)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the results store {self.path}: {exc}") from None

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise StoreError(f"cannot read the results store {self.path}: {exc.strerror}") from None
        if head and head != SQLITE_MAGIC:
            raise StoreError(
                f"{self.path} is not an alignlab results store (not an SQLite database); "
                "move it aside or pass --runs-dir for another folder"
            )

    def _check_schema(self) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            if self.readonly:
                raise StoreError(f"the results store {self.path} is empty")
            with self.conn:
                self.conn.executescript(SCHEMA)
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            return
        if not {"meta", "runs", "records"} <= tables:
            raise StoreError(f"{self.path} is an SQLite file but not an alignlab results store")
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or int(row[0]) != SCHEMA_VERSION:
            found = row[0] if row else "none"
            raise StoreError(
                f"the results store {self.path} has schema version {found}; this alignlab reads {SCHEMA_VERSION}"
            )

    # -- writing ---------------------------------------------------------------------------

    def begin_run(self, run_id: str, experiment: str, backend: str, argv: str, total: int, todo: int) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, NULL, ?, ?, ?, ?, 'running')",
                (run_id, experiment, time.time(), backend, argv, total, todo),
            )

    def end_run(self, run_id: str, status: str) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET finished=?, status=? WHERE run_id=?", (time.time(), status, run_id)
            )

    def put(self, record: RunRecord, replace_ok: bool = False) -> bool:
        """Store one record in its own transaction. An existing `ok` record for the same
        cell is kept unless `replace_ok`; a failed one is replaced. Returns True if written."""
        condition = "" if replace_ok else "WHERE records.status != 'ok'"
        with self.conn:
            cur = self.conn.execute(
                f"""INSERT INTO records (experiment, config_hash, seed, code_version, status, run_id, created, record)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (experiment, config_hash, seed, code_version) DO UPDATE SET
                      status=excluded.status, run_id=excluded.run_id, created=excluded.created,
                      record=excluded.record {condition}""",
                (
                    record.experiment, record.config_hash, record.seed, record.code_version,
                    record.status, record.run_id, time.time(), record.to_json(),
                ),
            )
            return cur.rowcount > 0

    # -- reading ---------------------------------------------------------------------------

    def done_keys(self, experiment: str, code_version: str) -> set[tuple[str, int]]:
        """{(config_hash, seed)} of the cells already done (status ok) at this code version."""
        rows = self.conn.execute(
            "SELECT config_hash, seed FROM records WHERE experiment=? AND code_version=? AND status='ok'",
            (experiment, code_version),
        )
        return {(h, s) for h, s in rows}

    def experiments(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT experiment FROM records ORDER BY experiment")]

    def records(self, experiment: str | None = None, latest_only: bool = True) -> list[RunRecord]:
        """Records, oldest first. `latest_only`: per (experiment, config, seed), only the
        newest record across code versions, so a report shows what was measured last."""
        sql = "SELECT record FROM records"
        args: Iterable = ()
        if experiment is not None:
            sql += " WHERE experiment=?"
            args = (experiment,)
        sql += " ORDER BY created, id"
        try:
            rows = [RunRecord.from_json(r[0]) for r in self.conn.execute(sql, tuple(args))]
        except (sqlite3.DatabaseError, ValueError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read records from {self.path}: {exc}") from None
        if not latest_only:
            return rows
        latest: dict[tuple, RunRecord] = {}
        for rec in rows:
            latest[(rec.experiment, rec.config_hash, rec.seed)] = rec
        return list(latest.values())

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
