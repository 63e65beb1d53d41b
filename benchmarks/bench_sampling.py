"""Pool sampling speed on the embedded model: alignlab's partial-sort top-p (lm/sampling.py) against transformers'
own top-p warper (a full sort of the 49,152-token vocabulary per row per step), same prompts, batch, seed and
settings as the RLHF pool (temperature 0.8, top-p 0.95, 32 new tokens); pure temperature sampling (no top-p) is
timed too, as the floor. Target: at least 1.2x the samples per second of transformers' top-p, with the same
tokens (the two runs must sample identical completions under the same seed).

Run: .venv/bin/python benchmarks/bench_sampling.py [--samples 128] [--threads 1] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _util import figure  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=128, help="completions of one prompt (one batch)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "auto"], default="auto")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each arm (the fastest is kept)")
    args = parser.parse_args()

    import alignlab.lm.sampling as sampling
    from alignlab.lm import best_of_n as bon
    from alignlab.lm import tasks
    from alignlab.lm.models import ModelSpec, load, resolve_dtype

    model, tok = load(ModelSpec("embedded", dtype=args.dtype, threads=args.threads))
    item = next(it for it in tasks.make_items() if it.kind == "capital")
    prompt = [tok.apply_chat_template(item.messages(), tokenize=False, add_generation_prompt=True)]
    ours = sampling.sampling_kwargs

    def transformers_top_p(temperature, top_p):
        return dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)

    arms = [("transformers top-p (anchor)", transformers_top_p, 0.95), ("alignlab top-p", ours, 0.95),
            ("no top-p (floor)", ours, 1.0)]
    print(f"embedded model, {resolve_dtype(args.dtype)}, {args.threads} thread(s), {args.samples} samples x 32 "
          f"new tokens, best of {args.repeats}; load {os.getloadavg()[0]:.1f}", flush=True)
    rates, outputs = {}, {}
    for _ in range(args.repeats):
        for name, kwargs, top_p in arms:
            sampling.sampling_kwargs = kwargs
            try:
                started = time.perf_counter()
                out = bon.sample(model, tok, prompt, args.samples, max_new_tokens=32, temperature=0.8, top_p=top_p,
                                 seed=1, batch_size=args.samples)
                rate = args.samples / (time.perf_counter() - started)
            finally:
                sampling.sampling_kwargs = ours
            rates[name] = max(rates.get(name, 0.0), rate)
            outputs[name] = out
    same = outputs["alignlab top-p"] == outputs["transformers top-p (anchor)"]
    anchor = rates["transformers top-p (anchor)"]
    for name, _, _ in arms:
        print(f"{name:<30} {rates[name]:6.2f} samples/s  ({rates[name] / anchor:.2f}x the anchor)")
    print(f"identical completions under the same seed: {same}")
    ok = figure("alignlab top-p speed-up", rates["alignlab top-p"] / anchor, "x", "target", 1.2, False)
    return 0 if ok and same else 1


if __name__ == "__main__":
    sys.exit(main())
