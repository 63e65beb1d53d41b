"""Registry at the seams: `@register(kind, name)`, `make(kind, name, ...)`, `names(kind)`.

Inspired by inspect_ai's registry: one pattern for every component kind. Names are
kebab-case with a version suffix (`boat-race-v0`); `make` and `get` also accept the name
without its version and resolve it to the newest registered version.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import re
from typing import Any, Callable, TypeVar

from alignlab.core.errors import RegistryError

KINDS = ("env", "agent", "technique", "eval", "control", "experiment")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*-v[0-9]+$")

# The packages whose modules register components; imported by load_all().
COMPONENT_PACKAGES = (
    "alignlab.envs",
    "alignlab.agents",
    "alignlab.techniques",
    "alignlab.evals",
    "alignlab.controls",
    "alignlab.experiments",
)

_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_LOADED = False

T = TypeVar("T")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class or function decorator that registers a component under `kind` and `name`."""
    _check_kind(kind)
    if not NAME_RE.match(name):
        raise RegistryError(
            f"invalid {kind} name {name!r}: names are kebab-case with a version, e.g. 'boat-race-v0'"
        )

    def decorator(obj: T) -> T:
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not obj:
            same = (
                getattr(existing, "__module__", None) == getattr(obj, "__module__", None)
                and getattr(existing, "__qualname__", None) == getattr(obj, "__qualname__", None)
            )
            if not same:  # re-importing the same module (e.g. under spawn) is not a clash
                raise RegistryError(
                    f"duplicate {kind} name {name!r}: already registered by "
                    f"{existing.__module__}.{existing.__qualname__}"
                )
        _REGISTRY[kind][name] = obj
        try:
            obj.registered_name = name  # type: ignore[attr-defined]
            obj.registered_kind = kind  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        return obj

    return decorator


def _version(name: str) -> int:
    return int(name.rsplit("-v", 1)[1])


def resolve(kind: str, name: str) -> str:
    """The full registered name for `name`, which may omit its `-vN` suffix."""
    _check_kind(kind)
    load_all()
    table = _REGISTRY[kind]
    if name in table:
        return name
    versions = [n for n in table if n.rsplit("-v", 1)[0] == name]
    if versions:
        return max(versions, key=_version)
    valid = sorted(table)
    hint = difflib.get_close_matches(name, valid + [n.rsplit("-v", 1)[0] for n in valid], n=1)
    msg = f"unknown {kind} {name!r}"
    if hint:
        msg += f" (did you mean {hint[0]!r}?)"
    msg += f"; valid {kind} names: {', '.join(valid) if valid else '(none registered)'}"
    raise RegistryError(msg)


def resolve_or_none(kind: str, name: str) -> str | None:
    """`resolve(kind, name)`, or None where nothing is registered under that name."""
    try:
        return resolve(kind, name)
    except RegistryError:
        return None


def get(kind: str, name: str) -> Any:
    """The registered class or factory (not an instance)."""
    return _REGISTRY[kind][resolve(kind, name)]


def make(kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Instantiate the registered component."""
    return get(kind, name)(*args, **kwargs)


def names(kind: str) -> list[str]:
    """Sorted registered names of one kind."""
    _check_kind(kind)
    load_all()
    return sorted(_REGISTRY[kind])


def load_all() -> None:
    """Import every module of the component packages (and plugins) so they register.

    Plugins: `ALIGNLAB_PLUGINS` is a comma-separated list of importable modules, for
    components that live outside this package (tests use it for a slow test grid).
    """
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for pkg_name in COMPONENT_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg_name + "."):
            importlib.import_module(info.name)
    for mod in filter(None, (m.strip() for m in os.environ.get("ALIGNLAB_PLUGINS", "").split(","))):
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise RegistryError(f"cannot import plugin module {mod!r} from ALIGNLAB_PLUGINS: {exc}") from exc
