"""Model-assisted review: six modes, each an editable template; a --prompts folder overrides; the text is kept apart
from the findings and marked model-generated (the tiny random test model stands in for plumbing only)."""

from __future__ import annotations

import pytest

from alignlab.core.errors import UserError
from alignlab.review.assist import MODES, assisted, fill, template_text
from alignlab.review.card import load_card
from alignlab.review.engine import gate, review
from alignlab.review import render
from tests.review.conftest import card_path


def test_every_mode_has_a_shipped_template_that_fills_from_the_card():
    card = load_card(card_path("coding-agent"))
    findings = review(card, measure=False)["findings"]
    assert len(MODES) == 6
    for mode in MODES:
        text, where = template_text(mode)
        prompt = fill(text, card, findings, "Fix ticket 12: the median of an even list is wrong", where)
        assert "$" not in prompt.replace("$$", "")
    autonomy = fill(template_text("autonomy")[0], card, findings, None, "x")
    assert "open_pull_request: network, send (no approval)" in autonomy
    intent = fill(template_text("intent")[0], card, findings, "make the build green", "x")
    assert "make the build green" in intent


def test_prompts_folder_overrides_and_bad_placeholders_are_one_line(tmp_path):
    (tmp_path / "values.md").write_text("Trade-offs for $input among $people.")
    card = load_card(card_path("resume-screener"))
    text, where = template_text("values", tmp_path)
    assert where.endswith("values.md") and fill(text, card, [], "hiring", where).startswith("Trade-offs for hiring")
    assert template_text("full", tmp_path)[1] == "shipped prompts/full.md"  # modes it lacks fall back
    with pytest.raises(UserError, match=r"unknown placeholder \$nonsense; valid: \$card"):
        fill("About $nonsense", card, [], None, "mine.md")
    with pytest.raises(UserError, match="unknown review mode 'poem'"):
        template_text("poem")


def test_model_text_is_listed_apart_and_never_gates(tiny):
    card = load_card(card_path("resume-screener"))
    result = review(card, measure=False)
    path, model = tiny
    result["model_assisted"] = assisted(
        card, result["findings"], path, ["red-team", "intent"], "screen this CV", max_new_tokens=16, model=model
    )
    assert [m["mode"] for m in result["model_assisted"]] == ["red-team", "intent"]
    assert all(m["generated"] and m["text"] for m in result["model_assisted"])
    assert "screen this CV" in result["model_assisted"][1]["prompt"]
    md = render.markdown(result)
    assert "## Model-assisted review (MODEL-GENERATED" in md
    assert md.index("## Findings by risk category") < md.index("MODEL-GENERATED")
    assert "MODEL-GENERATED" in render.page(result)
    assert all(f["origin"] in ("rule", "measured") for f in gate(result, "info"))
