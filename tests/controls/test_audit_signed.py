"""The signed audit log: a rewritten, forged, appended-to, truncated or emptied log fails; an intact one passes.

The attacker here can write the log, its head file and (where said) keep old copies of them,
but cannot read the key (it lives outside the workspace and is hidden from the sandbox).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from alignlab.controls.audit import (SLOT, AuditError, AuditKey, AuditLog, canonical, default_key_path,
                                     record_hash, verify)


def make_log(path: Path, n: int = 6, **kw) -> Path:
    with AuditLog(path, **kw) as log:
        for i in range(n):
            log.append("decision", {"i": i, "tool": "run", "action": "allow"})
    return path


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def head(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def forge_chain(n: int, key: AuditKey | None = None) -> tuple[bytes, bytes]:
    """A fully consistent chain and head signed with `key` (an attacker's own key if given, else unsigned)."""
    prev, out, hashes = "0" * 64, [], []
    for i in range(n):
        rec = {"i": i, "ts": 1.0 + i, "kind": "decision", "data": {"forged": True}, "prev": prev}
        rec["hash"] = record_hash(rec)
        rec["mac"] = key.record_mac(rec["hash"]) if key else "0" * 64
        out.append(canonical(rec) + b"\n")
        prev = rec["hash"]
        hashes.append(prev)
    chain = hashes[0]
    slots = b""
    for i in (n - 2, n - 1) if n % 2 == 0 else (n - 1, n - 2):
        mac = key.head_mac(chain, i, hashes[i]) if key else "0" * 64
        slots += json.dumps({"i": i, "hash": hashes[i], "key": key.id if key else "x", "mac": mac}).encode().ljust(
            SLOT - 1) + b"\n"
    return b"".join(out), slots


def test_intact_log_verifies_with_signed_records_and_a_private_key(tmp_path, audit_key_dir):
    path = make_log(tmp_path / "a.jsonl")
    v = verify(path)
    assert v.ok and v.records == 6 and "signed" in v.line()
    recs = [json.loads(x) for x in lines(path)]
    key = AuditKey.load()
    assert all(r["mac"] == key.record_mac(r["hash"]) for r in recs)
    st = os.stat(default_key_path())
    assert default_key_path().parent == audit_key_dir and stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32


def test_key_is_created_on_first_use_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLAB_AUDIT_KEY", str(tmp_path / "k" / "audit.key"))
    make_log(tmp_path / "a.jsonl", 1)
    first = (tmp_path / "k" / "audit.key").read_bytes()
    make_log(tmp_path / "b.jsonl", 1)
    assert (tmp_path / "k" / "audit.key").read_bytes() == first and len(first) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "k").st_mode) == 0o700


@pytest.mark.parametrize("name", ["unsigned-forgery", "attackers-own-key"])
def test_log_and_head_rewritten_together_fail(tmp_path, name):
    path = make_log(tmp_path / "a.jsonl")
    log_bytes, head_bytes = forge_chain(6, AuditKey(os.urandom(32)) if name == "attackers-own-key" else None)
    path.write_bytes(log_bytes)
    head(path).write_bytes(head_bytes)
    v = verify(path)
    assert not v.ok and v.first_bad == 0 and "signature" in v.reason, v


def test_correctly_chained_record_appended_at_the_end_fails(tmp_path):
    path = make_log(tmp_path / "a.jsonl")
    last = json.loads(lines(path)[-1])
    rec = {"i": last["i"] + 1, "ts": last["ts"] + 1, "kind": "decision", "data": {"action": "allow-all"},
           "prev": last["hash"]}
    rec["hash"] = record_hash(rec)
    rec["mac"] = "ab" * 32
    with open(path, "ab") as fh:
        fh.write(canonical(rec) + b"\n")
    v = verify(path)
    assert not v.ok and v.first_bad == 6 and "signature" in v.reason


def test_edited_and_rehashed_record_fails_at_that_record(tmp_path):
    path = make_log(tmp_path / "a.jsonl")
    ls = lines(path)
    rec = json.loads(ls[2])
    rec["data"]["action"] = "deny"
    rec["hash"] = record_hash(rec)
    ls[2] = canonical(rec) + b"\n"
    path.write_bytes(b"".join(ls))
    v = verify(path)
    assert not v.ok and v.first_bad == 2


@pytest.mark.parametrize("name, mutate", [
    ("cut-last-keep-head", lambda p: p.write_bytes(b"".join(lines(p)[:-1]))),
    ("cut-last-delete-head", lambda p: (p.write_bytes(b"".join(lines(p)[:-1])), head(p).unlink())),
    # cut the last record and spoil the head slot that names it, so the other (older, genuine) slot is the newest
    ("cut-last-spoil-its-slot", lambda p: (p.write_bytes(b"".join(lines(p)[:-1])),
                                           head(p).write_bytes(head(p).read_bytes()[:SLOT] + b"#" * SLOT))),
    ("cut-two", lambda p: p.write_bytes(b"".join(lines(p)[:-2]))),
    ("emptied-keep-head", lambda p: p.write_bytes(b"")),
    ("emptied-delete-head", lambda p: (p.write_bytes(b""), head(p).unlink())),
])
def test_truncated_or_emptied_log_fails(tmp_path, name, mutate):
    path = make_log(tmp_path / "a.jsonl")  # 6 records: record 5's slot is the second one
    mutate(path)
    v = verify(path)
    assert not v.ok and v.first_bad is not None, (name, v)
    assert "ok" not in v.line()


def test_unsigned_log_from_before_signing_is_named_as_such(tmp_path):
    path = tmp_path / "old.jsonl"
    rec = {"i": 0, "ts": 1.0, "kind": "session", "data": {}, "prev": "0" * 64}
    rec["hash"] = record_hash(rec)
    path.write_bytes(canonical(rec) + b"\n")
    v = verify(path)
    assert not v.ok and "not signed" in v.reason
    with pytest.raises(AuditError, match="not signed"):
        AuditLog(path)


def test_wrong_or_missing_key_cannot_verify(tmp_path, monkeypatch):
    path = make_log(tmp_path / "a.jsonl")
    other = tmp_path / "other.key"
    AuditKey.load(other, create=True)
    v = verify(path, key=other)
    assert not v.ok and "another key" in v.reason
    v = verify(path, key=tmp_path / "missing.key")
    assert not v.ok and v.first_bad is None and "no audit key" in v.line() and v.line().startswith("NOT VERIFIED")


@pytest.mark.parametrize("problem", ["mode", "symlink", "hardlink", "size"])
def test_unsafe_key_files_are_refused(tmp_path, problem):
    key = tmp_path / "k.key"
    AuditKey.load(key, create=True)
    if problem == "mode":
        key.chmod(0o644)
        match = "mode 644"
    elif problem == "symlink":
        os.symlink(key, tmp_path / "link.key")
        key = tmp_path / "link.key"
        match = "symbolic links"
    elif problem == "hardlink":
        os.link(key, tmp_path / "second-name")
        match = "hard links"
    else:
        key.write_bytes(b"short")
        match = "exactly 32 bytes"
    with pytest.raises(AuditError, match=match):
        AuditLog(tmp_path / "a.jsonl", key=key)


def test_anchor_catches_a_rollback_to_an_old_head_and_a_deleted_log(tmp_path):
    anchor = tmp_path / "elsewhere" / "anchor.json"
    anchor.parent.mkdir()
    path = make_log(tmp_path / "a.jsonl", 4, anchor=anchor)
    assert verify(path, anchor=anchor).ok
    old_log, old_head = path.read_bytes(), head(path).read_bytes()
    with AuditLog(path, anchor=anchor) as log:
        log.append("decision", {"action": "something to hide"})
        log.append("decision", {"action": "something else"})
    assert verify(path, anchor=anchor).ok and json.loads(anchor.read_bytes())["i"] == 5
    # The attacker restores the older log and its (genuine, signed) head: the chain alone cannot tell...
    path.write_bytes(old_log)
    head(path).write_bytes(old_head)
    assert verify(path).ok
    # ...the anchor can.
    v = verify(path, anchor=anchor)
    assert not v.ok and "anchor names record 5" in v.reason
    # And a log deleted with its head.
    path.unlink()
    head(path).unlink()
    v = verify(path, anchor=anchor)
    assert not v.ok and "deleted" in v.reason
    with pytest.raises(AuditError):  # the writer refuses to start a new chain under an anchor naming records
        AuditLog(path, anchor=anchor)


def test_anchor_of_another_log_does_not_vouch(tmp_path):
    a_anchor = tmp_path / "a.anchor"
    make_log(tmp_path / "a.jsonl", 3, anchor=a_anchor)
    b = make_log(tmp_path / "b.jsonl", 3)
    v = verify(b, anchor=a_anchor)
    assert not v.ok and "anchor" in v.reason


def test_crash_lag_is_repaired_by_the_next_writer(tmp_path):
    path = make_log(tmp_path / "a.jsonl", 5)
    before = head(path).read_bytes()
    with AuditLog(path) as log:
        log.append("decision", {"late": True})
    head(path).write_bytes(before)  # the process died between the append and the head write
    assert verify(path).ok
    with AuditLog(path) as log:  # opening rewrites both head slots
        pass
    assert verify(path).ok
    # Now the head is current: cutting the last record is caught even if the newest slot is spoilt
    path.write_bytes(b"".join(lines(path)[:-1]))
    data = bytearray(head(path).read_bytes())
    data[SLOT:] = b"#" * SLOT  # record 5's slot
    head(path).write_bytes(bytes(data))
    assert not verify(path).ok


def test_undecodable_arguments_are_logged_and_verify(tmp_path):
    path = tmp_path / "a.jsonl"
    with AuditLog(path) as log:
        log.append("decision", {"argv": ["python", "-c", "\udcff\udc80"], "k\udcfe": 1})
    v = verify(path)
    assert v.ok, v
    rec = json.loads(lines(path)[0])
    assert rec["data"]["argv"][2] == "\\udcff\\udc80"
