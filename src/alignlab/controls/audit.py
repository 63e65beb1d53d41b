"""Append-only, hash-chained and signed JSONL audit log with fsync, a signed head, an optional anchor, and verification.

The chain follows the tamper-evident logging idea of Schneier & Kelsey, "Secure audit logs
to support computer forensics" (ACM TISSEC 1999) and Crosby & Wallach, "Efficient data
structures for tamper-evident logging" (USENIX Security 2009): each record carries the
previous record's hash, so an edit, deletion, insertion or reordering breaks the chain at
the first bad index. A hash chain alone anchors nothing: whoever can write the log can
rewrite it whole, append correctly chained records, or empty it. So every record and the
head are also authenticated with a secret key (HMAC-SHA256, RFC 2104), kept outside the
workspace and the sandbox (default `~/.alignlab/guard/audit.key`, mode 0600, created on
first use), as Schneier & Kelsey authenticate each entry with a key the attacker lacks:

- each record carries `mac` = HMAC(key, its hash): a forged, rewritten or appended record fails;
- a head file (last index and hash, signed and bound to the log's first record, in two
  alternating slots written after each fsynced append) detects records cut from the end;
  the head may lag the log by one record (a crash between the append and the head write);
- an empty log with no head is reported, never "ok: 0 records";
- optionally the signed head is also written to an anchor file in a second location
  (`anchor=`; `alignlab guard run --anchor`), and `verify(..., anchor=)` checks the log still
  reaches it: this catches a log deleted, emptied or truncated together with its head.

A torn last line (a crash mid-write) is reported, never silently accepted. What a key kept
by the same user cannot stop: someone who can read the key can forge everything, and
someone who kept an old head file can roll the log back to it unless an anchor is checked.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from alignlab.core.errors import UserError

GENESIS = "0" * 64
FIELDS = ("i", "ts", "kind", "data", "prev", "hash", "mac")
HASHED = ("i", "ts", "kind", "data", "prev")
KEY_ENV = "ALIGNLAB_AUDIT_KEY"
KEY_BYTES = 32


class AuditError(UserError):
    """The audit log cannot be appended to safely (torn or broken tail, unusable key)."""


def _scrub(obj: Any) -> Any:
    """A copy with lone surrogates (undecodable bytes, e.g. from non-UTF-8 argv) written as `\\udcff` text."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in obj)
    if isinstance(obj, dict):
        return {_scrub(k) if isinstance(k, str) else k: _scrub(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_scrub(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    return _scrub(str(obj))


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces, UTF-8): what hashes are computed over.

    Text that is not valid Unicode (lone surrogates) is written as `\\uXXXX` text, so every
    value has canonical bytes and parsing them back gives the same bytes again.
    """
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(_scrub(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode("utf-8")


def record_hash(rec: dict) -> str:
    return hashlib.sha256(canonical({k: rec[k] for k in HASHED})).hexdigest()


# --------------------------------------------------------------------------- the key
def default_key_path() -> Path:
    """$ALIGNLAB_AUDIT_KEY, else ~/.alignlab/guard/audit.key (beside the default state folders)."""
    env = os.environ.get(KEY_ENV)
    return Path(os.path.abspath(os.path.expanduser(env))) if env else Path.home() / ".alignlab" / "guard" / "audit.key"


class AuditKey:
    """The HMAC-SHA256 key that signs records and heads. `load` checks it is a private regular file."""

    def __init__(self, secret: bytes, path: Path | None = None):
        if len(secret) < 16:
            raise AuditError("audit key too short (at least 16 bytes)")
        self._secret = bytes(secret)
        self.path = path
        self.id = hashlib.sha256(b"alignlab-audit-key-id\n" + self._secret).hexdigest()[:16]

    def sign(self, label: str, *parts: Any) -> str:
        msg = "\n".join([label, *map(str, parts)]).encode("utf-8")
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def record_mac(self, rec_hash: str) -> str:
        return self.sign("alignlab-audit-record-v1", rec_hash)

    def head_mac(self, chain: str, i: int, h: str) -> str:
        return self.sign("alignlab-audit-head-v1", chain, i, h)

    @classmethod
    def load(cls, path: str | Path | None = None, create: bool = False) -> "AuditKey":
        """Read the key (a 0600 regular file of the caller, one link, 32 bytes); `create` makes one if missing."""
        p = Path(os.path.abspath(os.path.expanduser(str(path)))) if path is not None else default_key_path()
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            if not create:
                raise AuditError(f"no audit key at {p} (give --audit-key or set {KEY_ENV}); "
                                 "without it the log's signatures cannot be checked") from None
            _create_key(p)
            return cls.load(p, create=False)
        except OSError as exc:
            raise AuditError(f"audit key {p}: cannot open ({exc.strerror}"
                             + ("; symbolic links are refused" if exc.errno == errno.ELOOP else "") + ")") from None
        try:
            st = os.fstat(fd)
            problem = None
            if not stat.S_ISREG(st.st_mode):
                problem = "not a regular file"
            elif st.st_uid != os.geteuid():
                problem = f"owned by uid {st.st_uid}, not by you"
            elif st.st_mode & 0o077:
                problem = f"readable or writable by others (mode {stat.S_IMODE(st.st_mode):o}; chmod 600)"
            elif st.st_nlink != 1:
                problem = f"has {st.st_nlink} hard links (a second name could be in reach of the agent)"
            if problem:
                raise AuditError(f"audit key {p}: {problem}")
            secret = os.read(fd, KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(secret) != KEY_BYTES:
            raise AuditError(f"audit key {p}: must hold exactly {KEY_BYTES} bytes, holds {len(secret)}")
        return cls(secret, p)


def _create_key(p: Path) -> None:
    """Write a fresh random key: temp file, fsync, then link(2) into place (atomic create-if-absent)."""
    try:
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, p)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(tmp)
        dfd = os.open(p.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise AuditError(f"cannot create the audit key {p}: {exc.strerror or exc}") from None


def _as_key(key: "AuditKey | str | Path | None", create: bool) -> AuditKey:
    return key if isinstance(key, AuditKey) else AuditKey.load(key, create=create)


# --------------------------------------------------------------------------- verification
@dataclass
class Verification:
    ok: bool
    records: int
    first_bad: int | None = None
    reason: str = ""
    head_hash: str = GENESIS
    chain: str | None = None  # the first record's hash: the log's identity, bound into every signed head
    tail: tuple = ()  # (index, hash) of the last two records, oldest first

    def line(self) -> str:
        if self.ok:
            return f"ok: {self.records} records, chain intact and signed, head {self.head_hash[:16]}"
        if self.first_bad is None:
            return f"NOT VERIFIED: {self.reason}"
        return f"TAMPERED or damaged at record {self.first_bad}: {self.reason}"


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


SLOT = 256  # the head file holds two fixed-size slots, written alternately: a torn write spoils one at most


def _head_body(key: AuditKey, chain: str, i: int, h: str) -> dict:
    return {"i": i, "hash": h, "key": key.id, "mac": key.head_mac(chain, i, h)}


def _slot_bytes(key: AuditKey, chain: str, i: int, h: str) -> bytes:
    return json.dumps(_head_body(key, chain, i, h), sort_keys=True).encode().ljust(SLOT - 1) + b"\n"


def _signed(d: Any, key: AuditKey, chain: str | None) -> tuple[int, str] | None:
    """(index, hash) of a parsed head body whose signature is valid for this key and chain, else None."""
    try:
        i, h, mac = d["i"], d["hash"], d["mac"]
    except (KeyError, TypeError):
        return None
    if type(i) is not int or not isinstance(h, str) or not isinstance(mac, str) or chain is None:
        return None
    return (i, h) if hmac.compare_digest(mac, key.head_mac(chain, i, h)) else None


def read_slots(head: Path) -> list[Any]:
    """The parsed bodies of the head file's two slots (None for an unreadable slot)."""
    data = head.read_bytes()[:2 * SLOT]
    out = []
    for k in range(0, 2 * SLOT, SLOT):
        try:
            out.append(json.loads(data[k:k + SLOT]) if data[k:k + SLOT].strip() else None)
        except (ValueError, UnicodeDecodeError):
            out.append(None)
    return out


def read_records(path: str | Path) -> Iterator[tuple[int, dict | None, bytes]]:
    """Yield (line index, parsed record or None if unparsable, raw line) for each line."""
    with open(path, "rb") as fh:
        for idx, raw in enumerate(fh):
            try:
                rec = json.loads(raw) if raw.endswith(b"\n") else None
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                rec = None
            yield idx, rec, raw


def verify(path: str | Path, key: AuditKey | str | Path | None = None,
           anchor: str | Path | None = None, *, _recovering: bool = False) -> Verification:
    """Check every record's hash, link and signature, the index sequence, the tail, the signed head and the anchor.

    `key`: an AuditKey or a key file (default: `default_key_path()`; never created here).
    `anchor`: a file written by `AuditLog(..., anchor=)`; the log must still hold the record it names.
    """
    path = Path(path)
    try:
        k = _as_key(key, create=False)
    except AuditError as exc:
        return Verification(False, 0, None, str(exc))
    anchored = None
    if anchor is not None:
        try:
            anchored = json.loads(Path(anchor).read_bytes())
        except FileNotFoundError:
            return Verification(False, 0, None, f"no anchor file at {anchor}")
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            return Verification(False, 0, None, f"anchor file {anchor} unreadable: {exc}")
        if not isinstance(anchored, dict):
            return Verification(False, 0, None, f"anchor file {anchor} unreadable: not a JSON object")
    if not path.exists():
        if anchored is not None:
            return Verification(False, 0, 0, f"no audit log at {path}, but the anchor names record "
                                f"{anchored.get('i')!r}: the log was deleted")
        return Verification(False, 0, None, f"no audit log at {path}")
    prev, count, hashes = GENESIS, 0, []

    def bad(at: int | None, why: str) -> Verification:
        return Verification(False, count, at, why, prev, hashes[0] if hashes else None)

    try:
        for idx, rec, raw in read_records(path):
            if not raw.endswith(b"\n"):
                return bad(idx, f"torn last record ({len(raw)} bytes without a newline): "
                           "a crash mid-write or a truncated file")
            if isinstance(rec, dict) and set(rec) == set(FIELDS) - {"mac"}:
                return bad(idx, "record is not signed: written by an alignlab older than signed logs, or forged "
                           "(move the old log aside to start a new one)")
            if not isinstance(rec, dict) or set(rec) != set(FIELDS):
                return bad(idx, "unparsable or malformed record")
            if rec["i"] != idx or type(rec["i"]) is not int:
                return bad(idx, f"index {rec['i']!r} at position {idx}: a record was deleted, inserted or moved")
            if rec["prev"] != prev:
                return bad(idx, "prev hash does not match the previous record: "
                           "a record was deleted, inserted or reordered")
            if record_hash(rec) != rec["hash"]:
                return bad(idx, "record hash mismatch: the record was edited")
            if not isinstance(rec["mac"], str) or not hmac.compare_digest(rec["mac"], k.record_mac(rec["hash"])):
                return bad(idx, f"record signature invalid for key {k.id}: the record was forged or rewritten "
                           "(or the log was signed with another key)")
            prev, count = rec["hash"], count + 1
            hashes.append(prev)
    except OSError as exc:
        return bad(None, f"cannot read {path}: {exc.strerror or exc}")
    chain = hashes[0] if hashes else None
    head = _head_path(path)
    if not head.exists():
        if count:
            return bad(count, "head file missing: deleted (or the writer crashed before its first head write)")
        return bad(0, "empty log and no head file: the log was emptied (or a writer crashed before its first "
                   "record); nothing anchors it")
    try:
        slots = read_slots(head)
    except OSError as exc:
        return bad(count, f"head file unreadable: {exc.strerror or exc}")
    if count == 0:
        return bad(0, "the log is empty but a head file exists: its records were removed")
    valid = [s for s in (_signed(d, k, chain) for d in slots) if s is not None]
    if not valid:
        if any(isinstance(d, dict) for d in slots):
            ids = {d.get("key") for d in slots if isinstance(d, dict)}
            other = f" (head signed with key {', '.join(map(str, ids))}, checking with {k.id})" \
                if k.id not in ids else ""
            return bad(0, "head signature does not match this log: the log or its head was rewritten" + other)
        return bad(count, "head file unreadable")
    # Recovery (the operator asked to record the damage and go on) may cut one torn record the head already names.
    cut = _recovering and any(s[0] == count for s in valid) and any(s[0] < count for s in valid)
    hi, hh = max(s for s in valid if s[0] < count) if cut else max(valid)
    if hi >= count:
        return bad(count, f"head says record {hi} exists but the log has {count}: records were cut from the end")
    if hashes[hi] != hh:
        return bad(hi, "record named by the head file has a different hash: the log was rewritten")
    lag = count - 1 - hi
    if lag > 1:
        return bad(hi + 1, f"{lag} records after the signed head (record {hi}): appended without the writer")
    if lag == 0 and hi > 0 and not cut:
        # A healthy head holds two signed slots for records of this chain; a crash can tear only the slot being
        # written, and then the log holds the record it was for (lag 1). Here the log ends at the head, so a
        # missing or bad second slot means the end was cut and the head rolled back.
        others = [s for s in valid if s[0] < hi and hashes[s[0]] == s[1]]
        if not others:
            return bad(count, f"the head's second slot is missing or damaged while the log ends at record {hi}: "
                       "records were cut from the end and the head rolled back")
    if anchored is not None:
        a = _signed(anchored, k, chain)
        if a is None:
            return bad(0, f"anchor {anchor} is not signed for this log with key {k.id}: "
                       "the log was replaced, or the anchor belongs to another log")
        ai, ah = a
        if cut and ai == count and count:
            ai, ah = count - 1, hashes[-1]  # the anchor named the torn record being recovered
        if ai >= count:
            return bad(count, f"the anchor names record {ai} but the log has {count}: records were cut from the end")
        if hashes[ai] != ah:
            return bad(ai, "record named by the anchor has a different hash: the log was rewritten")
    tail = tuple((i, hashes[i]) for i in range(max(0, count - 2), count))
    return Verification(True, count, None, "", prev, chain, tail)


# --------------------------------------------------------------------------- the writer
class AuditLog:
    """Single-writer append-only log. Each `append` is flock-ed, signed, written, flushed and fsync-ed.

    Opening a log whose last line is torn raises AuditError unless `recover=True`, which
    moves the torn bytes to a side file and appends an explicit `recovered` record.
    `fsync=False` trades crash durability for speed (benchmarks, tests of the policy alone).
    `key`: the signing key (an AuditKey or a key file; default `default_key_path()`, created on first use).
    `anchor`: a second file that receives the signed head after each append (see `verify`).
    """

    def __init__(self, path: str | Path, fsync: bool = True, recover: bool = False,
                 key: AuditKey | str | Path | None = None, anchor: str | Path | None = None):
        self.path = Path(path)
        self.key = _as_key(key, create=True)
        self.key_path = self.key.path
        self.anchor = Path(anchor) if anchor is not None else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._head_fd = -1
        self._chain: str | None = None
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
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
        anchor = self.anchor if self.anchor is not None and self.anchor.exists() else None
        fresh = (not os.fstat(self._fd).st_size and not _head_path(self.path).exists() and anchor is None)
        check = Verification(True, 0) if fresh else verify(self.path, self.key, anchor)
        if check.ok:
            self._next, self._prev, self._chain = check.records, check.head_hash, check.chain
            self._size = os.fstat(self._fd).st_size
            for i, h in check.tail:  # rewrite both head slots: a head lagging after a crash is current again
                self._write_head(i, h)
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
        again = verify(self.path, self.key, anchor, _recovering=True) if keep else Verification(True, 0)
        if not again.ok and keep:
            raise AuditError(f"audit log {self.path}: after cutting the torn record: {again.line()}")
        self._next, self._prev, self._chain = again.records, again.head_hash, again.chain
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
        rec["mac"] = self.key.record_mac(rec["hash"])
        line = canonical(rec) + b"\n"
        os.write(self._fd, line)
        if self.fsync:
            os.fsync(self._fd)
        if self._chain is None:
            self._chain = rec["hash"]
        self._write_head(rec["i"], rec["hash"])
        self._next, self._prev = self._next + 1, rec["hash"]
        self._size += len(line)
        return rec

    def _write_head(self, i: int, h: str) -> None:
        # One pwrite into the slot this record's parity picks; written after the record itself, so the head
        # can lag the log by one record (tolerated by verify) but never lead it. Then the anchor, if any.
        if self._head_fd < 0:
            self._head_fd = os.open(_head_path(self.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                                    0o600)
        os.pwrite(self._head_fd, _slot_bytes(self.key, self._chain, i, h), (i % 2) * SLOT)
        if self.fsync:
            os.fsync(self._head_fd)
        if self.anchor is not None:
            body = {**_head_body(self.key, self._chain, i, h), "chain": self._chain, "log": str(self.path.resolve())}
            tmp = self.anchor.with_name(f".{self.anchor.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, json.dumps(body, sort_keys=True).encode() + b"\n")
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.anchor)

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
    """An in-memory chain with the same interface (for benchmarks and throwaway guards; not signed)."""

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
