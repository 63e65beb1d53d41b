"""Real outside clients against `alignlab serve` on loopback, each run as its users run it: Inspect AI's
`openai-api` provider, lm-evaluation-harness's `local-completions` (log-likelihood: echo + logprobs) and
`local-chat-completions` models, and garak's `openai.OpenAICompatible` generator on one probe. The server
serves the tiny random Llama from a thread of this process; lm-eval and garak run as subprocesses from
`.venv-clients` (`make clients`: they pin other versions of openai and transformers than ours). Every
answer a client records is checked against the local model computed here, not against the server.
The official `openai` client's coverage of every parameter and error is in test_serve.py."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / ".venv-clients" / "bin" / "python"
QUESTIONS = [{"question": "The capital of France is", "choices": ["Paris", "Rome"], "answer": 0},
             {"question": "Two plus two is", "choices": ["four", "five", "six"], "answer": 0}]
GARAK_PROBE = "lmrc.Anthropomorphisation"  # 6 prompts; its detector (lmrc.Anthro) is a word list: no download


@pytest.fixture(scope="module")
def tiny():
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.testing import cached_tiny_llama

    return LocalChatModel.load(str(cached_tiny_llama()))


@pytest.fixture(scope="module")
def srv(tiny):
    from alignlab.evals.server import start

    server = start(tiny, request_timeout=120)
    yield server
    server.stop()


def _greedy_chat(tiny, text: str, max_tokens: int, stops: list[str]) -> str:
    """The reply the server must give at temperature 0: the local model's, cut at the first stop sequence."""
    full = tiny.chat([[{"role": "user", "content": text}]], max_new_tokens=max_tokens)[0]
    cut = min([full.index(s) for s in stops if s in full], default=len(full))
    return full[:cut].strip()


def _logprob(tiny, context_ids: list[int], continuation_ids: list[int]) -> tuple[float, bool]:
    """(sum of log P(continuation | context), whether every continuation token is the argmax), from the model."""
    import torch

    with torch.no_grad():
        logits = tiny.model(torch.tensor([context_ids + continuation_ids])).logits[0].float()
    logp = torch.log_softmax(logits[len(context_ids) - 1:-1], dim=-1)
    cont = torch.tensor(continuation_ids)
    return float(logp[torch.arange(len(cont)), cont].sum()), bool((logp.argmax(-1) == cont).all())


# lm-evaluation-harness through its Python API (`lm_eval.simple_evaluate`, what the `lm_eval` command calls), with a
# TaskManager that indexes only the task folder given: indexing the thousands of built-in tasks costs ~20 s.
LM_EVAL = textwrap.dedent("""
    import json, sys
    import lm_eval
    from lm_eval.tasks import TaskManager

    url, name, tokenizer, tasks, out = sys.argv[1:]
    manager = TaskManager(include_path=tasks, include_defaults=False)
    runs = {"local-completions": ("tiny_loglikelihood", f"base_url={url}/completions,tokenizer={tokenizer},"
                                                        "tokenizer_backend=huggingface", False),
            "local-chat-completions": ("tiny_generate", f"base_url={url}/chat/completions", True)}
    result = {}
    for model, (task, args, chat) in runs.items():
        res = lm_eval.simple_evaluate(model=model, model_args=f"model={name},max_retries=1," + args, tasks=[task],
                                      task_manager=manager, log_samples=True, apply_chat_template=chat)
        result[model] = {"results": res["results"][task], "samples": res["samples"][task]}
    with open(out, "w") as f:
        json.dump(result, f, default=str)
""")


def _tasks(folder: Path) -> Path:
    """A two-question JSONL set and two lm-eval task files over it (no dataset download)."""
    folder.mkdir()
    data = folder / "questions.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    common = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
              'doc_to_text: "{{question}}"\n')
    (folder / "tiny_loglikelihood.yaml").write_text(
        "task: tiny_loglikelihood\n" + common + 'output_type: multiple_choice\ndoc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\nmetric_list:\n  - metric: acc\n    aggregation: mean\n'
        "    higher_is_better: true\n")
    (folder / "tiny_generate.yaml").write_text(
        "task: tiny_generate\n" + common + 'output_type: generate_until\ndoc_to_target: "{{choices[answer]}}"\n'
        'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 8\n  do_sample: false\n'
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n")
    return folder


@pytest.fixture(scope="module")
def started(srv, tmp_path_factory):
    """lm-eval and garak started at once against the server, so they run while the Inspect test does; each of
    their tests waits for its own. None without `.venv-clients`."""
    if not CLIENTS.exists():
        yield None
        return
    tmp = tmp_path_factory.mktemp("clients")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp / "hf"),
           "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config"),
           "XDG_CACHE_HOME": str(tmp / "cache"), "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    name = srv.app.state.model_name
    from alignlab.lm.testing import cached_tiny_llama

    tokenizer = str(cached_tiny_llama())  # lm-eval tokenizes the log-likelihood requests itself
    lm_out = tmp / "lm_eval.json"
    with open(tmp / "lm_eval.log", "w") as log:  # files, not pipes: a full pipe would stall the client
        lm_eval = subprocess.Popen([str(CLIENTS), "-c", LM_EVAL, srv.url, name, tokenizer,
                                    str(_tasks(tmp / "tasks")), str(lm_out)], env=env, cwd=tmp, stdout=log,
                                   stderr=subprocess.STDOUT)
    options = {"openai": {"OpenAICompatible": {"uri": srv.url, "api_key": "none", "max_tokens": 16,
                                               "temperature": 0}}}
    (tmp / "garak.json").write_text(json.dumps(options))
    with open(tmp / "garak.log", "w") as log:
        garak = subprocess.Popen([str(CLIENTS), "-m", "garak", "--target_type", "openai.OpenAICompatible",
                                  "--target_name", name, "--generator_option_file", str(tmp / "garak.json"),
                                  "--spec", f"probes.{GARAK_PROBE}", "--generations", "1", "--report_prefix", "tiny"],
                                 env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    runs = {"lm_eval": (lm_eval, lm_out, tmp / "lm_eval.log"),
            "garak": (garak, tmp / "data" / "garak" / "garak_runs" / "tiny.report.jsonl", tmp / "garak.log")}
    yield runs
    for proc, *_ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def clients(started):
    if started is None:
        message = f"{CLIENTS.parent.parent.name} is missing: `make clients` installs lm-eval and garak there"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return started


def _finish(runs, which: str, timeout: float = 240) -> Path:
    proc, out, log = runs[which]
    proc.wait(timeout=timeout)
    assert proc.returncode == 0 and out.exists(), f"{which} exited {proc.returncode}:\n{log.read_text()[-4000:]}"
    return out


def test_inspect_openai_api_provider(srv, started, tiny, tmp_path, monkeypatch):
    """Inspect AI's `openai-api/<service>/<model>` provider reads <SERVICE>_BASE_URL and <SERVICE>_API_KEY; its
    generate config's temperature, max_tokens, top_p, seed, stop_seqs, logprobs, top_logprobs and num_choices all
    reach the server (an unsupported one would fail the sample with the server's 400)."""
    pytest.importorskip("inspect_ai")
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate

    import openai

    monkeypatch.setenv("ALIGNLAB_SERVE_BASE_URL", srv.url)
    monkeypatch.setenv("ALIGNLAB_SERVE_API_KEY", "none")
    model = f"openai-api/alignlab-serve/{srv.app.state.model_name}"
    task = Task(dataset=[Sample(input=q["question"], target=q["choices"][q["answer"]]) for q in QUESTIONS],
                solver=generate(), scorer=includes())
    [log] = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none", temperature=0, max_tokens=8,
                         top_p=0.9, seed=3, stop_seqs=["\n"], logprobs=True, top_logprobs=2)
    assert log.status == "success", log.error
    for sample, q in zip(sorted(log.samples, key=lambda s: s.id), QUESTIONS):
        [choice] = sample.output.choices
        assert sample.output.completion == _greedy_chat(tiny, q["question"], 8, ["\n"])
        entries = choice.logprobs.content
        assert "".join(e.token for e in entries).strip() == sample.output.completion
        assert all(len(e.top_logprobs) == 2 and e.logprob == pytest.approx(e.top_logprobs[0].logprob)
                   for e in entries)  # greedy: the chosen token is the most likely one

    [log] = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none", temperature=1.0, max_tokens=6,
                         seed=11, num_choices=3, limit=1)
    assert log.status == "success", log.error
    texts = [c.message.text for c in log.samples[0].output.choices]
    with openai.OpenAI(base_url=srv.url, api_key="none", max_retries=0) as client:
        again = client.chat.completions.create(model=srv.app.state.model_name, max_tokens=6, temperature=1.0,
                                               seed=11, n=3, messages=[{"role": "user",
                                                                        "content": QUESTIONS[0]["question"]}])
    assert texts == [c.message.content for c in again.choices] and len(set(texts)) > 1


def test_lm_eval_local_completions_loglikelihood_matches_the_model(clients, tiny):
    """local-completions scores each choice with echo=true, logprobs=1, max_tokens=1 on token-id prompts; the
    log-likelihoods and is_greedy flags it records equal the model's own, computed here with lm-eval's split of
    context and continuation tokens (the whole string encoded, then cut after the context's tokens)."""
    result = json.loads(_finish(clients, "lm_eval").read_text())["local-completions"]
    tok = tiny.tokenizer
    samples = sorted(result["samples"], key=lambda s: s["doc_id"])
    assert [s["doc"]["question"] for s in samples] == [q["question"] for q in QUESTIONS]
    for sample, q in zip(samples, QUESTIONS):
        ctx = tok(q["question"], add_special_tokens=False)["input_ids"]
        for (loglikelihood, greedy), choice in zip(sample["filtered_resps"], q["choices"]):
            whole = tok(q["question"] + " " + choice, add_special_tokens=False)["input_ids"]
            want, want_greedy = _logprob(tiny, ctx, whole[len(ctx):])
            assert float(loglikelihood) == pytest.approx(want, abs=1e-3) and greedy in (want_greedy, str(want_greedy))
        best = max(range(len(q["choices"])), key=lambda i: float(sample["filtered_resps"][i][0]))
        assert sample["acc"] == float(best == q["answer"])
    assert result["results"]["acc,none"] == pytest.approx(sum(s["acc"] for s in samples) / len(samples))


def test_lm_eval_local_chat_completions_generates_the_greedy_reply(clients, tiny):
    """local-chat-completions sends the chat messages with temperature 0, max_tokens 8 and stop ["\\n"]."""
    result = json.loads(_finish(clients, "lm_eval").read_text())["local-chat-completions"]
    samples = sorted(result["samples"], key=lambda s: s["doc_id"])
    assert len(samples) == len(QUESTIONS)
    for sample, q in zip(samples, QUESTIONS):
        assert sample["filtered_resps"] == [_greedy_chat(tiny, q["question"], 8, ["\n"])]
        assert sample["exact_match"] == float(sample["filtered_resps"][0] == q["choices"][q["answer"]])


def test_garak_openai_compatible_generator_runs_a_probe(clients, tiny, srv):
    """garak's OpenAICompatible generator sends its defaults (stop ["#", ";"], top_p 1, zero penalties, n 1, seed
    and max_tokens from the options); every prompt of the probe gets the model's reply and is scored."""
    path = _finish(clients, "garak")
    report = [json.loads(line) for line in path.read_text().splitlines()]
    attempts = [r for r in report if r["entry_type"] == "attempt" and r["status"] == 2]  # 2: scored
    assert len(attempts) == 6
    for attempt in attempts:
        [turn] = attempt["prompt"]["turns"]
        [output] = attempt["outputs"]
        assert output["text"] == _greedy_chat(tiny, turn["content"]["text"], 16, ["#", ";"])
    [evaluation] = [r for r in report if r["entry_type"] == "eval"]
    assert evaluation["probe"] == GARAK_PROBE and evaluation["nones"] == 0
    assert evaluation["total_evaluated"] == 6 and evaluation["passed"] + evaluation["fails"] == 6
    from alignlab.redteam.garak import read_report  # the reader bench_garak.py and the red-teaming report use

    summary = read_report(path)
    assert summary["attempts"] == 6 and summary["target"] == srv.app.state.model_name
    [result] = summary["results"]
    assert (result["probe"], result["passed"], result["total"]) == (GARAK_PROBE, evaluation["passed"], 6)
