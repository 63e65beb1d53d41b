"""The technique contract: a remedy that wraps one slot of an experiment and is measured against
the same experiment without it, reporting its benefit and its alignment tax (Askell et al. 2021,
"A General Language Assistant as a Laboratory for Alignment", arXiv:2112.00861, sec. 2.3).

A technique is registered as kind `technique`, configured by a frozen documented dataclass like
every other component, and declares the one slot it acts on:

| slot | what `apply` takes and returns |
|---|---|
| `chat-model` | a chat model (`chat`, `logprobs`) in, a chat model out |
| `reward` | a Gymnasium environment in, a wrapper whose `step()` returns the shaped specified reward |
| `train-envs` | the list of environment names an RL experiment trains on in, another list out |
| `optimizer` | an untrained agent (or an optimizer's settings object) in, its replacement out |
| `reward-model` | a reward-model settings dict in, a changed one out |
| `tool-executor` | a guard settings dict (policy, approver) in, a changed one out |
| `classifier-training` | a classifier's training recipe (`robustness.training.Recipe`) in, a changed one out |

Techniques see what the optimizer sees and never the intended objective (tests/test_no_peeking.py).

Spec syntax (config fields, `--set techniques=...`, `--model BASE#SPEC`): `NAME` or
`NAME(key=value, key=value)`, e.g. `quantilizer(q=0.1)`; NAME may omit its `-vN` suffix; values are
parsed as the field's type (a tuple field takes `key=a,b`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

from alignlab.core import registry
from alignlab.core.config import BaseConfig, apply_overrides, config_fields, split_top
from alignlab.core.errors import ConfigError, RegistryError

SLOTS: dict[str, str] = {
    "chat-model": "a chat model in, a chat model out (system prompt, steering vector, fine-tuned adapter)",
    "reward": "an RL environment in, one whose specified reward is shaped (impact penalties, learned rewards)",
    "train-envs": "the training distribution of an RL experiment (which environments the agent trains on)",
    "optimizer": "an RL optimizer or its update target (quantilizer, KL penalty, off-policy target)",
    "reward-model": "the proxy reward model of RLHF (ensembles, regularisers)",
    "tool-executor": "the guard around an agent's tool calls (policies, approvers)",
    "classifier-training": "a supervised classifier's training recipe (adversarial training, augmentation)",
}

_SPEC_RE = re.compile(r"^\s*([a-z0-9-]+)\s*(?:\((.*)\))?\s*$", re.S)


class Technique:
    """Base class. Subclass it, set the class attributes, register it:

        @register("technique", "my-remedy-v0")
        class MyRemedy(Technique):
            slot = "reward"; title = "..."; summary = "..."; source = "Author et al. 2024, ..."
            Config = MyRemedyConfig
            def apply(self, component, **context): ...
    """

    slot: ClassVar[str] = ""
    """One of SLOTS: the component this technique wraps."""
    title: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    """What it does, one paragraph (shown by `alignlab describe`)."""
    source: ClassVar[str] = ""
    """The paper it implements."""
    Config: ClassVar[type[BaseConfig]] = BaseConfig
    matrix_specs: ClassVar[tuple[str, ...]] = ()
    """Settings the technique matrix runs, as spec arguments (e.g. `("q=0.1", "q=0.5")`); empty: the defaults."""
    smoke_args: ClassVar[str] = ""
    """Spec arguments of a cheap version for the contract tests' smoke cells (e.g. `"items=8"` for a technique that
    trains on data); empty: the defaults. Results of a smoke cell are plumbing checks, never reported figures."""
    registered_name: ClassVar[str] = ""

    def __init__(self, config: BaseConfig | None = None):
        config = self.Config() if config is None else config
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} takes a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    @property
    def spec(self) -> str:
        """The canonical spec: full name, and the settings that differ from the defaults, sorted."""
        return format_spec(self.registered_name, self.config)

    def supports(self, target: dict[str, Any]) -> str | None:
        """None if the technique applies to this experiment cell (its parameters, plus `slot`),
        else the reason it does not (the cell is left out of the grid)."""
        return None

    def apply(self, component: Any, **context: Any) -> Any:
        """Wrap the slot's component; see the module docstring for each slot's types."""
        raise NotImplementedError


def parse_spec(text: str) -> tuple[str, list[str]]:
    """(name, ["key=value", ...]) of `NAME` or `NAME(key=value, ...)`; raises ConfigError."""
    match = _SPEC_RE.match(text or "")
    if not match:
        raise ConfigError(f"technique spec {text!r}: expected NAME or NAME(key=value, ...), e.g. 'quantilizer(q=0.1)'")
    name, args = match.group(1), match.group(2)
    overrides: list[str] = []
    try:
        items = split_top(args or "")
    except ValueError as exc:
        raise ConfigError(f"technique spec {text!r}: {exc}") from None
    for item in items:
        if not item:
            continue
        if "=" in item:
            overrides.append(item)
        elif overrides:  # the next element of a tuple value: key=a,b
            overrides[-1] += "," + item
        else:
            raise ConfigError(f"technique spec {text!r}: {item!r} is not key=value")
    return name, overrides


def technique_class(name: str) -> type[Technique]:
    try:
        return registry.get("technique", name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def make_technique(spec: str) -> Technique:
    """The technique a spec names, configured; raises ConfigError naming what is wrong."""
    name, overrides = parse_spec(spec)
    cls = technique_class(name)
    config = apply_overrides(cls.Config(), overrides, owner=f"technique {cls.registered_name}")
    return cls(config)


def _fmt(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_fmt(v) for v in value)
    return "none" if value is None else str(value)


def format_spec(name: str, config: BaseConfig) -> str:
    changed = [(n, getattr(config, n)) for n, _, default, _ in config_fields(type(config))
               if getattr(config, n) != default]
    if not changed:
        return name
    return f"{name}({', '.join(f'{k}={_fmt(v)}' for k, v in sorted(changed))})"


def canonical(spec: str) -> str:
    """`spec` in canonical form (full name, non-default settings sorted)."""
    return make_technique(spec).spec


def check_specs(specs: tuple[str, ...] | list[str], slots: tuple[str, ...], owner: str) -> list[Technique]:
    """The techniques `specs` name, each checked to act on one of `slots`; ConfigError otherwise."""
    out = []
    for spec in specs:
        tech = make_technique(spec)
        if tech.slot not in slots:
            valid = [n for n in registry.names("technique") if registry.get("technique", n).slot in slots]
            raise ConfigError(
                f"technique {tech.registered_name} acts on the {tech.slot!r} slot, which {owner} does not expose "
                f"(its slots: {', '.join(slots) or 'none'}); techniques that fit: {', '.join(valid) or 'none'}")
        out.append(tech)
    return out


def describe_slot(slot: str) -> str:
    return SLOTS.get(slot, "")


@dataclasses.dataclass(frozen=True)
class NoConfig(BaseConfig):
    """A technique without settings."""
