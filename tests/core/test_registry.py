"""Registry: names, versions, unknown and duplicate errors."""

import pytest

from alignlab.core import registry
from alignlab.core.errors import RegistryError


@pytest.fixture(autouse=True)
def _restore_registry():
    """Components registered by these tests must not leak into other tests."""
    registry.load_all()
    saved = {kind: dict(table) for kind, table in registry._REGISTRY.items()}
    yield
    for kind, table in saved.items():
        registry._REGISTRY[kind].clear()
        registry._REGISTRY[kind].update(table)


def test_names_lists_registered_experiments():
    assert "off-switch-game-v0" in registry.names("experiment")


def test_resolve_without_version_picks_newest():
    @registry.register("experiment", "zz-versioned-v0")
    class V0:  # noqa: D401
        pass

    @registry.register("experiment", "zz-versioned-v3")
    class V3:
        pass

    assert registry.resolve("experiment", "zz-versioned") == "zz-versioned-v3"
    assert registry.get("experiment", "zz-versioned-v0") is V0


def test_unknown_name_lists_valid_ones_and_suggests():
    with pytest.raises(RegistryError) as exc:
        registry.resolve("experiment", "off-swich-game")
    msg = str(exc.value)
    assert "did you mean 'off-switch-game'" in msg and "off-switch-game-v0" in msg


def test_duplicate_name_from_another_class_raises():
    @registry.register("technique", "zz-dup-v0")
    class A:
        pass

    with pytest.raises(RegistryError, match="duplicate technique name 'zz-dup-v0'"):
        @registry.register("technique", "zz-dup-v0")
        class B:
            pass


@pytest.mark.parametrize("bad", ["NoVersion", "no-version", "Bad_Name-v0", "x-v"])
def test_names_must_be_kebab_case_with_version(bad):
    with pytest.raises(RegistryError, match="kebab-case"):
        registry.register("env", bad)


def test_unknown_kind():
    with pytest.raises(RegistryError, match="valid kinds"):
        registry.names("widget")
