"""The review as Markdown, HTML (the lab's report style, self-contained) and JSON."""

from __future__ import annotations

import json

from alignlab.reports import html as report_html
from alignlab.review import render
from alignlab.review.card import load_card
from alignlab.review.engine import review
from tests.review.conftest import card_path


def test_html_page_uses_the_report_style_and_is_self_contained():
    assert render.REPORT_CSS.strip() in render.CSS
    for rule in render.REPORT_CSS.strip().splitlines():  # the report's rules, kept in step with reports/html.py
        assert rule in report_html.CSS, rule
    result = review(load_card(card_path("content-recommender")), measure=False)
    page = render.page(result)
    assert "<script" not in page and "src=" not in page and "http://" not in page
    assert page.count("<div class='category'") == 7
    assert 'data-id="RM-1" data-severity="high"' in page


def test_markdown_and_json_carry_every_section():
    result = review(load_card(card_path("resume-screener")), measure=False)
    md = render.markdown(result)
    for heading in (
        "## Findings by risk category",
        "## Metric-gaming analysis",
        "## Checklist",
        "## NIST AI RMF",
        "## Claims re-measured",
    ):
        assert heading in md
    assert "GM-1: Trained on past human decisions" in md and "(line " in md
    back = json.loads(render.to_json(result))
    assert back["max_severity"] == "high" and back["coverage"]["measured"] is False
