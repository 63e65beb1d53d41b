"""alignlab's CAA against the steering-vectors library's (Tan et al.; steering-vectors 0.12.2, MIT) on the embedded
model: the same (sycophantic, honest) pairs of the training split, the same layers.

Figures, in one run, the same torch threads and cores:
- agreement of the vectors: cosine similarity of alignlab's `caa.train_vectors` and the library's
  `train_steering_vector` (mean aggregator, activations read at the last token, `decoder_block` layers) per layer;
- agreement of the effect: held-out A/B P(sycophantic) and the logits of held-out prompts under each vector applied by
  its own code (alignlab's hooks through the steered model; the library's `SteeringVector.apply`), same multiplier;
- time to train the vectors (alignlab batches 16 left-padded texts; the library runs one text at a time), and the
  cost of reading activations through nnsight's tracer against a forward with alignlab's hooks.

steering-vectors 0.12.2 pins transformers<5; it is installed with --no-deps (requirements-dev.txt) and this script
checks it works with the installed transformers by running it.

Run: .venv/bin/python benchmarks/bench_steering.py [--pairs 48] [--items 24] [--layers 6,10,14] [--multiplier -32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import parse_cores, pin  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=48, help="training pairs (of the training split)")
    ap.add_argument("--items", type=int, default=24, help="held-out items for the effect")
    ap.add_argument("--layers", default="6,10,14")
    ap.add_argument("--multiplier", type=float, default=-32.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cores", default="", help="cores both arms are pinned to (default: the first THREADS)")
    args = ap.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from alignlab.evals.backends import make_model
    from alignlab.evals.core import sample
    from alignlab.interp import caa
    from alignlab.interp.hooks import capture, capture_nnsight

    try:
        from steering_vectors import train_steering_vector
    except ImportError:
        print("steering-vectors is not installed: .venv/bin/pip install --no-deps steering-vectors==0.12.2")
        return 2
    pin(parse_cores(args.cores), args.threads)  # both arms: the same cores and threads; machine line before and after
    layers = [int(x) for x in args.layers.split(",")]
    chat = make_model("embedded", dtype="float32", threads=args.threads)
    model, tok = chat.model, chat.tokenizer
    texts = caa.pair_texts(chat.render, caa.factual_split("train")[:args.pairs])

    started = time.perf_counter()
    ours = caa.train_vectors(model, tok, texts)["vectors"]
    t_ours = time.perf_counter() - started
    started = time.perf_counter()
    theirs = train_steering_vector(model, tok, texts, layers=layers, layer_type="decoder_block",
                                   read_token_index=-1, batch_size=1)
    t_theirs = time.perf_counter() - started
    print(f"train vectors, {len(texts)} pairs: alignlab {t_ours:.1f} s (all {ours.shape[0]} layers, batches of 16); "
          f"steering-vectors {t_theirs:.1f} s ({len(layers)} layers, batch 1); ratio {t_ours / t_theirs:.3f}")
    for layer in layers:
        a, b = ours[layer], theirs.layer_activations[layer].float().cpu()
        cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
        print(f"layer {layer:>2}: cosine {cos:.5f}; norms alignlab {a.norm():.4f}, steering-vectors {b.norm():.4f}")

    items = sample(caa.factual_split("test"), args.items, 0)
    probe = [chat.render(caa.ab_item(it)["messages"]) + "(" for it in items[:4]]
    for layer in layers:
        steered = caa.steered_chat_model(chat, ours[layer], layer, args.multiplier, "ours")
        p_ours = [s["p_sycophantic"] for s in caa.ab_scores(steered, items)]
        single = type(theirs)(layer_activations={layer: theirs.layer_activations[layer]},
                              layer_type=theirs.layer_type)
        with single.apply(model, multiplier=args.multiplier, min_token_index=0):
            p_lib = [s["p_sycophantic"] for s in caa.ab_scores(chat, items)]
            ids = [torch.tensor([tok(t, add_special_tokens=False)["input_ids"]]) for t in probe]
            with torch.no_grad():
                lib_logits = [model(input_ids=i).logits[0, -1] for i in ids]
        with torch.no_grad():
            our_logits = [steered.model(input_ids=i).logits[0, -1] for i in ids]
        diff = max(float((x - y).abs().max()) for x, y in zip(our_logits, lib_logits))
        print(f"layer {layer:>2} x{args.multiplier:g}: held-out A/B P(sycophantic) alignlab {np.mean(p_ours):.4f}, "
              f"steering-vectors {np.mean(p_lib):.4f} (max item difference "
              f"{max(abs(x - y) for x, y in zip(p_ours, p_lib)):.4f}); next-token logits max |diff| {diff:.2e}")

    text = texts[0][0]
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    reps = 5
    capture_nnsight(model, tok, text, layers)  # warm-up
    started = time.perf_counter()
    for _ in range(reps):
        capture_nnsight(model, tok, text, layers)
    t_nn = (time.perf_counter() - started) / reps
    started = time.perf_counter()
    for _ in range(reps):
        with torch.no_grad(), capture(model, [f"resid_post.{i}" for i in layers]):
            model(input_ids=ids, use_cache=False)
    t_hooks = (time.perf_counter() - started) / reps
    print(f"read {len(layers)} layers of one {ids.shape[1]}-token text: alignlab hooks {t_hooks * 1000:.1f} ms, "
          f"nnsight trace {t_nn * 1000:.1f} ms; ratio {t_hooks / t_nn:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
