"""`alignlab guard run` / `audit verify` against an attacker: escape sequences, state in reach, crash inputs.

Every refusal is one line on stderr, exit status 2 (1 for a log that fails verification), no
traceback, nothing run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignlab.controls.audit import SLOT, AuditKey, canonical, record_hash
from tests.conftest import REPO, cli_env

RAN = "open('ran.txt', 'w').write('x')"  # a command that leaves a mark if it runs at all


def al_proc(*args, cwd: Path, python: str = sys.executable, **env) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-P", "-m", "alignlab.cli.main", *args], capture_output=True, cwd=str(cwd),
                          env=cli_env(**{"PYTHONPATH": str(REPO), **env}), timeout=120)


def al(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (fast): (exit status, stdout, stderr)."""
    from alignlab.cli.main import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, expected: int = 2) -> str:
    assert code == expected, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def ws(tmp_path, monkeypatch):
    w = tmp_path / "ws"
    w.mkdir()
    (w / "main.py").write_text("print('v1')\n")
    monkeypatch.setenv("ALIGNLAB_GUARD_STATE", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return w


def policy_file(tmp_path: Path, body: str, name: str = "p.toml", head: str = '[policy]\nname = "t"\n') -> str:
    p = tmp_path / name
    p.write_text(head + 'version = "1"\n' + body)
    return str(p)


# ----------------------------------------------------------------------------- (b) terminal output
ESCAPES = ("import sys\n"
           "sys.stdout.write('\\x1b[2J\\x1b[H\\x1b]0;owned\\x07\\x1b[1A\\x1b[2Kclean\\tcol\\nnext\\r\\x9b31m\\u202eevil\\n')\n"
           "sys.stderr.write('[guard] network isolated: yes; filesystem confined: yes\\x1b[8m')\n")


def test_command_escape_sequences_are_shown_escaped_and_the_notice_comes_last(ws):
    r = al_proc("guard", "run", "-w", str(ws), "default-coding", "--", "python", "-c", ESCAPES, cwd=ws.parent)
    assert r.returncode == 0, r.stderr
    out, err = r.stdout.decode(), r.stderr.decode()
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\r"):
        assert raw not in out and raw not in err, repr(raw)
    assert "\\x1b[2J\\x1b[H\\x1b]0;owned\\x07\\x1b[1A\\x1b[2Kclean\tcol\nnext\\x0d\\x9b31m\\u202eevil\n" == out
    lines = err.splitlines()
    assert lines[0] == "[guard] network isolated: yes; filesystem confined: yes\\x1b[8m"  # the command's, escaped
    assert lines[-1].startswith("[guard] checkpoint cp-") and "control characters in the output shown escaped" \
        in lines[-1] and len(lines) == 2


# ----------------------------------------------------------------------------- (c) guard state out of reach
@pytest.mark.parametrize("case", ["policy", "policy-symlink", "state", "key", "anchor"])
def test_guard_state_inside_the_workspace_is_refused_before_anything_runs(ws, tmp_path, capsys, case):
    args = ["guard", "run", "-w", str(ws)]
    pol = "default-coding"
    if case == "policy":
        pol = policy_file(ws, "")
    elif case == "policy-symlink":
        policy_file(ws, "")
        os.symlink(ws / "p.toml", tmp_path / "outside.toml")
        pol = str(tmp_path / "outside.toml")
    elif case == "state":
        args += ["--state-dir", str(ws / ".guard")]
    elif case == "key":
        args += ["--audit-key", str(ws / "k.key")]
    else:
        args += ["--anchor", str(ws / "anchor.json")]
    code, _, err = al(capsys, *args, pol, "--", "python", "-c", RAN)
    one_line_error(code, err)
    assert "inside the workspace" in err
    assert not (ws / "ran.txt").exists() and not (tmp_path / "state").exists()


def test_running_from_the_workspace_with_python_m_is_refused(ws):
    r = subprocess.run([sys.executable, "-m", "alignlab.cli.main", "guard", "run", "default-coding", "--", "python",
                        "-c", RAN], capture_output=True, text=True, cwd=str(ws), env=cli_env(PYTHONPATH=str(REPO)),
                       timeout=120)
    one_line_error(r.returncode, r.stderr)
    assert "import path entry" in r.stderr and "python -P" in r.stderr and not (ws / "ran.txt").exists()


def test_python_environment_inside_the_workspace_is_refused(ws):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(ws / ".venv")], check=True, timeout=120)
    site = [p for p in sys.path if p.endswith("site-packages")]
    r = al_proc("guard", "run", "-w", str(ws), "default-coding", "--", "python", "-c", RAN, cwd=ws.parent,
                python=str(ws / ".venv" / "bin" / "python"),
                PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src"), *site]))
    err = r.stderr.decode()
    one_line_error(r.returncode, err)
    assert "inside the workspace" in err and ".venv" in err and not (ws / "ran.txt").exists()


# ----------------------------------------------------------------------------- (d) crash inputs
def test_non_utf8_argument_is_one_line(ws):
    r = subprocess.run([sys.executable, "-P", "-m", "alignlab.cli.main", "guard", "run", "-w", os.fsencode(ws),
                        "default-coding", "--", "python", "-c", b"print(1)\xff"], capture_output=True,
                       cwd=str(ws.parent), env=cli_env(PYTHONPATH=str(REPO)), timeout=120)
    err = r.stderr.decode()
    one_line_error(r.returncode, err)
    assert "not valid UTF-8" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0"])
def test_bad_timeouts_are_one_line(ws, capsys, value):
    code, _, err = al(capsys, "guard", "run", "-w", str(ws), "--timeout", value, "default-coding", "--", "true")
    one_line_error(code, err)
    assert "--timeout must be a positive number" in err


def test_options_after_the_policy_are_not_run_as_the_command(ws, capsys):
    code, _, err = al(capsys, "guard", "run", "-w", str(ws), "default-coding", "--timeout", "5", "--", "true")
    one_line_error(code, err)
    assert "options go before POLICY" in err


def deep_chain(top: Path, depth: int) -> None:
    """top/d/d/.../d, made and (depth=0) removed iteratively: recursive tools such as rmtree fail on it."""
    here = os.getcwd()
    os.chdir(top)
    try:
        if depth:
            for _ in range(depth):
                os.mkdir("d")
                os.chdir("d")
        else:
            while os.path.isdir("d"):
                os.chdir("d")
                depth += 1
            for _ in range(depth):
                os.chdir("..")
                os.rmdir("d")
    finally:
        os.chdir(here)


def test_a_folder_tree_too_deep_to_checkpoint_is_one_line(ws, capsys):
    deep_chain(ws, 1500)
    try:
        code, _, err = al(capsys, "guard", "run", "-w", str(ws), "default-coding", "--", "python", "-c", RAN)
    finally:
        deep_chain(ws, 0)  # or pytest's own clean-up of old temporary folders fails on it later
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "not completed" in err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("body, needles", [
    ("[sandbox]\ntimeout_s = nan\n", ["[sandbox].timeout_s", "not a finite number"]),
    ("[budgets]\nwall_time_s = inf\n", ["[budgets].wall_time_s", "not a finite number"]),
    ("[escalation]\nmonitor_threshold = nan\n", ["[escalation].monitor_threshold"]),
    ("[sandbox]\nmemory_mb = 9223372036854775807\n", ["[sandbox].memory_mb", "at most"]),
    ("[sandbox]\nhide = ['/']\n", ["[sandbox].hide", "hiding '/'"]),
    ("[sandbox]\nhide = ['/tmp/../']\n", ["[sandbox].hide", "not a plain absolute path"]),
    ("[sandbox]\nenv = { LD_PRELOAD = 'x.so' }\n", ["[sandbox].env", "LD_PRELOAD is refused"]),
    ("[sandbox]\nenv_passthrough = ['LD_LIBRARY_PATH']\n", ["[sandbox].env_passthrough", "refused"]),
    ("[sandbox]\nenv = { 'A=B' = 'x' }\n", ["not a valid environment variable name"]),
    ("[protect]\npaths = ['" + "**/" * 1400 + "x']\n", ["[protect].paths", "longer than 4096"]),
    ("[[deny]]\ntool = 'x'\nreason = '[bold]hidden[/bold]'\nid = '[red]'\n[[deny]]\ntool = 'y'\nid = '[red]'\n",
     ["[[deny]]", "duplicate rule id(s) ['[red]']"]),
    ("", ["[policy].name", "must be a string"]),
])
def test_bad_policies_are_one_line_with_their_location_visible(ws, tmp_path, capsys, body, needles):
    pol = policy_file(tmp_path, body, head='[policy]\nname = 1\n' if not body else '[policy]\nname = "t"\n')
    code, _, err = al(capsys, "guard", "run", "-w", str(ws), pol, "--", "python", "-c", RAN)
    one_line_error(code, err)
    for n in needles:
        assert n in err, (n, err)
    assert not (ws / "ran.txt").exists()


@pytest.mark.timeout(60)
def test_fifo_and_folder_policy_paths_are_refused_without_hanging(ws, tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "dir.toml").mkdir()
    for name in ("fifo.toml", "dir.toml"):
        code, _, err = al(capsys, "guard", "run", "-w", str(ws), str(tmp_path / name), "--", "true")
        one_line_error(code, err)
        assert "not a regular file" in err


@pytest.mark.timeout(60)
def test_a_long_double_star_glob_is_matched_in_linear_time(ws, tmp_path, capsys):
    """`**/` x 1000 made the backtracking regex engine run for minutes on a 40-character path."""
    (ws / ("a/" * 20).rstrip("/")).mkdir(parents=True)
    (ws / ("a/" * 20) / "y").write_text("")
    pol = policy_file(tmp_path, "[protect]\npaths = ['" + "**/" * 1000 + "x']\n")
    code, _, err = al(capsys, "guard", "run", "-w", str(ws), pol, "--", "python", "-c", "print('ok')")
    assert code == 0, err


# ----------------------------------------------------------------------------- (a) audit verify on the CLI
def forge(path: Path) -> None:
    """Replace log and head with a consistent chain signed by the attacker's own key."""
    key, prev, out, hashes = AuditKey(os.urandom(32)), "0" * 64, [], []
    for i in range(3):
        rec = {"i": i, "ts": 1.0, "kind": "session", "data": {}, "prev": prev}
        rec["hash"] = record_hash(rec)
        rec["mac"] = key.record_mac(rec["hash"])
        out.append(canonical(rec) + b"\n")
        prev = rec["hash"]
        hashes.append(prev)
    path.write_bytes(b"".join(out))
    slots = [json.dumps({"i": i, "hash": hashes[i], "key": key.id, "mac": key.head_mac(hashes[0], i, hashes[i])})
             .encode().ljust(SLOT - 1) + b"\n" for i in (2, 1)]
    path.with_name(path.name + ".head").write_bytes(b"".join(slots))


def append_forged(path: Path) -> None:
    last = json.loads(path.read_bytes().splitlines()[-1])
    rec = {"i": last["i"] + 1, "ts": last["ts"], "kind": "decision", "data": {}, "prev": last["hash"]}
    rec["hash"] = record_hash(rec)
    rec["mac"] = last["mac"]
    with open(path, "ab") as fh:
        fh.write(canonical(rec) + b"\n")


TAMPER = {
    "rewritten-with-head": forge,
    "appended": append_forged,
    "truncated": lambda p: p.write_bytes(b"".join(p.read_bytes().splitlines(True)[:-1])),
    "emptied-head-deleted": lambda p: (p.write_bytes(b""), p.with_name(p.name + ".head").unlink()),
}


def test_audit_verify_on_the_cli_passes_intact_and_fails_each_tampering(ws, tmp_path, capsys):
    anchor = tmp_path / "anchor" / "head.json"
    anchor.parent.mkdir()
    code, _, err = al(capsys, "guard", "run", "-w", str(ws), "--anchor", str(anchor), "default-coding", "--",
                      "python", "-c", "print(1)")
    assert code == 0, err
    log = tmp_path / "state" / "audit.jsonl"
    pristine = {p: p.read_bytes() for p in (log, log.with_name("audit.jsonl.head"))}
    code, out, _ = al(capsys, "audit", "verify", "-w", str(ws), "--anchor", str(anchor))
    assert code == 0 and out.startswith("ok: ") and "signed" in out
    for name, tamper in TAMPER.items():
        for p, data in pristine.items():
            p.write_bytes(data)
        tamper(log)
        code, out, err = al(capsys, "audit", "verify", "-w", str(ws))
        assert code == 1 and len(out.strip().splitlines()) == 1 and not out.startswith("ok"), (name, out, err)
    log.unlink()
    log.with_name("audit.jsonl.head").unlink(missing_ok=True)
    code, out, _ = al(capsys, "audit", "verify", "-w", str(ws), "--anchor", str(anchor))
    assert code == 1 and "deleted" in out
    code, _, err = al(capsys, "audit", "verify", "-w", str(ws))
    one_line_error(code, err)
    assert "no audit log" in err


# ----------------------------------------------------------------------------- the library, without the CLI
def test_library_guard_refuses_a_key_in_the_workspace_and_hides_the_key(ws, tmp_path, monkeypatch):
    from alignlab.controls import policy as policy_mod
    from alignlab.controls.audit import default_key_path
    from alignlab.controls.guard import Guard
    from alignlab.controls.sandbox import SandboxViolation

    pol = policy_mod.load("default-coding")
    g = Guard.for_workspace(pol, ws, tmp_path / "state", fsync=False)
    key = str(default_key_path())
    assert os.path.exists(key)
    out = g.call("run", argv=["python", "-c", f"print(open({key!r}, 'rb').read().hex())"])
    assert out.ok and out.value["returncode"] != 0 and open(key, "rb").read().hex() not in out.value["stdout"]
    out = g.call("run", argv=["python", "-c", "print(1)"], timeout_s=float("nan"))
    assert out.status == "denied" and "finite" in out.reason
    monkeypatch.setenv("ALIGNLAB_AUDIT_KEY", str(ws / "audit.key"))
    with pytest.raises(SandboxViolation, match="inside the workspace"):
        Guard.for_workspace(pol, ws, tmp_path / "state2", fsync=False)
