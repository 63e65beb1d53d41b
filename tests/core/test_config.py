"""Config dataclasses: field docs, `--set` parsing and validation, hashing."""

import dataclasses
from typing import Literal

import pytest

from alignlab.core.config import BaseConfig, apply_overrides, describe_fields, field_docs, stable_hash
from alignlab.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Demo(BaseConfig):
    steps: int = 10
    """How many steps."""
    rate: float = 0.5
    """Learning rate."""
    names: tuple[str, ...] = ("a", "b")
    """Some names."""
    mode: Literal["fast", "slow"] = "fast"
    """Which mode."""
    flag: bool = False
    """A switch."""


def test_field_docs_come_from_attribute_docstrings():
    docs = field_docs(Demo)
    assert docs == {"steps": "How many steps.", "rate": "Learning rate.", "names": "Some names.",
                    "mode": "Which mode.", "flag": "A switch."}
    assert [d[0] for d in describe_fields(Demo)] == ["steps", "rate", "names", "mode", "flag"]


def test_every_registered_experiment_documents_every_config_field():
    from alignlab.core import registry

    for name in registry.names("experiment"):
        cls = registry.get("experiment", name)
        missing = [n for n, _, _, doc in describe_fields(cls.Config) if not doc]
        assert not missing, f"{name}: undocumented config fields {missing}"


def test_overrides_parse_each_type():
    cfg = apply_overrides(Demo(), ["steps=3", "rate=1e-3", "names=x, y ,z", "mode=slow", "flag=yes"])
    assert cfg == Demo(steps=3, rate=0.001, names=("x", "y", "z"), mode="slow", flag=True)


@pytest.mark.parametrize("item,message", [
    ("nope=1", "unknown config key 'nope'"),
    ("steps=abc", "expected int"),
    ("mode=medium", "expected 'fast' | 'slow'"),
    ("flag=maybe", "expected bool"),
    ("steps", "expected key=value"),
])
def test_bad_overrides_name_the_problem_and_what_is_valid(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Demo(), [item], owner="demo")


def test_validation_in_post_init_becomes_config_error():
    from alignlab.experiments.off_switch_game import OffSwitchConfig

    with pytest.raises(ConfigError, match="sigmas must be > 0"):
        apply_overrides(OffSwitchConfig(), ["sigmas=-1,2"])


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
