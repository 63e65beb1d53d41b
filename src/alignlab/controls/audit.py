"""Append-only, hash-chained JSONL audit log with fsync, a head anchor, and verification.

The chain follows the tamper-evident logging idea of Schneier & Kelsey, "Secure audit logs
to support computer forensics" (ACM TISSEC 1999) and Crosby & Wallach (USENIX Security
2009): each record carries the previous record's hash, so an edit, deletion, insertion or
reordering breaks the chain at the first bad index. A head file (last index and hash in two
alternating checksummed slots, written after each fsynced append) detects records cut from
the end; a torn last line (a crash mid-write) is reported, never silently accepted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from alignlab.core.errors import UserError

GENESIS = "0" * 64
FIELDS = ("i", "ts", "kind", "data", "prev", "hash")


class AuditError(UserError):
    """The audit log cannot be appended to safely (torn or broken tail)."""


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces, UTF-8): what hashes are computed over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def record_hash(rec: dict) -> str:
    return hashlib.sha256(canonical({k: rec[k] for k in ("i", "ts", "kind", "data", "prev")})).hexdigest()


@dataclass
class Verification:
    ok: bool
    records: int
    first_bad: int | None = None
    reason: str = ""
    head_hash: str = GENESIS

    def line(self) -> str:
        if self.ok:
            return f"ok: {self.records} records, chain intact, head {self.head_hash[:16]}"
        return f"TAMPERED or damaged at record {self.first_bad}: {self.reason}"


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


SLOT = 128  # the head file holds two fixed-size slots, written alternately: a torn write spoils one at most


def _slot_bytes(i: int, h: str) -> bytes:
    body = json.dumps({"i": i, "hash": h, "check": hashlib.sha256(f"{i}:{h}".encode()).hexdigest()[:16]})
    return body.encode().ljust(SLOT - 1) + b"\n"


def read_head(head: Path) -> tuple[int, str] | None:
    """The newest valid (index, hash) slot of a head file, or None if neither slot is valid."""
    data = head.read_bytes()
    best = None
    for k in range(0, min(len(data), 2 * SLOT), SLOT):
        try:
            d = json.loads(data[k:k + SLOT])
            i, h = int(d["i"]), str(d["hash"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            continue
        if d.get("check") == hashlib.sha256(f"{i}:{h}".encode()).hexdigest()[:16] and (best is None or i > best[0]):
            best = (i, h)
    return best


def read_records(path: str | Path) -> Iterator[tuple[int, dict | None, bytes]]:
    """Yield (line index, parsed record or None if unparsable, raw line) for each line."""
    with open(path, "rb") as fh:
        for idx, raw in enumerate(fh):
            try:
                rec = json.loads(raw) if raw.endswith(b"\n") else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                rec = None
            yield idx, rec, raw


def verify(path: str | Path) -> Verification:
    """Check every record's hash and link, the index sequence, the tail, and the head anchor."""
    path = Path(path)
    if not path.exists():
        return Verification(False, 0, 0, f"no audit log at {path}")
    prev, count, hashes = GENESIS, 0, []
    for idx, rec, raw in read_records(path):
        if not raw.endswith(b"\n"):
            return Verification(False, count, idx, f"torn last record ({len(raw)} bytes without a newline): "
                                "a crash mid-write or a truncated file", prev)
        if not isinstance(rec, dict) or set(rec) != set(FIELDS):
            return Verification(False, count, idx, "unparsable or malformed record", prev)
        if rec["i"] != idx:
            return Verification(False, count, idx, f"index {rec['i']!r} at position {idx}: "
                                "a record was deleted, inserted or moved", prev)
        if rec["prev"] != prev:
            return Verification(False, count, idx, "prev hash does not match the previous record: "
                                "a record was deleted, inserted or reordered", prev)
        if record_hash(rec) != rec["hash"]:
            return Verification(False, count, idx, "record hash mismatch: the record was edited", prev)
        prev, count = rec["hash"], count + 1
        hashes.append(prev)
    head = _head_path(path)
    if head.exists():
        slot = read_head(head)
        if slot is None:
            return Verification(False, count, count, "head file unreadable", prev)
        hi, hh = slot
        if hi < 0:
            return Verification(False, count, 0, f"head file names an invalid index {hi}", prev)
        if hi >= count:
            return Verification(False, count, count, f"head says record {hi} exists but the log has {count}: "
                                "records were cut from the end", prev)
        # The head may lag the log (crash between the fsynced append and the head update),
        # but the record it names must be in the chain unchanged.
        if hashes[hi] != hh:
            return Verification(False, count, hi, "record named by the head file has a different hash: "
                                "the log was rewritten", prev)
    elif count:
        return Verification(False, count, count, "head file missing", prev)
    return Verification(True, count, None, "", prev)


class AuditLog:
    """Single-writer append-only log. Each `append` is flock-ed, written, flushed and fsync-ed.

    Opening a log whose last line is torn raises AuditError unless `recover=True`, which
    moves the torn bytes to a side file and appends an explicit `recovered` record.
    `fsync=False` trades crash durability for speed (benchmarks, tests of the policy alone).
    """

    def __init__(self, path: str | Path, fsync: bool = True, recover: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._head_fd = -1
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._lock()
        try:
            self._load_tail(recover)
        finally:
            self._unlock()

    def _lock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _load_tail(self, recover: bool) -> None:
        check = verify(self.path) if os.fstat(self._fd).st_size else Verification(True, 0)
        if check.ok:
            self._next, self._prev = check.records, check.head_hash
            self._size = os.fstat(self._fd).st_size
            return
        torn = check.reason.startswith("torn")
        if not (recover and torn):
            hint = " (open with recover=True / --recover-audit to record the damage and continue)" if torn else ""
            raise AuditError(f"audit log {self.path}: {check.line()}{hint}")
        with open(self.path, "rb") as fh:
            data = fh.read()
        keep = data.rfind(b"\n") + 1
        torn_bytes = data[keep:]
        side = self.path.with_name(f"{self.path.name}.torn-{int(time.time() * 1000)}")
        side.write_bytes(torn_bytes)
        os.ftruncate(self._fd, keep)
        self._next, self._prev = check.records, check.head_hash
        self._size = keep
        self._append_locked("recovered", {"torn_bytes": len(torn_bytes),
                                           "torn_sha256": hashlib.sha256(torn_bytes).hexdigest(),
                                           "saved_to": side.name})

    def append(self, kind: str, data: dict) -> dict:
        self._lock()
        try:
            if os.fstat(self._fd).st_size != self._size:  # another writer appended: re-read the tail
                self._load_tail(recover=False)
            return self._append_locked(kind, data)
        finally:
            self._unlock()

    def _append_locked(self, kind: str, data: dict) -> dict:
        rec = {"i": self._next, "ts": round(time.time(), 6), "kind": kind, "data": data, "prev": self._prev}
        rec["hash"] = record_hash(rec)
        line = canonical(rec) + b"\n"
        os.write(self._fd, line)
        if self.fsync:
            os.fsync(self._fd)
        self._write_head(rec)
        self._next, self._prev = self._next + 1, rec["hash"]
        self._size += len(line)
        return rec

    def _write_head(self, rec: dict) -> None:
        # One pwrite into the slot this record's parity picks; written after the record itself, so the head
        # can lag the log (tolerated by verify) but never lead it.
        if self._head_fd < 0:
            self._head_fd = os.open(_head_path(self.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.pwrite(self._head_fd, _slot_bytes(rec["i"], rec["hash"]), (rec["i"] % 2) * SLOT)

    @property
    def head(self) -> tuple[int, str]:
        return self._next - 1, self._prev

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._head_fd >= 0:
            os.close(self._head_fd)
            self._head_fd = -1

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class MemoryAudit:
    """An in-memory chain with the same interface (for benchmarks and throwaway guards)."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._prev = GENESIS

    def append(self, kind: str, data: dict) -> dict:
        rec = {"i": len(self.records), "ts": round(time.time(), 6), "kind": kind, "data": data, "prev": self._prev}
        rec["hash"] = record_hash(rec)
        self.records.append(rec)
        self._prev = rec["hash"]
        return rec

    @property
    def head(self) -> tuple[int, str]:
        return len(self.records) - 1, self._prev

    def close(self) -> None:
        pass
