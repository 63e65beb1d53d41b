"""Model specs with chat-model techniques (`BASE#system-prompt(prompt=...)`, shorthand `BASE#system=...`)
at every entry point: `alignlab eval`, `alignlab serve`, the Inspect provider. The shorthand and the
general form are one code path, so they give identical transcripts on a fixed seed (sampling on)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner

from alignlab.cli.eval_cmds import eval_cmd, serve
from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.evals.backends import OpenAIChatModel, make_model
from alignlab.evals.prompting import SystemPromptModel
from tests.conftest import REPO, cli_env

pytest.importorskip("transformers")

GENERAL = "system-prompt(prompt=anti-sycophancy)"
SHORT = "system=anti-sycophancy"
CONVS = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(3)]


@pytest.fixture(scope="module")
def tiny():
    from alignlab.lm.testing import cached_tiny_llama

    return str(cached_tiny_llama())


def _eval(tiny: str, suffix: str, out) -> tuple[dict, str]:
    args = ["sycophancy-are-you-sure", "--model", f"{tiny}{suffix}", "--limit", "3", "--seed", "3",
            "--set", "temperature=1.0", "--set", "max_new_tokens=5", "--out", str(out)]
    result = CliRunner().invoke(eval_cmd, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "result.json").read_text()), (out / "transcripts.jsonl").read_text()


def test_eval_cli_general_form_equals_the_shorthand(tiny, tmp_path):
    general, general_t = _eval(tiny, f"#{GENERAL}", tmp_path / "general")
    short, short_t = _eval(tiny, f"#{SHORT}", tmp_path / "short")
    plain, plain_t = _eval(tiny, "", tmp_path / "plain")
    assert general_t == short_t and general["items"] == short["items"] and general["metrics"] == short["metrics"]
    assert general_t != plain_t  # transcripts hold the eval's messages, not the system prompt: the replies differ
    assert general["model"].endswith(f"#{GENERAL}") and short["model"].endswith(f"#{SHORT}")


def test_eval_cli_bad_technique_is_a_config_error(tmp_path):
    result = CliRunner().invoke(eval_cmd, ["framing", "--model", "embedded#quantilizer", "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, ConfigError) and "valid: " in str(result.exception) \
        and "system-prompt-v0" in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_serve_checks_the_spec_first():
    result = CliRunner().invoke(serve, ["--model", "embedded#quantilizer"])
    assert isinstance(result.exception, ConfigError) and "not on a chat model" in str(result.exception)
    result = CliRunner().invoke(serve, ["--model", f"openai:http://127.0.0.1:1/v1/m#{GENERAL}"])
    assert "needs a local model" in str(result.exception)
    result = CliRunner().invoke(serve, ["--model", f"embedded#{GENERAL}", "--port", "70000"])
    assert "--port" in str(result.exception)  # the spec passed


def test_served_name_has_no_hash():
    from alignlab.evals.server import served_name

    assert served_name("embedded") == "embedded"
    assert served_name(f"/a/b/tiny/#{GENERAL}#system=x#y") == f"tiny+{GENERAL}+system=x+y"


def test_serve_applies_the_technique_once(tiny, tmp_path):
    """`alignlab serve --model TINY#system-prompt(...)` answers like the local wrapped model; the id it
    reports, passed back as openai:<url>/<id>, is not parsed as a second system prompt."""
    proc = subprocess.Popen([sys.executable, "-m", "alignlab.cli.main", "serve", "--model", f"{tiny}#{GENERAL}",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(), cwd=str(REPO))
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        assert match, f"serve did not start: {line!r}"
        url = match.group(0)
        [entry] = json.loads(urllib.request.urlopen(f"{url}/models", timeout=10).read())["data"]
        assert "#" not in entry["id"] and entry["id"].endswith(f"+{GENERAL}")
        remote = make_model(f"openai:{url}/{entry['id']}", cache=tmp_path / "c.sqlite", timeout=30)
        assert isinstance(remote, OpenAIChatModel)
        local = make_model(f"{tiny}#{SHORT}")
        served = remote.chat(CONVS, max_new_tokens=6)
        assert served == local.chat(CONVS, max_new_tokens=6)
        assert served != make_model(tiny).chat(CONVS, max_new_tokens=6)  # the prompt reached the model
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]


def test_inspect_provider_takes_the_general_form(tiny, tmp_path):
    pytest.importorskip("inspect_ai")
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    model = get_model(f"alignlab/{tiny}#{GENERAL}")
    assert isinstance(model.api.chat_model, SystemPromptModel)
    names = ["sycophancy-answer-v0", "calibration-v0"]  # the generate path and the log-probability path
    logs = inspect_eval([f"alignlab/{n}" for n in names], model=model, log_dir=str(tmp_path), display="none",
                        task_args={"limit": 2})
    local = make_model(f"{tiny}#{SHORT}")
    for name, log in zip(names, logs):
        assert log.status == "success", log.error
        ours = registry.get("eval", name)().run(local, limit=2, seed=0)
        got = {s.id: s.scores["alignlab_score"].metadata["record"] for s in log.samples}
        assert got == {r["id"]: r for r in ours.items}, name
