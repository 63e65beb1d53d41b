"""The OpenAI-compatible endpoint backend (requests sent by the official `openai` client) against
`alignlab serve` on loopback, and against fake servers that are slow, fail with 500s, or return
malformed JSON: the run completes or stops with one clear error, and no finished reply is lost (a
rerun resumes from the response cache). The server's own behaviour is tested in test_serve.py and
test_serve_http.py; here `alignlab serve` runs as the CLI does, in a subprocess stopped by SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alignlab.core import registry
from alignlab.core.errors import UserError
from alignlab.evals.backends import EndpointError, OpenAIChatModel, parse_spec
from tests.conftest import REPO, cli_env

CONVS = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(6)]


class FakeServer:
    """A loopback chat-completions server whose answers come from `behaviour(index, body)`:
    (status, body bytes, delay seconds). Replies by default echo the last user message."""

    def __init__(self, behaviour=None):
        self.behaviour = behaviour or (lambda i, body: (200, ok(body), 0.0))
        self.count = 0
        self.headers: list[dict[str, str]] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    index = fake.count
                    fake.count += 1
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fake.inflight += 1
                    fake.max_inflight = max(fake.max_inflight, fake.inflight)
                try:
                    status, data, delay = fake.behaviour(index, body)
                    time.sleep(delay)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with fake.lock:
                        fake.inflight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ok(body) -> bytes:
    text = "echo: " + body["messages"][-1]["content"]
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}).encode()


@pytest.fixture
def fake():
    servers = []

    def start(behaviour=None):
        s = FakeServer(behaviour)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def client(url, tmp_path, **kw):
    opts = dict(cache=tmp_path / "cache.sqlite", timeout=0.5, max_retries=3, backoff=0.001, concurrency=2)
    opts.update(kw)
    return OpenAIChatModel(url, "fake", **opts)


def test_spec_parsing():
    assert parse_spec("embedded") == ("local", "embedded", "")
    assert parse_spec("openai:http://127.0.0.1:8000/v1/smol") == ("openai", "http://127.0.0.1:8000/v1", "smol")
    assert parse_spec("openai:http://h:1/v1/org/model-7b") == ("openai", "http://h:1/v1", "org/model-7b")
    with pytest.raises(UserError, match="bad endpoint spec"):
        parse_spec("openai:localhost/x")


def test_healthy_server_and_the_cache(fake, tmp_path):
    server = fake()
    model = client(server.url, tmp_path)
    assert model.chat(CONVS) == [f"echo: Question number {i}?" for i in range(6)]
    assert server.count == 6 and len(model.cache) == 6
    again = client(server.url, tmp_path)
    assert again.chat(CONVS) == model.chat(CONVS) and server.count == 6  # all from the cache
    assert again.stats["cache_hits"] == 6


def test_the_key_sent_is_alignlab_endpoint_key_never_openai_api_key(fake, tmp_path, monkeypatch):
    server = fake()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-this-endpoint")
    monkeypatch.delenv("ALIGNLAB_ENDPOINT_KEY", raising=False)
    client(server.url, tmp_path).chat(CONVS[:1])
    monkeypatch.setenv("ALIGNLAB_ENDPOINT_KEY", "local-key")
    client(server.url, tmp_path / "other").chat(CONVS[:1])
    assert [h.get("authorization") for h in server.headers] == ["Bearer none", "Bearer local-key"]


def test_slow_server_is_retried_then_completes(fake, tmp_path):
    server = fake(lambda i, body: (200, ok(body), 2.0 if i < 2 else 0.0))
    model = client(server.url, tmp_path, timeout=0.3, concurrency=1)
    assert model.chat(CONVS[:3]) == [f"echo: Question number {i}?" for i in range(3)]
    assert model.stats["retries"] == 2


def test_always_slow_server_stops_with_one_clear_error(fake, tmp_path):
    server = fake(lambda i, body: (200, ok(body), 1.0))
    model = client(server.url, tmp_path, timeout=0.2, max_retries=1)
    with pytest.raises(EndpointError, match=r"no valid reply after 2 attempts \(last: timed out after 0.2 s\)") as err:
        model.chat(CONVS[:2])
    assert "\n" not in str(err.value) and "rerun to resume" in str(err.value)


def test_transient_500s_are_retried(fake, tmp_path):
    server = fake(lambda i, body: (500, b'{"error": "overloaded"}', 0) if i < 3 else (200, ok(body), 0))
    model = client(server.url, tmp_path, concurrency=1)
    assert len(model.chat(CONVS[:3])) == 3 and model.stats["retries"] == 3


def test_persistent_500s_stop_the_run(fake, tmp_path):
    fake_500 = fake(lambda i, body: (500, b"internal error", 0))
    with pytest.raises(EndpointError, match="HTTP 500 internal error"):
        client(fake_500.url, tmp_path).chat(CONVS[:2])


@pytest.mark.parametrize("payload,message", [
    (b"{not json", "malformed JSON"),
    (b'{"id": "x", "object": "chat.completion"}', "without choices"),
    (b'{"choices": [{"message": {"content": 7}}]}', "not text"),
])
def test_malformed_replies_stop_with_a_clear_error(fake, tmp_path, payload, message):
    server = fake(lambda i, body: (200, payload, 0))
    with pytest.raises(EndpointError, match=message):
        client(server.url, tmp_path, max_retries=1).chat(CONVS[:1])
    assert server.count == 2


def test_client_errors_are_not_retried(fake, tmp_path):
    server = fake(lambda i, body: (400, b'{"error": {"message": "bad model"}}', 0))
    with pytest.raises(EndpointError, match="refused the request: HTTP 400"):
        client(server.url, tmp_path).chat(CONVS[:1])
    assert server.count == 1


def test_concurrency_is_limited(fake, tmp_path):
    server = fake(lambda i, body: (200, ok(body), 0.15))
    client(server.url, tmp_path, concurrency=3).chat(CONVS + CONVS[:2] + [[{"role": "user", "content": "x"}]])
    assert server.max_inflight == 3


def test_a_failed_eval_resumes_from_the_cache_without_losing_finished_items(fake, tmp_path):
    state = {"healthy": False}
    server = fake(lambda i, body: (200, ok(body), 0) if state["healthy"] or i < 5 else (500, b"down", 0))
    cls = registry.get("eval", "sycophancy-answer")
    ev = cls(cls.Config.quick())  # 2 arms x 4 items = 8 requests in one turn
    with pytest.raises(EndpointError, match=r"5/8 replies of this batch are cached"):
        ev.run(client(server.url, tmp_path, concurrency=1, max_retries=1), limit=4)
    sent_before = server.count
    state["healthy"] = True
    resumed = ev.run(client(server.url, tmp_path, concurrency=1), limit=4)
    assert server.count - sent_before == 3  # only the unfinished items are asked again
    reference = ev.run(client(fake().url, tmp_path / "fresh", concurrency=3), limit=4)
    assert resumed.items == reference.items and len(resumed.items) == 4


@pytest.fixture(scope="module")
def served():
    """`alignlab serve` over the tiny test model, as a subprocess on a free loopback port."""
    pytest.importorskip("transformers")
    from alignlab.lm.testing import cached_tiny_llama

    path = cached_tiny_llama()
    proc = subprocess.Popen([sys.executable, "-m", "alignlab.cli.main", "serve", "--model", str(path),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(), cwd=str(REPO))
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
    if not match:
        proc.kill()
        raise AssertionError(f"serve did not start: {line!r} {proc.stderr.read()[:2000]}")
    yield match.group(0), path, proc
    # SIGTERM: a test run in a background job inherits SIGINT ignored, and so would the server.
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)  # drains both pipes while waiting
    assert proc.returncode == 0, err[-2000:]


def test_alignlab_serve_answers_like_the_local_model(served, tmp_path):
    url, path, proc = served
    models = json.loads(urllib.request.urlopen(f"{url}/models", timeout=10).read())
    assert models["data"][0]["id"] == path.name
    from alignlab.lm.chat import LocalChatModel

    remote = OpenAIChatModel(url, path.name, cache=tmp_path / "c.sqlite", timeout=30, concurrency=3)
    local = LocalChatModel.load(str(path))
    assert remote.chat(CONVS[:3], max_new_tokens=6) == local.chat(CONVS[:3], max_new_tokens=6)
    result = registry.get("eval", "framing")().run(remote, limit=2)
    assert result.metrics["over_refusal"].n == 1 and result.metrics["refusal_plain"].n == 1
    assert proc.poll() is None


def test_alignlab_serve_cli_serves_completions_and_streams(served):
    """The CLI's server: both endpoints, streaming, the model name checked, a malformed body answered 400."""
    openai = pytest.importorskip("openai")
    url, path, proc = served
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=30)
    try:
        reply = client.completions.create(model=path.name, prompt="Hello", max_tokens=3, temperature=0)
        assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3
        chunks = list(client.chat.completions.create(model=path.name, messages=CONVS[0], max_tokens=3, stream=True))
        assert chunks[-1].choices[0].finish_reason == "length"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="other", messages=CONVS[0], max_tokens=3)
    finally:
        client.close()
    req = urllib.request.Request(url + "/chat/completions", data=b"{oops", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400 and "not valid JSON" in json.loads(err.value.read())["error"]["message"]
