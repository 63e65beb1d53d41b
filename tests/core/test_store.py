"""The SQLite store: one record per cell, failed cells replaced, bad stores refused."""

import sqlite3

import pytest

from alignlab.core.errors import StoreError
from alignlab.core.record import SCHEMA_VERSION, RunRecord
from alignlab.core.store import Store


def rec(seed=0, status="ok", value=1.0, version="v1"):
    return RunRecord(experiment="e-v0", config={"x": 1}, config_hash="h", seed=seed, status=status,
                     code_version=version, metrics={"specified": value})


def test_put_keeps_ok_records_and_replaces_failed_ones(tmp_path):
    with Store(tmp_path) as store:
        assert store.put(rec(status="error"))
        assert store.put(rec(value=2.0))            # failed -> replaced
        assert not store.put(rec(value=3.0))        # ok is kept ...
        assert store.put(rec(value=4.0), replace_ok=True)  # ... unless fresh
        assert store.count() == 1
        (only,) = store.records()
        assert only.metrics == {"specified": 4.0} and only.schema_version == SCHEMA_VERSION
        assert store.done_keys("e-v0", "v1") == {("h", 0)}
        assert store.done_keys("e-v0", "v2") == set()
        assert store.integrity_check() == "ok"


def test_wal_mode(tmp_path):
    with Store(tmp_path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_latest_record_per_cell_across_code_versions(tmp_path):
    with Store(tmp_path) as store:
        store.put(rec(version="v1", value=1.0))
        store.put(rec(version="v2", value=2.0))
        assert [r.metrics["specified"] for r in store.records()] == [2.0]
        assert len(store.records(latest_only=False)) == 2


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "alignlab.sqlite"
    path.write_bytes(b"this is not a database\n" * 10)
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="not an alignlab results store"):
            Store(tmp_path, readonly=readonly)
    assert path.read_bytes() == before


def test_an_sqlite_file_of_another_program_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "alignlab.sqlite")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not an alignlab results store"):
        Store(tmp_path)


def test_readonly_without_a_store_says_what_to_do(tmp_path):
    with pytest.raises(StoreError, match="run an experiment first"):
        Store(tmp_path / "missing", readonly=True)
    assert not (tmp_path / "missing").exists()
