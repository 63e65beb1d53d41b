"""Pool sampling speed on the embedded model: alignlab's best-of-n sampler (lm/best_of_n.sample: each distinct
prompt prefilled once and its KV cache copied to its rows, `sampling.shared_prefill`; top-p that sorts only the
64-token head, `sampling.TemperatureTopP`) against plain transformers `generate` on the same batch (every row
prefills its own copy of the prompt; transformers' top-p warper sorts the whole 49,152-token vocabulary per row
per step). Same prompt, batch, seed and settings as the RLHF pool (temperature 0.8, top-p 0.95, 32 new tokens);
each of the two changes is also timed alone, and pure temperature sampling as a floor. Target: at least 1.5x
the anchor's samples per second. The top-p change alone must sample identical tokens; with the shared prefill
the logits may differ in the last bits, so the share of identical completions is printed.

Run: .venv/bin/python benchmarks/bench_sampling.py [--samples 128] [--threads 1] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _util import figure, parse_cores, pin  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=128, help="completions of one prompt (one batch)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "auto"], default="auto")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each arm (the fastest is kept)")
    parser.add_argument("--cores", default="", help="cores every arm is pinned to (default: the first THREADS)")
    args = parser.parse_args()
    pin(parse_cores(args.cores), args.threads)  # every arm: the same cores and threads; machine line twice

    import alignlab.lm.sampling as sampling
    from alignlab.lm import best_of_n as bon
    from alignlab.lm import tasks
    from alignlab.lm.models import ModelSpec, load, resolve_dtype

    model, tok = load(ModelSpec("embedded", dtype=args.dtype, threads=args.threads))
    item = next(it for it in tasks.make_items() if it.kind == "capital")
    prompt = [tok.apply_chat_template(item.messages(), tokenize=False, add_generation_prompt=True)]
    ours_top_p, ours_prefill = sampling.sampling_kwargs, sampling.shared_prefill

    def transformers_top_p(temperature, top_p):
        return dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)

    def no_prefill(model, ids, mask):
        return None

    anchor = "plain generate (anchor)"
    arms = [(anchor, transformers_top_p, no_prefill, 0.95), ("top-p change only", ours_top_p, no_prefill, 0.95),
            ("shared prefill only", transformers_top_p, ours_prefill, 0.95),
            ("alignlab (both)", ours_top_p, ours_prefill, 0.95), ("alignlab, no top-p (floor)", ours_top_p,
                                                                   ours_prefill, 1.0)]
    print(f"embedded model, {resolve_dtype(args.dtype)}, {args.threads} thread(s), {args.samples} samples x 32 "
          f"new tokens, best of {args.repeats}", flush=True)
    rates, outputs = {}, {}
    for _ in range(args.repeats):
        for name, top_p_kwargs, prefill, top_p in arms:
            sampling.sampling_kwargs, sampling.shared_prefill = top_p_kwargs, prefill
            try:
                started = time.perf_counter()
                out = bon.sample(model, tok, prompt, args.samples, max_new_tokens=32, temperature=0.8, top_p=top_p,
                                 seed=1, batch_size=args.samples)
                rate = args.samples / (time.perf_counter() - started)
            finally:
                sampling.sampling_kwargs, sampling.shared_prefill = ours_top_p, ours_prefill
            rates[name] = max(rates.get(name, 0.0), rate)
            outputs[name] = out[0]
    for name, *_ in arms:
        print(f"{name:<30} {rates[name]:6.2f} samples/s  ({rates[name] / rates[anchor]:.2f}x the anchor)")
    same_top_p = outputs["top-p change only"] == outputs[anchor]
    share = sum(a == b for a, b in zip(outputs["alignlab (both)"], outputs[anchor])) / args.samples
    print(f"top-p change alone samples identical tokens: {same_top_p}; alignlab (both) completions identical to "
          f"the anchor's: {share:.0%}")
    ok = figure("alignlab sampler speed-up", rates["alignlab (both)"] / rates[anchor], "x", "target", 1.5, False)
    return 0 if ok and same_top_p else 1


if __name__ == "__main__":
    sys.exit(main())
