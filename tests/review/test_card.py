"""System cards: the examples validate, the published schema is the code's, and every malformed card gives one line
naming the file, the line and the field."""

from __future__ import annotations

import json

import pytest

from alignlab.review.card import CardError, infer_kind, load_card, parse_card
from alignlab.review.schema import SCHEMA
from tests.conftest import REPO
from tests.review.conftest import EXAMPLES, card_path


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_cards_validate(name):
    card = load_card(card_path(name))
    assert card.name and card.objectives and card.line("purpose.intended_goal")


def test_published_schema_is_the_codes():
    published = json.loads((REPO / "schemas" / "system-card.schema.json").read_text())
    assert published == json.loads(json.dumps(SCHEMA))


GOOD = card_path("support-chatbot").read_text()


@pytest.mark.parametrize(
    "edit, line, field, words",
    [
        (("level: human-monitors", "level: semi-autonomous"), 28, "autonomy.level", "'semi-autonomous' is not one of"),
        (
            ("  intended_goal: Customers", "  intended_gaol: Customers"),
            6,
            "purpose.intended_gaol",
            "not a card field (did you mean 'intended_goal'?)",
        ),
        (
            ("    monitored: true\n  - metric: average", "    monitored: yes please\n  - metric: average"),
            14,
            "objectives.0.monitored",
            "must be a boolean",
        ),
        (("card_version: 1", "card_version: 2"), 2, "card_version", "must be 1"),
        (("autonomy:\n  level: human-monitors\n", "autonomy:\n"), 27, "autonomy.level", "required but missing"),
    ],
)
def test_malformed_card_names_line_and_field(edit, line, field, words):
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(CardError) as err:
        parse_card(text, "chatbot.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"chatbot.yaml:{line}: field '{field}': "), msg
    assert words in msg


def test_yaml_errors_duplicates_and_non_mappings_are_one_line():
    with pytest.raises(CardError, match=r"^c.yaml:4: not valid YAML: expected ',' or ']'"):
        parse_card("name: x\npurpose:\n  summary: [unclosed\n  intended_goal: y\n", "c.yaml")
    with pytest.raises(CardError, match=r"^c.yaml:2: field 'name' appears twice \(first on line 1\)$"):
        parse_card("name: x\nname: y\n", "c.yaml")
    with pytest.raises(CardError, match=r"^c.yaml:1: a system card is a YAML mapping"):
        parse_card("- just\n- a list\n", "c.yaml")
    with pytest.raises(CardError, match=r"no such card file"):
        load_card(REPO / "no-such-card.yaml")


def test_metric_kinds_are_inferred_from_names():
    assert infer_kind("watch time per session") == "engagement"
    assert infer_kind("time to shortlist") == "speed"
    assert infer_kind("customer satisfaction (CSAT)") == "satisfaction"
    assert infer_kind("claims paid per month") == "cost"
    assert infer_kind("weekly complaints") == "complaints"
    assert infer_kind("frobnication index") == "other"
