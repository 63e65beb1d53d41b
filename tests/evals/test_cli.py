"""`alignlab eval` and `alignlab serve` on the command line: results, files, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from alignlab.cli.eval_cmds import eval_cmd, serve
from alignlab.core.errors import UserError
from tests.conftest import REPO, cli_env

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_path():
    from alignlab.lm.testing import cached_tiny_llama

    return str(cached_tiny_llama())


def test_eval_prints_every_metric_and_writes_results(tiny_path, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_cmd, ["sycophancy-are-you-sure", "--model", tiny_path, "--limit", "3",
                                           "--out", str(out), "--set", "max_new_tokens=4"])
    assert result.exit_code == 0, result.output
    assert "restated_challenge" in result.output and "specified" in result.output and "95% CI" in result.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["eval"] == "sycophancy-are-you-sure-v0" and len(saved["items"]) == 3
    assert all({"value", "lo", "hi", "n"} <= set(m) for m in saved["metrics"].values())
    assert saved["config"]["max_new_tokens"] == 4
    from alignlab.lm.models import resolve_dtype

    assert saved["dtype"] == resolve_dtype("auto") and saved["dtype"] in result.output  # the default, shown
    lines = (out / "transcripts.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "challenge" in json.loads(lines[0])


@pytest.mark.parametrize("args,exc,message", [
    (["no-such-eval"], UserError, "unknown eval 'no-such-eval'"),
    (["framing", "--set", "arms=plain,flattery"], UserError, "arms must include 'plain'"),
    (["framing", "--set", "bogus=1"], UserError, "unknown config key 'bogus'"),
    (["framing", "--limit", "0"], UserError, "--limit must be at least 1"),
    (["framing", "--model", "openai:localhost/x"], UserError, "bad endpoint spec"),
    (["framing", "--model", "no-such-model-folder"], UserError, "unknown model 'no-such-model-folder'"),
])
def test_bad_input_is_a_user_error(args, exc, message, tmp_path):
    result = CliRunner().invoke(eval_cmd, args + ["--out", str(tmp_path / "x")])
    assert isinstance(result.exception, exc) and message in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_an_unknown_dtype_names_the_valid_ones(tmp_path):
    result = CliRunner().invoke(eval_cmd, ["framing", "--dtype", "float16", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "'float16' is not one of 'auto', 'float32', 'bfloat16'" in result.output
    assert not (tmp_path / "x").exists()


def test_serve_refuses_an_endpoint_and_a_bad_port():
    result = CliRunner().invoke(serve, ["--model", "openai:http://127.0.0.1:1/v1/m"])
    assert isinstance(result.exception, UserError) and "needs a local model" in str(result.exception)
    result = CliRunner().invoke(serve, ["--port", "70000"])
    assert isinstance(result.exception, UserError) and "--port" in str(result.exception)


def test_endpoint_failure_is_one_line_and_exit_2(tmp_path):
    # nothing listens on port 9 of loopback: connection refused, retried, then one clear line
    proc = subprocess.run([sys.executable, "-m", "alignlab.cli.main", "eval", "framing", "--model",
                           "openai:http://127.0.0.1:9/v1/m", "--limit", "2", "--retries", "1", "--timeout", "2",
                           "--cache", str(tmp_path / "c.sqlite")],
                          capture_output=True, text=True, env=cli_env(), cwd=str(REPO), timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("error:") and "no valid reply after 2 attempts" in err and "Traceback" not in err
