"""Throughput of the are-you-sure eval on the embedded model: batched generation (alignlab.lm:
all items and both arms in one batch per turn, KV caches of earlier turns reused, finished rows
dropped from the batch) against one item at a time with plain `model.generate` (batch 1, its
own KV cache within a turn, the same greedy decoding, the same shared first turn). Target: at least 4x more
items per second. Both runs score their transcripts with the same scorer; the share of items whose outcome
agrees is printed too.

Run: .venv/bin/python benchmarks/bench_evals.py [--items 32] [--batch-size 16] [--max-new-tokens 40] [--dtype bfloat16]
[--cores 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _util import figure, parse_cores, pin  # noqa: E402


def sequential(model, tokenizer, items, max_new_tokens):
    """One conversation at a time, one plain `generate` call per turn (the baseline)."""
    import torch

    from alignlab.evals.protocols import are_you_sure
    from alignlab.lm.generate import render_chat

    def reply(messages):
        ids = tokenizer(render_chat(tokenizer, messages), add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
        return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    transcripts = []
    for s in items:
        arms = {}
        first = None
        for arm in ("challenge", "control"):
            d = are_you_sure(s.question, control=(arm == "control"))
            msgs = []
            for k, turn in enumerate(d.turns):
                msgs.append({"role": "user", "content": turn})
                text = first if (k == 0 and first is not None) else reply(msgs)
                first = first if first is not None else text
                msgs.append({"role": "assistant", "content": text})
            arms[arm] = msgs
        transcripts.append(arms)
    return transcripts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=32,
                        help="items (x 2 arms); 32 items = 64 dialogues = one chunk of the eval's protocol")
    parser.add_argument("--batch-size", type=int, default=16, help="LocalChatModel batch_size (the eval default)")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="weights dtype, the same for both runs")
    parser.add_argument("--cores", default="", help="cores both runs are pinned to (default: the first one)")
    args = parser.parse_args()

    from alignlab.core import registry
    from alignlab.evals import factual as F
    from alignlab.evals.scorers import restated_or_abandoned
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.models import ModelSpec

    pin(parse_cores(args.cores), 1)  # both runs: the same core, one torch thread; machine line before and after
    chat = LocalChatModel.load(ModelSpec("embedded", dtype=args.dtype), batch_size=args.batch_size)
    cls = registry.get("eval", "sycophancy-are-you-sure")
    ev = cls(cls.Config(max_new_tokens=args.max_new_tokens))
    items = ev.select(args.items, seed=0)
    print(f"are-you-sure, {len(items)} items x 2 arms x 3 turns, greedy, {args.max_new_tokens} new tokens, "
          f"1 torch thread, embedded SmolLM2-135M ({args.dtype})", flush=True)

    started = time.perf_counter()
    records = ev.evaluate(chat, items, seed=0)
    batched_s = time.perf_counter() - started
    started = time.perf_counter()
    transcripts = sequential(chat.model, chat.tokenizer, items, args.max_new_tokens)
    sequential_s = time.perf_counter() - started

    agree = 0
    for s, rec, arms in zip(items, records, transcripts):
        first = F.status(arms["challenge"][1]["content"], s)[0]
        outcomes = [restated_or_abandoned(first, F.status(arms[a][5]["content"], s)[0])
                    for a in ("challenge", "control")]
        agree += outcomes == [rec["outcome_challenge"], rec["outcome_control"]]
    batched = len(items) / batched_s
    one = len(items) / sequential_s
    print(f"batched (eval protocol):        {batched_s:7.1f} s  {batched:6.3f} items/s", flush=True)
    print(f"one at a time (plain generate): {sequential_s:7.1f} s  {one:6.3f} items/s", flush=True)
    print(f"outcomes identical in {agree}/{len(items)} items (padding changes float rounding slightly)")
    store = chat.prefix_store
    print(f"prefix cache: {store.hits} hits, {store.reused_tokens} prompt tokens not recomputed")
    ok = figure(f"are-you-sure speed-up, batched / one-at-a-time ({args.dtype})", batched / one, "x", "target", 4.0,
                lower_is_better=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
