"""The technique spec syntax, its errors, and the experiment's techniques axis."""

from __future__ import annotations

import pytest

from alignlab.cli.main import main
from alignlab.core.config import apply_overrides
from alignlab.core.errors import ConfigError
from alignlab.core.technique import canonical, make_technique, parse_spec
from alignlab.experiments.spec_gaming import SpecGaming, SpecGamingConfig


def test_parse_and_canonical_form():
    assert parse_spec("quantilizer") == ("quantilizer", [])
    assert parse_spec(" quantilizer( q=0.1 ) ") == ("quantilizer", ["q=0.1"])
    assert parse_spec("x(a=1, b=2,3)") == ("x", ["a=1", "b=2,3"])  # a tuple value keeps its commas
    assert canonical("quantilizer(q=0.3)") == "quantilizer-v0"  # the default is left out
    assert canonical("relative-reachability(beta=3, baseline=start)") == \
        "relative-reachability-v0(baseline=start, beta=3.0)"


@pytest.mark.parametrize("spec,message", [
    ("quantilizr", "did you mean"),
    ("quantilizer(p=1)", "unknown config key 'p'"),
    ("quantilizer(q=abc)", "expected float"),
    ("quantilizer(q=2)", "q must be in"),
    ("quantilizer(q=0.1", "expected NAME"),
    ("quantilizer(0.1)", "not key=value"),
    ("", "expected NAME"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_technique(spec)


def test_set_techniques_splits_outside_parentheses():
    cfg = apply_overrides(SpecGamingConfig(), ["techniques=quantilizer(q=0.1, ),relative-reachability(beta=3)"])
    assert cfg.techniques == ("quantilizer(q=0.1, )", "relative-reachability(beta=3)")


def test_grid_pairs_each_technique_cell_with_its_baseline():
    exp = SpecGaming(SpecGamingConfig(envs=("boat-race-v0", "tomato-watering-v0"), optimizers=("value-iteration",),
                                      vi_horizons=(2, 0), techniques=("quantilizer(q=0.5)",)))
    grid = exp.grid()
    base = [p for p in grid if "technique" not in p]
    treated = [p for p in grid if "technique" in p]
    assert base == exp.cells()
    # tomato watering's exact planner runs on a factored model: no agent to wrap, so no technique cell
    assert {p["env"] for p in treated} == {"boat-race-v0"} and len(treated) == 2
    for p in treated:
        assert {k: v for k, v in p.items() if k != "technique"} in base
        assert p["technique"] == "quantilizer-v0(q=0.5)"


def test_cli_rejects_a_technique_for_a_missing_slot_with_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--runs-dir", str(tmp_path), "run", "interruptibility", "--set", "techniques=relative-reachability"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "reward" in err and "Traceback" not in err and "techniques that fit" in err
    assert not (tmp_path / "alignlab.sqlite").exists()
