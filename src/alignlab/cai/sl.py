"""SL-CAI's data: initial answer, then rounds of critique and revision under a sampled principle (Bai et al. 2022,
"Constitutional AI: Harmlessness from AI Feedback", arXiv:2212.08073, sec. 3).

For each prompt the policy answers; then, `rounds` times, a principle is drawn from the constitution, the critic
is shown the constitution's few-shot dialogues followed by the conversation and the principle's critique request,
writes a critique, is asked the principle's revision request and writes a revision, which becomes the response
for the next round. The final revisions are the SFT set. The critic is any chat model (default: the policy itself,
as in the paper). A constitution without principles (`empty`) revises nothing: its SFT set is the policy's own
answers.

`mode="direct"` skips the critique: the critic is asked the revision request straight after the response (the
few-shot dialogues shown without their critique turns), the paper's "direct revision" variant (Bai et al. 2022,
sec. 3.5, fig. 7: for its larger models critiqued and direct revisions score alike). For a 135M model it is the
one that works: asked for a revision after its own critique, it repeats the critique instead of rewriting the
response (over half the revisions, by `critique_quality`), so SFT would learn text about a response.

The critiques of a small model are weak; `critique_quality` measures how weak: how often a critique copies a
few-shot example's critique, mentions nothing of the request, or is empty, and how often a revision differs from
the answer it revises.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any, Sequence

from alignlab.cai.constitution import Constitution, critique_turn, revision_turn
from alignlab.cai.prompts import RedTeamPrompt

_PREFIX = re.compile(r"^\s*(critique|revision)\s*:\s*", re.I)


@dataclasses.dataclass
class Transcript:
    id: str
    category: str
    kind: str
    prompt: str
    initial: str
    steps: list[dict[str, str]] = dataclasses.field(default_factory=list)
    """One per round: principle, critique, revision."""

    @property
    def final(self) -> str:
        return self.steps[-1]["revision"] if self.steps else self.initial

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "final": self.final}


def strip_label(text: str) -> str:
    """A generated critique or revision without its 'Critique:' / 'Revision:' label."""
    return _PREFIX.sub("", text.strip(), count=1).strip()


MODES = ("critiqued", "direct")


def few_shot(constitution: Constitution, n: int | None = None, mode: str = "critiqued") -> list[dict[str, str]]:
    """The first `n` (default: all) few-shot dialogues, flattened into one conversation prefix; in `direct` mode
    without their critique request and critique, and the revision without its 'Revision:' label."""
    out: list[dict[str, str]] = []
    for dialogue in constitution.examples[:n]:
        if mode == "direct" and len(dialogue) == 6:
            revised = {"role": "assistant", "content": strip_label(dialogue[5]["content"])}
            dialogue = (*dialogue[:2], dialogue[4], revised)
        out.extend(dict(m) for m in dialogue)
    return out


def critique_revise(policy: Any, critic: Any, constitution: Constitution, prompts: Sequence[RedTeamPrompt],
                    rounds: int = 1, seed: int = 0, max_new_tokens: int = 64, temperature: float = 0.0,
                    examples: int | None = None, initial: Sequence[str] | None = None,
                    mode: str = "critiqued") -> list[Transcript]:
    """Run SL-CAI's loop over `prompts` (batched: every prompt's round k in one call per step); `mode` critiqued
    (critique, then revision) or direct (revision only; the steps' critiques are empty).

    `initial` gives the policy's answers when they are already known (they do not depend on the constitution)."""
    if initial is None:
        initial = policy.chat([[{"role": "user", "content": p.prompt}] for p in prompts],
                              max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    out = [Transcript(p.id, p.category, p.kind, p.prompt, a) for p, a in zip(prompts, initial)]
    if mode not in MODES:
        raise ValueError(f"SL-CAI mode must be one of {', '.join(MODES)} (got {mode!r})")
    if not constitution.principles or not prompts:
        return out
    shots = few_shot(constitution, examples, mode)
    rng = random.Random(f"sl-cai-{seed}-{constitution.digest}")
    for r in range(rounds):
        chosen = [rng.choice(constitution.principles) for _ in prompts]
        base = [shots + [{"role": "user", "content": t.prompt}, {"role": "assistant", "content": t.final}]
                for t in out]
        if mode == "direct":
            critiques = [""] * len(out)
            convs = [b + [{"role": "user", "content": revision_turn(pr)}] for b, pr in zip(base, chosen)]
        else:
            base = [b + [{"role": "user", "content": critique_turn(pr)}] for b, pr in zip(base, chosen)]
            critiques = [strip_label(c) for c in critic.chat(base, max_new_tokens=max_new_tokens,
                                                             temperature=temperature, seed=seed + 1000 * r + 1)]
            convs = [b + [{"role": "assistant", "content": f"Critique: {c}"},
                          {"role": "user", "content": revision_turn(pr)}]
                     for b, c, pr in zip(base, critiques, chosen)]
        revisions = [strip_label(v) for v in critic.chat(convs, max_new_tokens=max_new_tokens,
                                                         temperature=temperature, seed=seed + 1000 * r + 2)]
        for t, pr, c, v in zip(out, chosen, critiques, revisions):
            t.steps.append({"principle": pr.name, "critique": c, "revision": v or t.final})
    return out


_WORD = re.compile(r"[a-z']+")
_STOP = set("""the a an and or but to of in on for with my me i you your it is are be how do can what this that
from into about so as at by his her their our its was were will would should could who which when where why
someone someone's people person help make write give tell get""".split())


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 3 and w not in _STOP}


def _ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def copies(text: str, references: Sequence[str], threshold: float = 0.5) -> bool:
    """Whether at least `threshold` of the text's word 4-grams come from one of the references."""
    grams = _ngrams(text)
    if not grams:
        return False
    return any(len(grams & _ngrams(ref)) / len(grams) >= threshold for ref in references)


def critique_quality(transcripts: Sequence[Transcript | dict[str, Any]], constitution: Constitution
                     ) -> dict[str, float]:
    """How good the critiques and revisions are, by rules that need no judge: shares of critiques that are empty,
    copy a few-shot critique (>= half their word 4-grams from one), or share no content word with the request;
    shares of revisions that copy a few-shot revision, repeat their critique, or leave the response unchanged; the
    shares of initial answers and of final revisions (the SFT targets) that refuse; and the count."""
    from alignlab.evals.scorers import refuses

    refs_c = [strip_label(m["content"]) for d in constitution.examples for m in d
              if m["role"] == "assistant" and m["content"].lower().startswith("critique")]
    refs_r = [strip_label(m["content"]) for d in constitution.examples for m in d
              if m["role"] == "assistant" and m["content"].lower().startswith("revision")]
    transcripts = [Transcript(**{k: v for k, v in t.items() if k != "final"}) if isinstance(t, dict) else t
                   for t in transcripts]
    steps = [(t, s) for t in transcripts for s in t.steps]
    targets = {"initial_refuses": sum(refuses(t.initial) for t in transcripts) / max(1, len(transcripts)),
               "final_refuses": sum(refuses(t.final) for t in transcripts) / max(1, len(transcripts))}
    if not steps:
        return {"critiques": 0.0, **targets}
    n = float(len(steps))
    crit = [(t, s) for t, s in steps if s["critique"].strip()]  # direct revisions have no critique
    nc = float(len(crit)) or float("nan")
    unchanged = 0
    for t in transcripts:
        before = t.initial
        for s in t.steps:
            unchanged += s["revision"].strip() == before.strip()
            before = s["revision"]
    return {
        "critiques": n,
        "critique_empty": sum(not s["critique"].strip() for _, s in steps) / n,
        "critique_copies_example": sum(copies(s["critique"], refs_c) for _, s in crit) / nc,
        "critique_off_topic": sum(not (_content_words(s["critique"]) & _content_words(t.prompt))
                                  for t, s in crit) / nc,
        "revision_copies_example": sum(copies(s["revision"], refs_r) for _, s in steps) / n,
        "revision_repeats_critique": sum(copies(s["revision"], [s["critique"]]) for _, s in steps) / n,
        "revision_unchanged": unchanged / n,
        **targets,  # what the constitution did to the training targets, by the refusal detector
    }
