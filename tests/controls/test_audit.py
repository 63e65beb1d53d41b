"""The audit log: every kind of tampering is found at the first bad record; crashes are reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alignlab.controls.audit import AuditError, AuditLog, record_hash, verify


def make_log(path: Path, n: int = 8) -> Path:
    with AuditLog(path) as log:
        for i in range(n):
            log.append("decision", {"i": i, "tool": "write_file", "action": "allow" if i % 2 else "deny"})
    return path


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_clean_log_verifies_and_chains(tmp_path):
    path = make_log(tmp_path / "a.jsonl")
    v = verify(path)
    assert v.ok and v.records == 8 and v.first_bad is None
    recs = [json.loads(x) for x in lines(path)]
    assert recs[0]["prev"] == "0" * 64
    assert all(recs[i]["prev"] == recs[i - 1]["hash"] for i in range(1, 8))
    assert all(record_hash(r) == r["hash"] for r in recs)


def edit(ls, i):
    rec = json.loads(ls[i])
    rec["data"]["action"] = "allow-everything"
    ls[i] = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()
    return ls


def edit_rehash(ls, i):  # an attacker who recomputes this record's hash lacks the key to re-sign it
    rec = json.loads(ls[i])
    rec["data"]["action"] = "edited-and-rehashed"
    rec["hash"] = record_hash(rec)
    ls[i] = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()
    return ls


@pytest.mark.parametrize("name, mutate, first_bad", [
    ("edit-first", lambda ls: edit(ls, 0), 0),
    ("edit-middle", lambda ls: edit(ls, 4), 4),
    ("edit-last", lambda ls: edit(ls, 7), 7),
    ("edit-and-rehash", lambda ls: edit_rehash(ls, 3), 3),
    ("delete-first", lambda ls: ls[1:], 0),
    ("delete-middle", lambda ls: ls[:3] + ls[4:], 3),
    ("delete-last", lambda ls: ls[:-1], 7),
    ("delete-last-three", lambda ls: ls[:-3], 5),
    ("insert-copy", lambda ls: ls[:2] + [ls[1]] + ls[2:], 2),
    ("swap-adjacent", lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:], 2),
    ("reverse", lambda ls: ls[::-1], 0),
    ("move-last-to-front", lambda ls: [ls[-1]] + ls[:-1], 0),
    ("torn-tail", lambda ls: ls[:-1] + [ls[-1][: len(ls[-1]) // 2]], 7),
    ("garbage-line", lambda ls: ls[:5] + [b"not json\n"] + ls[5:], 5),
    ("empty-file", lambda ls: [], 0),
])
def test_tampering_is_detected_at_the_first_bad_record(tmp_path, name, mutate, first_bad):
    path = make_log(tmp_path / "a.jsonl")
    path.write_bytes(b"".join(mutate(lines(path))))
    v = verify(path)
    assert not v.ok, name
    assert v.first_bad == first_bad, (name, v)


def test_rewritten_log_is_caught_by_the_head_anchor(tmp_path):
    path = make_log(tmp_path / "a.jsonl")
    other = make_log(tmp_path / "b.jsonl", n=8)  # a fully consistent forged chain of the same length
    path.write_bytes(other.read_bytes())
    v = verify(path)
    assert not v.ok and "rewritten" in v.reason


def test_truncation_mid_record_is_reported_and_blocks_appends_until_recovered(tmp_path):
    path = make_log(tmp_path / "a.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # cut inside the last record
    v = verify(path)
    assert not v.ok and v.first_bad == 7 and "torn" in v.reason
    with pytest.raises(AuditError, match="torn"):
        AuditLog(path)
    with AuditLog(path, recover=True) as log:
        log.append("decision", {"after": "recovery"})
    v = verify(path)
    assert v.ok and v.records == 9
    recs = [json.loads(x) for x in lines(path)]
    assert recs[7]["kind"] == "recovered" and recs[7]["data"]["torn_bytes"] == len(data.splitlines(True)[-1]) - 25
    assert list(tmp_path.glob("a.jsonl.torn-*"))


PAD = [20_000, 3_000_000, 3_000_000]
WRITER = textwrap.dedent("""
    import sys
    from alignlab.controls.audit import AuditLog
    log = AuditLog(sys.argv[1])
    i = 0
    print("ready", flush=True)
    while True:
        log.append("decision", {"i": i, "pad": "x" * int(sys.argv[2])})
        i += 1
""")


def test_killed_writer_leaves_a_verifiable_prefix_or_a_reported_torn_tail(tmp_path):
    path = tmp_path / "k.jsonl"
    outcomes = set()
    for attempt in range(len(PAD)):
        if path.exists():
            path.unlink()
            for p in tmp_path.glob("k.jsonl*"):
                p.unlink()
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(PAD[attempt])], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.15 + 0.05 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        v = verify(path)
        assert v.records > 0
        if v.ok:
            outcomes.add("clean")
        else:  # the only acceptable damage is a torn last record, named as such
            assert "torn" in v.reason and v.first_bad == v.records, v
            outcomes.add("torn")
            with AuditLog(path, recover=True):
                pass
            assert verify(path).ok
        with AuditLog(path) as log:  # appending continues the same chain
            log.append("session", {"restarted": True})
        assert verify(path).ok
    assert outcomes
    print("kill outcomes:", outcomes)


def test_two_writers_interleave_without_breaking_the_chain(tmp_path):
    path = tmp_path / "w.jsonl"
    a, b = AuditLog(path), AuditLog(path)
    for i in range(5):
        a.append("x", {"w": "a", "i": i})
        b.append("x", {"w": "b", "i": i})
    a.close()
    b.close()
    v = verify(path)
    assert v.ok and v.records == 10


def test_missing_head_file_is_reported(tmp_path):
    path = make_log(tmp_path / "a.jsonl")
    path.with_name("a.jsonl.head").unlink()
    assert not verify(path).ok


def test_head_slots_survive_one_torn_slot_but_not_two(tmp_path):
    from alignlab.controls.audit import SLOT

    path = make_log(tmp_path / "a.jsonl")
    head = path.with_name("a.jsonl.head")
    data = bytearray(head.read_bytes())
    data[SLOT + 5:SLOT + 40] = b"#" * 35  # a crash tore the slot being written (record 7's)
    head.write_bytes(bytes(data))
    assert verify(path).ok  # the other slot names record 6: the head lags by one, which a crash allows
    data[5:40] = b"#" * 35
    head.write_bytes(bytes(data))
    v = verify(path)
    assert not v.ok and "head file unreadable" in v.reason


def test_crash_between_append_and_head_update_is_tolerated(tmp_path):
    path = make_log(tmp_path / "a.jsonl", n=5)
    head_before = path.with_name("a.jsonl.head").read_bytes()
    with AuditLog(path) as log:
        log.append("decision", {"late": True})
    path.with_name("a.jsonl.head").write_bytes(head_before)  # as if the process died before the head write
    assert verify(path).ok
