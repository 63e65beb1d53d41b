"""`alignlab serve` through the official `openai` client on loopback, over the tiny random Llama: every
parameter the server accepts does what the OpenAI API reference says, every one it cannot honour is
refused with a 400 naming it, and the limits (context, queue, time) answer before any model work.
Raw-socket HTTP behaviour (keep-alive after errors, chunked bodies, stalled clients) is in test_serve_http.py."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("transformers")
openai = pytest.importorskip("openai")

MSGS = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def tiny():
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.testing import cached_tiny_llama

    return LocalChatModel.load(str(cached_tiny_llama()))


@pytest.fixture(scope="module")
def srv(tiny):
    from alignlab.evals.server import start

    server = start(tiny, request_timeout=60)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(srv):
    c = openai.OpenAI(base_url=srv.url, api_key="none", max_retries=0, timeout=60)
    yield c
    c.close()


@pytest.fixture(scope="module")
def name(srv):
    return srv.app.state.model_name


def _chat(client, name, **kw):
    kw.setdefault("messages", MSGS)
    return client.chat.completions.create(model=name, **kw)


def test_models_and_greedy_chat_match_the_local_model(client, name, tiny, srv):
    [card] = client.models.list().data
    assert card.id == name == "tiny-llama-2x64-test-v1"
    assert client.models.retrieve(name).id == name
    reply = _chat(client, name, max_tokens=7, temperature=0)
    assert reply.model == name and reply.object == "chat.completion"
    assert [reply.choices[0].message.content] == tiny.chat([MSGS], max_new_tokens=7)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 7
    assert reply.usage.prompt_tokens == len(tiny.tokenizer(tiny.render(MSGS), add_special_tokens=False)["input_ids"])


def test_defect_seed_fresh_per_request_when_none_given(client, name):
    """Old server: no seed meant seed 0, so every sampled reply was the same. Here each request draws its own,
    reports it, and sending it back reproduces the reply."""
    raws = [client.chat.completions.with_raw_response.create(model=name, messages=MSGS, max_tokens=6, temperature=1)
            for _ in range(4)]
    texts = [r.parse().choices[0].message.content for r in raws]
    assert len(set(texts)) > 1
    seeds = [int(r.headers["x-alignlab-seed"]) for r in raws]
    assert len(set(seeds)) == 4 and [r.parse().seed for r in raws] == seeds
    again = _chat(client, name, max_tokens=6, temperature=1, seed=seeds[0])
    assert again.choices[0].message.content == texts[0]  # the seed used is reported and reproduces the reply
    assert _chat(client, name, max_tokens=6, temperature=1, seed=11).choices[0].message.content == \
        _chat(client, name, max_tokens=6, temperature=1, seed=11).choices[0].message.content


def _cut(text: str, at: int = 6, width: int = 3) -> tuple[str, str]:
    stop = text[at:at + width]
    return stop, text[:text.index(stop)]


def test_defect_stop_sequences_cut_the_text_on_both_endpoints_and_in_streams(client, name):
    """Old server: `stop` was ignored."""
    full = client.completions.create(model=name, prompt="Once upon a time", max_tokens=12, temperature=0)
    text = full.choices[0].text
    stop, expected = _cut(text)
    cut = client.completions.create(model=name, prompt="Once upon a time", max_tokens=12, temperature=0,
                                    stop=[stop, "zzzz-never"])
    assert cut.choices[0].text == expected and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model=name, prompt="Once upon a time", max_tokens=12, temperature=0,
                                         stop=stop, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == expected

    whole = _chat(client, name, max_tokens=12, temperature=0).choices[0].message.content
    stop, expected = _cut(whole)
    reply = _chat(client, name, max_tokens=12, temperature=0, stop=stop)
    assert reply.choices[0].message.content == expected.strip() and reply.choices[0].finish_reason == "stop"
    chunks = _chat(client, name, max_tokens=12, temperature=0, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected.strip()


def test_defect_top_p_keeps_only_the_nucleus(client, name):
    """Old server: top_p was ignored. A nucleus this small holds only the most likely token: greedy text."""
    greedy = _chat(client, name, max_tokens=8, temperature=0).choices[0].message.content
    nucleus = _chat(client, name, max_tokens=8, temperature=1.5, top_p=1e-9, n=3)
    assert [c.message.content for c in nucleus.choices] == [greedy] * 3
    wide = _chat(client, name, max_tokens=8, temperature=1.5, top_p=1.0, n=3, seed=3)
    assert any(c.message.content != greedy for c in wide.choices)


def test_defect_logprobs_and_top_logprobs_on_chat(client, name):
    """Old server: logprobs and top_logprobs were ignored (logprobs null)."""
    reply = _chat(client, name, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3)
    choice = reply.choices[0]
    entries = choice.logprobs.content
    assert len(entries) == reply.usage.completion_tokens == 5
    assert "".join(e.token for e in entries).strip() == choice.message.content
    for e in entries:
        tops = [t.logprob for t in e.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True) and e.logprob <= 0
        assert e.logprob == pytest.approx(tops[0])  # greedy: the chosen token is the most likely one
        assert bytes(e.bytes).decode() == e.token
    plain = _chat(client, name, max_tokens=2, temperature=0)
    assert plain.choices[0].logprobs is None


def test_defect_completions_endpoint_with_echo_and_logprobs(client, name, tiny):
    """Old server: no /v1/completions (404). lm-evaluation-harness's local-completions log-likelihood request:
    token-id prompts, echo, logprobs=1, max_tokens 1 (or 0). The continuation's summed log-probability equals
    lm.generate.continuation_logprobs."""
    from alignlab.lm.generate import continuation_logprobs

    tok = tiny.tokenizer
    context, continuations = "The capital of France is", [" Paris", " a big city"]
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    conts = [tok(c, add_special_tokens=False)["input_ids"] for c in continuations]
    expected = continuation_logprobs(tiny.model, tok, [context] * 2, continuations)
    for max_tokens in (0, 1):
        reply = client.completions.create(model=name, prompt=[ctx + c for c in conts], echo=True, logprobs=1,
                                          max_tokens=max_tokens, temperature=0)
        assert [c.index for c in reply.choices] == [0, 1]
        for choice, cont, want in zip(reply.choices, conts, expected):
            lp = choice.logprobs
            n = len(ctx) + len(cont)
            assert len(lp.tokens) == len(lp.token_logprobs) == n + max_tokens
            assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
            assert sum(lp.token_logprobs[len(ctx):n]) == pytest.approx(want, abs=1e-3)
            for value, top in zip(lp.token_logprobs[1:], lp.top_logprobs[1:]):
                assert value <= max(top.values()) + 1e-6  # lm-eval's is_greedy test reads these
            assert choice.text.startswith(tok.decode(ctx + cont))
    assert reply.usage.prompt_tokens == 2 * len(ctx) + sum(len(c) for c in conts)
    empty = client.completions.create(model=name, prompt="Hello", max_tokens=0)
    assert empty.choices[0].text == "" and empty.choices[0].finish_reason == "length"  # not 256 tokens
    assert empty.usage.completion_tokens == 0


def test_defect_n_greater_than_one(client, name):
    """Old server: n > 1 was refused (400 "only n=1 is supported"). Each choice samples with its own seed."""
    reply = _chat(client, name, max_tokens=6, temperature=1, n=3, seed=7)
    texts = [c.message.content for c in reply.choices]
    assert [c.index for c in reply.choices] == [0, 1, 2] and len(set(texts)) > 1
    again = _chat(client, name, max_tokens=6, temperature=1, n=3, seed=7)
    assert [c.message.content for c in again.choices] == texts
    done = client.completions.create(model=name, prompt=["a", "b"], n=2, max_tokens=4, seed=1, temperature=1)
    assert [c.index for c in done.choices] == [0, 1, 2, 3]
    assert done.choices[0].text != done.choices[1].text or done.choices[2].text != done.choices[3].text


def test_defect_streaming_server_sent_events(client, name, srv):
    """Old server: stream=true was refused. Streams are server-sent events whose pieces add up to the reply the
    same seeded request gets without streaming, n choices interleaved, usage last when asked for."""
    reply = _chat(client, name, max_tokens=6, temperature=1, n=3, seed=7)
    texts = [c.message.content for c in reply.choices]
    got = {i: "" for i in range(3)}
    finish, usage = {}, None
    for chunk in _chat(client, name, max_tokens=6, temperature=1, n=3, seed=7, stream=True,
                       stream_options={"include_usage": True}):
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            got[c.index] += c.delta.content or ""
            if c.finish_reason:
                finish[c.index] = c.finish_reason
    assert [got[i] for i in range(3)] == texts and set(finish) == {0, 1, 2}
    assert usage.completion_tokens == reply.usage.completion_tokens
    done = client.completions.create(model=name, prompt=["a", "b"], n=2, max_tokens=4, seed=1, temperature=1)
    streamed = {i: "" for i in range(4)}
    for chunk in client.completions.create(model=name, prompt=["a", "b"], n=2, max_tokens=4, seed=1, temperature=1,
                                           stream=True):
        for c in chunk.choices:
            streamed[c.index] += c.text
    assert [streamed[i] for i in range(4)] == [c.text for c in done.choices]
    body = json.dumps({"model": name, "messages": MSGS, "max_tokens": 3, "stream": True}).encode()
    req = urllib.request.Request(srv.url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = resp.read().decode().strip().split("\n\n")
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: {") for e in events[:-1])


@pytest.mark.parametrize("kw,param,fragment", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools", "not supported"),
    ({"tool_choice": "required"}, "tool_choice", "not supported"),
    ({"response_format": {"type": "json_object"}}, "response_format", "not supported"),
    ({"presence_penalty": 0.5}, "presence_penalty", "not supported"),
    ({"frequency_penalty": -1}, "frequency_penalty", "not supported"),
    ({"logit_bias": {"42": 5}}, "logit_bias", "not supported"),
    ({"reasoning_effort": "low"}, "reasoning_effort", "not supported"),
    ({"extra_body": {"mirostat": 2}}, "mirostat", "Unrecognized request argument"),
    ({"extra_body": {"top_k": 5}}, "top_k", "Unrecognized request argument"),
])
def test_defect_unsupported_fields_are_400_naming_the_field(client, name, kw, param, fragment):
    """Old server: every field it did not know (tools, penalties, top_k, ...) was silently ignored."""
    with pytest.raises(openai.BadRequestError) as err:
        _chat(client, name, **kw)
    error = err.value.body
    assert err.value.status_code == 400 and error["param"] == param and fragment in error["message"], error
    assert param in error["message"]


def test_unsupported_fields_at_their_neutral_value_are_accepted(client, name):
    """What clients such as garak send by default (zero penalties, text response format) is not refused."""
    reply = _chat(client, name, max_tokens=2, presence_penalty=0.0, frequency_penalty=0, logit_bias={},
                  response_format={"type": "text"}, tools=[], user="u", metadata={"k": "v"}, store=False)
    assert reply.choices[0].finish_reason == "length"
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=name, prompt="a", max_tokens=2, suffix="end")
    assert err.value.body["param"] == "suffix"


@pytest.mark.parametrize("kw,param,fragment", [
    ({"max_tokens": "5"}, "max_tokens", "valid integer"),  # old server: coerced
    ({"n": "2"}, "n", "valid integer"),  # old server: 500
    ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),  # old server: 256 tokens
    ({"temperature": 3}, "temperature", "less than or equal to 2"),
    ({"seed": 1.5}, "seed", "valid integer"),  # old server: truncated to 1
    ({"top_logprobs": 30, "logprobs": True}, "top_logprobs", "less than or equal to 20"),
    ({"messages": []}, "messages", "at least 1"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "'system', 'developer'"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content", "only text content"),
])
def test_defect_malformed_fields_are_400_naming_the_field(client, name, kw, param, fragment):
    """Old server: some malformed values were coerced or defaulted, one was a 500."""
    with pytest.raises(openai.BadRequestError) as err:
        _chat(client, name, **kw)
    error = err.value.body
    assert err.value.status_code == 400 and error["param"] == param and fragment in error["message"], error


@pytest.mark.parametrize("body,fragment", [
    (b"{oops", "not valid JSON"), (b"[]", "must be a JSON object"), (b'"text"', "must be a JSON object"),
    (b"", "not valid JSON"), (b"\xff\xfe{}", "not valid JSON"), (b'{"model": 1}', "'model'"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "'model' is required"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream_options": {}}', "stream=true"),
])
def test_defect_malformed_bodies_are_all_400(srv, body, fragment):
    """Old server: a body without `model` or with a field out of place was answered 200, and the errors it did
    give named no field."""
    req = urllib.request.Request(srv.url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    error = json.loads(err.value.read())["error"]
    assert err.value.code == 400 and fragment in error["message"], error


def test_unknown_model_is_404_before_any_work(client, name, srv):
    batches = srv.app.state.engine.batches
    with pytest.raises(openai.NotFoundError) as err:
        _chat(client, name + "-other", max_tokens=2)
    assert err.value.body["code"] == "model_not_found" and name in err.value.body["message"]
    assert srv.app.state.engine.batches == batches


def test_defect_context_length_is_400_before_any_work(client, name, srv):
    """Old server: no context check; an over-long prompt went to the model. Here it is a 400 naming the limit,
    with or without max_tokens, on both endpoints, and nothing reaches the model."""
    batches = srv.app.state.engine.batches
    for kw in ({"max_tokens": 10}, {}):
        with pytest.raises(openai.BadRequestError) as err:
            _chat(client, name, messages=[{"role": "user", "content": "sea " * 2100}], **kw)
        assert err.value.body["code"] == "context_length_exceeded" and "2048" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        _chat(client, name, messages=[{"role": "user", "content": "sea " * 1000}], max_tokens=1500)
    assert "you requested" in err.value.body["message"] and err.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=name, prompt=["short", "sea " * 2100], max_tokens=1)
    assert err.value.body["code"] == "context_length_exceeded" and "prompt 1" in err.value.body["message"]
    assert srv.app.state.engine.batches == batches  # nothing reached the model


class Held:
    """A server (max_queue 1, max_batch 1) whose worker blocks on the first batch until `release()`."""

    def __init__(self, tiny, **settings):
        from alignlab.evals.server import start

        self.server = start(tiny, max_queue=1, max_batch=1, **settings)
        self.engine, self.gate, self.entered = self.server.app.state.engine, threading.Event(), threading.Event()
        process = self.engine.process

        def held(jobs):
            self.entered.set()
            self.gate.wait(30)
            return process(jobs)

        self.engine.process = held
        self.client = openai.OpenAI(base_url=self.server.url, api_key="none", max_retries=0, timeout=30)
        self.name = self.server.app.state.model_name

    def fill(self, pool):
        """One request held by the worker, one waiting in the one-place queue: their futures."""
        first = pool.submit(_chat, self.client, self.name, max_tokens=2)
        assert self.entered.wait(10)
        second = pool.submit(_chat, self.client, self.name, max_tokens=2)
        until = time.monotonic() + 10
        while len(self.engine.pending) < 1 and time.monotonic() < until:
            time.sleep(0.01)
        return first, second

    def release(self):
        self.gate.set()

    def close(self):
        self.gate.set()
        self.client.close()
        self.server.stop()


def test_defect_full_queue_is_429(tiny):
    """Old server: an unbounded queue, so latency grew without limit under load. Here, with the worker busy and the
    queue full, the next request is refused at once (429, Retry-After) and the queued ones are still answered."""
    held = Held(tiny, request_timeout=30)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = held.fill(pool)
            started = time.monotonic()
            with pytest.raises(openai.RateLimitError) as err:
                _chat(held.client, held.name, max_tokens=2)
            assert time.monotonic() - started < 5 and err.value.response.headers["retry-after"] == "1"
            assert err.value.body["code"] == "rate_limit_exceeded"
            held.release()
            assert [f.result(timeout=20).choices[0].finish_reason for f in (first, second)] == ["length"] * 2
        assert _chat(held.client, held.name, max_tokens=2).choices[0].finish_reason == "length"
    finally:
        held.close()


def test_defect_request_time_limit_is_504(tiny):
    """Old server: past its time limit a request was a 500 "generation failed" while its job stayed queued and still
    ran. Here both the running and the queued request end with 504 at the time limit, queueing included, and are
    cancelled; the server then recovers."""
    held = Held(tiny, request_timeout=1.5)
    try:
        with ThreadPoolExecutor(2) as pool:
            for fut in held.fill(pool):
                with pytest.raises(openai.InternalServerError) as err:
                    fut.result(timeout=20)
                assert err.value.status_code == 504 and "time limit" in err.value.body["message"]
        held.release()
        assert _chat(held.client, held.name, max_tokens=2).choices[0].message.content is not None
    finally:
        held.close()


def test_concurrent_requests_are_batched(tiny):
    from alignlab.evals.server import start

    server = start(tiny, wait_s=0.2)
    c = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=30)
    name = server.app.state.model_name
    try:
        convs = [[{"role": "user", "content": f"Question {i}?"}] for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda m: _chat(c, name, messages=m, max_tokens=4, temperature=0), convs))
        assert [r.choices[0].message.content for r in replies] == tiny.chat(convs, max_new_tokens=4)
        assert server.app.state.engine.batches < 8
    finally:
        c.close()
        server.stop()
