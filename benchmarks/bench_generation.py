"""Generation throughput of the evals' batched decoding against llama.cpp single-stream on the same GGUF file.

Arms, all in one run, every one pinned to the same CPU core(s) with the same thread count, greedy decoding, the
same prompts (token ids) and the same max_new_tokens:

- llama.cpp (llama-cpp-python, from `.venv-anchors`) on the embedded SmolLM2-135M-Instruct Q4_1 GGUF that alignlab
  converts, one prompt at a time (single stream; it reuses the KV cache of the prefix a prompt shares with the one
  before it, as alignlab's prefix store does).
- alignlab: `lm.prefix_cache.generate_cached`, what `LocalChatModel` and so the evals run (prompts prefilled in
  groups of 8, one decoding batch, finished rows dropped, `lm.generate.BatchDecoder` steps) on the safetensors
  copy of the same GGUF, at decoding batches 1, 32 and 64 (the are-you-sure eval asks 32 unique first turns, then
  64 dialogues per turn, per chunk of 32 items); `before`: the same at batch 32 through transformers' forward, the
  decoding loop before `BatchDecoder` (its replies are checked to be the same); `continuous`: the same prompts through
  `lm.continuous.generate_continuous` (continuous batching: a finished row's slot is refilled with the next waiting
  prompt, the prompts' common prefix prefilled once), at the same decoding batches.

Workloads: `length` (EOS ignored: every prompt decodes exactly max_new_tokens) and `eos` (stop at the end of the
turn, as the evals do: short factual answers, so prompt processing weighs about as much as decoding), on the
are-you-sure eval's first-turn prompts; `eval`: the are-you-sure protocol (items x 2 arms x 3 turns) played through
`LocalChatModel`, and llama.cpp answering the same rendered prompts single-stream, each dialogue's turns in order.

Figures: tokens/s of generated tokens (EOS included; prompt processing inside the wall time of both); the ratio
to llama.cpp; generation FLOP/s: per generated token, 2 x (weights of every matrix it passes through: all Linear
layers, the tied LM head included; embeddings are lookups) plus attention, 4 x layers x heads x head_dim x the
context it attends to (prompt and tokens before it; scores and the weighted sum of values), summed over the
generated tokens and divided by the wall time (prompt tokens' FLOPs not counted, their time is); against the best
`torch.matmul` rate on 2048^3 in the dtype used, same threads and cores, before and after.
Target: continuous batching at the evals' batch sizes, with EOS stop and on the protocol, >= 5x llama.cpp
single-stream.

Run: .venv/bin/python benchmarks/bench_generation.py [--threads 1] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _util import parse_cores, pin  # noqa: E402  (stdlib only at import: the llama.cpp worker runs it too)

HERE = Path(__file__).resolve().parent
ANCHOR_PYTHON = HERE.parent / ".venv-anchors" / "bin" / "python"
TARGET = 5.0
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


# ---- the llama.cpp side: runs in .venv-anchors, imports nothing from alignlab ----

def llamacpp_worker(job_file: str) -> int:
    """Answer every prompt of the job single-stream with llama.cpp; print one JSON line of results."""
    job = json.loads(Path(job_file).read_text())
    os.sched_setaffinity(0, set(job["cores"]))
    import llama_cpp
    from llama_cpp import Llama

    threads = job["threads"]
    llm = Llama(model_path=job["gguf"], n_ctx=job["n_ctx"], n_batch=512, n_threads=threads,
                n_threads_batch=threads, seed=0, verbose=False)
    eos = set(job["eos"])
    greedy = dict(temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)

    def answer(ids: list[int], limit: int, stop: bool) -> list[int]:
        out: list[int] = []
        for token in llm.generate(ids, **greedy):
            out.append(int(token))
            if len(out) >= limit or (stop and token in eos):
                break
        return out

    answer(job["sets"][0]["prompts"][0], 4, False)  # warm-up
    results = []
    for s in job["sets"]:
        outs, seconds = [], []
        for ids in s["prompts"]:
            started = time.perf_counter()
            outs.append(answer(ids, s["max_new_tokens"], s["stop"]))
            seconds.append(time.perf_counter() - started)
        results.append({"name": s["name"], "seconds": seconds, "outputs": outs})
    print(json.dumps({"version": llama_cpp.__version__, "results": results}))
    return 0


# ---- the alignlab side ----

def machine(threads: int, cores: list[int]) -> dict:
    import torch

    from alignlab.lm.models import native_bf16

    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
        flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    except OSError:
        model, flags = platform.processor() or "?", []
    return {"cpu": model, "flags": [f for f in FLAGS if f in flags], "native_bf16": native_bf16(),
            "logical_cpus": os.cpu_count(), "cores": cores, "threads": threads, "torch": torch.__version__,
            "load": os.getloadavg()}


def matmul_peak(dtype: str, size: int = 2048, seconds: float = 0.3, repeats: int = 5) -> float:
    """Best GFLOP/s of `torch.matmul` on size x size matrices in `dtype` (current threads and cores)."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(size, size).to(dt), torch.randn(size, size).to(dt)
    a @ b
    best = 0.0
    for _ in range(repeats):
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            a @ b
            n += 1
        best = max(best, 2 * size ** 3 * n / (time.perf_counter() - started))
    return best / 1e9


def matrix_params(model) -> int:
    """Weights a generated token is multiplied by: every Linear, the (tied) LM head included; embeddings are lookups."""
    import torch

    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def attention_flops(model) -> int:
    """FLOPs of attention per generated token per token of context: q.k and the weighted sum of v, every layer."""
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return 4 * cfg.num_hidden_layers * cfg.num_attention_heads * head_dim


def generation_flops(params: int, attn: int, pairs) -> float:
    """FLOPs of generating, for (prompt tokens, generated tokens) pairs: each generated token passes every matrix
    once (2 x params) and attends to the prompt and the tokens before it."""
    return sum(c * 2 * params + attn * (c * p + c * (c - 1) // 2) for p, c in pairs)


def first_turn_prompts(tokenizer, n: int) -> list[str]:
    """The are-you-sure eval's first user turn for n items (rendered with the chat template)."""
    from alignlab.core import registry
    from alignlab.evals.protocols import are_you_sure
    from alignlab.lm.generate import render_chat

    cls = registry.get("eval", "sycophancy-are-you-sure")
    items = cls(cls.Config()).select(n, seed=0)
    return [render_chat(tokenizer, [{"role": "user", "content": are_you_sure(s.question).turns[0]}]) for s in items]


def ours(model, tokenizer, prompts: list[str], batch: int, max_new_tokens: int, stop: bool,
         fast: bool = True, continuous: bool = False) -> tuple[float, list]:
    """alignlab's batched generation as LocalChatModel runs it (fresh prefix store); (seconds, generations).
    fast=False decodes through transformers' forward instead of `BatchDecoder` (the code before it); continuous=True
    runs every prompt through one continuous batch of `batch` slots."""
    from alignlab.lm import prefix_cache
    from alignlab.lm.continuous import generate_continuous
    from alignlab.lm.prefix_cache import PrefixStore, generate_cached

    if continuous:
        started = time.perf_counter()
        gens = generate_continuous(model, tokenizer, prompts, PrefixStore(), max_new_tokens=max_new_tokens,
                                   prefill_batch=8, decode_batch=batch, stop_at_eos=stop)
        return time.perf_counter() - started, gens

    create = prefix_cache.BatchDecoder.create
    if not fast:
        prefix_cache.BatchDecoder.create = classmethod(lambda cls, *a, **k: None)
    try:
        started = time.perf_counter()
        gens = []
        for start in range(0, len(prompts), batch):  # a call per batch: at batch 1 a row never waits for another
            gens += generate_cached(model, tokenizer, prompts[start:start + batch], PrefixStore(),
                                    max_new_tokens=max_new_tokens, prefill_batch=min(batch, 8), decode_batch=batch,
                                    stop_at_eos=stop)
        return time.perf_counter() - started, gens
    finally:
        prefix_cache.BatchDecoder.create = create


def eval_protocol(chat, items: int, max_new_tokens: int, continuous: bool = False) -> tuple[float, list, list[str]]:
    """Play the are-you-sure protocol through LocalChatModel; (seconds, generations, prompts asked in order).
    continuous=True: LocalChatModel generating through `generate_continuous` instead of `generate_cached`."""
    from alignlab.core import registry
    from alignlab.evals.protocols import are_you_sure, play
    from alignlab.lm import chat as chat_module
    from alignlab.lm.continuous import generate_continuous
    from alignlab.lm.prefix_cache import PrefixStore, generate_cached

    cls = registry.get("eval", "sycophancy-are-you-sure")
    chosen = cls(cls.Config()).select(items, seed=0)
    dialogues = [are_you_sure(s.question, control=arm) for s in chosen for arm in (False, True)]
    asked: list[str] = []
    gens: list = []
    generate = type(chat).generate

    def recording(messages_batch, *args, **kwargs):
        asked.extend(chat.render(m) for m in messages_batch)
        out = generate(chat, messages_batch, *args, **kwargs)
        gens.extend(out)
        return out

    chat.prefix_store = PrefixStore()
    chat.generate = recording
    chat_module.generate_cached = generate_continuous if continuous else generate_cached
    try:
        started = time.perf_counter()
        play(chat, dialogues, max_new_tokens=max_new_tokens)
        seconds = time.perf_counter() - started
    finally:
        del chat.generate
        chat_module.generate_cached = generate_cached
    return seconds, gens, asked


def run_llamacpp(job: dict) -> dict | None:
    if not ANCHOR_PYTHON.exists():
        print(f"anchor missing: {ANCHOR_PYTHON} (make bench builds it; requirements-anchors.txt)")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(job, fh)
    try:
        proc = subprocess.run([str(ANCHOR_PYTHON), __file__, "--llamacpp-worker", fh.name], capture_output=True,
                              text=True)
    finally:
        os.unlink(fh.name)
    if proc.returncode != 0:
        print(f"anchor llama.cpp failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for every arm (torch and llama.cpp)")
    parser.add_argument("--cores", default="", help="CPU cores to pin every arm to (default: the first THREADS "
                                                    "cores this process may use)")
    parser.add_argument("--prompts", type=int, default=64, help="distinct first-turn prompts of the eval")
    parser.add_argument("--single-prompts", type=int, default=16,
                        help="prompts for the batch-1 arm (compared with llama.cpp on the same prompts)")
    parser.add_argument("--max-new-tokens", type=int, default=40, help="the evals' default")
    parser.add_argument("--batches", default="1,32,64", help="alignlab decoding batch sizes")
    parser.add_argument("--dtype", default="auto", help="auto (bfloat16 where native), float32 or bfloat16")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every arm, interleaved; best kept")
    parser.add_argument("--workloads", default="length,eos", help="length (EOS ignored), eos (the evals' stop)")
    parser.add_argument("--eval-items", type=int, default=32,
                        help="are-you-sure items for the eval arm (x 2 arms x 3 turns; 0: off)")
    parser.add_argument("--baseline", type=int, default=32,
                        help="also decode at this batch through transformers' forward (the code before "
                             "BatchDecoder; 0: off)")
    parser.add_argument("--continuous", type=int, default=1, help="also run the continuous-batching arms (0: off)")
    parser.add_argument("--quick", action="store_true", help="1 round, 32 prompts, batches 1,32, no eval arm")
    parser.add_argument("--llamacpp-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.llamacpp_worker:
        return llamacpp_worker(args.llamacpp_worker)
    if args.quick:
        args.rounds, args.prompts, args.batches, args.eval_items, args.single_prompts = 1, 32, "1,32", 0, 8

    cores = pin(parse_cores(args.cores), args.threads)  # inherited by the llama.cpp worker; machine line twice
    import torch

    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.generate import _eos_ids
    from alignlab.lm.models import ModelSpec, embedded_gguf, resolve_dtype

    dtype = resolve_dtype(args.dtype)
    chat = LocalChatModel.load(ModelSpec("embedded", dtype=dtype, threads=args.threads))
    model, tok = chat.model, chat.tokenizer
    torch.set_num_threads(args.threads)
    facts = machine(args.threads, cores)
    print(f"machine: {facts['cpu']}, {facts['logical_cpus']} logical CPUs; flags {' '.join(facts['flags'])}; "
          f"native bf16: {facts['native_bf16']}; torch {facts['torch']}; load average {facts['load'][0]:.2f}")
    print(f"every arm pinned to core(s) {cores} with {args.threads} thread(s); alignlab weights {dtype}; "
          f"greedy; max_new_tokens {args.max_new_tokens}", flush=True)
    peak = matmul_peak(dtype)
    params = matrix_params(model)
    attn = attention_flops(model)
    prompts = first_turn_prompts(tok, args.prompts)
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    eos = sorted(_eos_ids(model, tok))
    batches = [int(b) for b in args.batches.split(",")]
    workloads = [w for w in args.workloads.split(",") if w]
    single = max(1, min(args.single_prompts, len(prompts)))
    print(f"{len(prompts)} prompts of the are-you-sure eval's first turn ({single} for batch 1), "
          f"{sum(map(len, ids)) / len(ids):.1f} tokens on average; {params / 1e6:.1f} M matrix parameters per "
          f"token; EOS ids {eos}", flush=True)

    # arm -> (best seconds, generated tokens, prompts it answered); replies of the last round
    best: dict[str, tuple[float, int, int, float]] = {}
    replies: dict[str, list[str]] = {}
    version = "?"

    def keep(key: str, seconds: float, n_tokens: int, n_prompts: int, flops: float) -> None:
        if key not in best or seconds < best[key][0]:
            best[key] = (seconds, n_tokens, n_prompts, flops)
        print(f"  {key:<34} {n_tokens / seconds:8.1f} tok/s", flush=True)

    def ours_flops(gens) -> float:
        return generation_flops(params, attn, [(g.prompt_tokens, g.completion_tokens) for g in gens])

    for rnd in range(args.rounds):
        print(f"round {rnd + 1}", flush=True)
        sets = [{"name": w, "prompts": ids, "max_new_tokens": args.max_new_tokens, "stop": w == "eos"}
                for w in workloads]
        for w in workloads:
            for b in batches:
                subset = prompts[:single] if b == 1 else prompts
                seconds, gens = ours(model, tok, subset, b, args.max_new_tokens, w == "eos")
                keep(f"alignlab {w} batch {b}", seconds, sum(g.completion_tokens for g in gens), len(subset),
                     ours_flops(gens))
                replies[f"alignlab {w} batch {b}"] = [g.text for g in gens]
                if args.continuous and b > 1:
                    seconds, gens = ours(model, tok, subset, b, args.max_new_tokens, w == "eos", continuous=True)
                    keep(f"continuous {w} batch {b}", seconds, sum(g.completion_tokens for g in gens), len(subset),
                         ours_flops(gens))
                    replies[f"continuous {w} batch {b}"] = [g.text for g in gens]
            if args.baseline:
                seconds, gens = ours(model, tok, prompts, args.baseline, args.max_new_tokens, w == "eos", fast=False)
                keep(f"before {w} batch {args.baseline}", seconds, sum(g.completion_tokens for g in gens), len(prompts),
                     ours_flops(gens))
                if [g.text for g in gens] != replies.get(f"alignlab {w} batch {args.baseline}", [g.text for g in gens]):
                    print("  WARNING: the transformers-forward steps replied differently")
        if args.eval_items:
            for label, cont in (("alignlab", False), ("continuous", True))[:1 + bool(args.continuous)]:
                seconds, gens, asked = eval_protocol(chat, args.eval_items, args.max_new_tokens, continuous=cont)
                keep(f"{label} eval", seconds, sum(g.completion_tokens for g in gens), len(asked), ours_flops(gens))
            # single stream answers each dialogue's turns in order, so each prompt extends the one before it
            asked_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in sorted(asked)]
            sets.append({"name": "eval", "prompts": asked_ids, "max_new_tokens": args.max_new_tokens, "stop": True})
        anchor = run_llamacpp({"gguf": str(embedded_gguf()), "n_ctx": 2048, "threads": args.threads, "cores": cores,
                               "eos": eos, "sets": sets})
        if anchor is None:
            break
        version = anchor["version"]
        lengths = {s["name"]: [len(p) for p in s["prompts"]] for s in sets}
        for r in anchor["results"]:
            pairs = list(zip(lengths[r["name"]], map(len, r["outputs"])))
            keep(f"llama.cpp {r['name']}", sum(r["seconds"]), sum(map(len, r["outputs"])), len(r["outputs"]),
                 generation_flops(params, attn, pairs))
            if r["name"] in workloads and 1 in batches and single:
                keep(f"llama.cpp {r['name']} first {single}", sum(r["seconds"][:single]),
                     sum(map(len, r["outputs"][:single])), single, generation_flops(params, attn, pairs[:single]))
            replies[f"llama.cpp {r['name']}"] = [tok.decode([t for t in o if t not in eos], skip_special_tokens=True)
                                                 .strip() for o in r["outputs"]]
    peak = max(peak, matmul_peak(dtype))

    print(f"\nbest of {args.rounds} round(s); llama-cpp-python {version}; matmul peak ({dtype}, 2048^3, "
          f"{args.threads} thread(s), best of before and after) {peak:.1f} GFLOP/s; load average now "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'arm':<34} {'prompts':>7} {'tokens':>7} {'tok/s':>8} {'vs llama.cpp':>13} {'GFLOP/s':>8} {'% peak':>7}")
    met = any(k.startswith("llama.cpp") for k in best)
    for w in workloads + (["eval"] if args.eval_items else []):
        keys = [f"{arm} {w} batch {b}" for b in batches for arm in ("alignlab", "continuous")] if w != "eval" \
            else ["alignlab eval", "continuous eval"]
        keys += [f"before {w} batch {args.baseline}"] if args.baseline and w != "eval" else []
        for key in [f"llama.cpp {w}"] + keys:
            if key not in best:
                continue
            seconds, n_tokens, n_prompts, flops = best[key]
            rate = n_tokens / seconds
            anchor_key = f"llama.cpp {w} first {single}" if key.endswith(" batch 1") else f"llama.cpp {w}"
            ratio = ""
            if anchor_key in best and not key.startswith("llama.cpp"):
                anchor_rate = best[anchor_key][1] / best[anchor_key][0]
                ratio = f"{rate / anchor_rate:.2f}x"
                if key.startswith("continuous") and w != "length":  # the realistic cases: EOS stop, the protocol
                    met &= rate >= TARGET * anchor_rate
            elif key.startswith("llama.cpp"):
                ratio = "1.00x"
            gflops = flops / seconds / 1e9
            print(f"{key:<34} {n_prompts:>7} {n_tokens:>7} {rate:>8.1f} {ratio:>13} {gflops:>8.1f} "
                  f"{100 * gflops / peak:>6.1f}%")
    if "eos" in workloads and "llama.cpp eos" in replies:
        mine, theirs = replies[f"alignlab eos batch {batches[-1]}"], replies["llama.cpp eos"]
        same = sum(a == b for a, b in zip(mine, theirs))
        print(f"greedy replies identical, alignlab ({dtype}) and llama.cpp (Q4_1 weights, Q8 activations): "
              f"{same}/{len(mine)}")
        if f"continuous eos batch {batches[-1]}" in replies:
            cont = replies[f"continuous eos batch {batches[-1]}"]
            print(f"greedy replies identical, continuous and alignlab batch {batches[-1]}: "
                  f"{sum(a == b for a, b in zip(cont, mine))}/{len(mine)}")
    print(f"target: continuous batching, EOS stop and the eval protocol, >= {TARGET:g}x llama.cpp single-stream "
          f"[{'ok' if met else 'MISSED'}]")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
