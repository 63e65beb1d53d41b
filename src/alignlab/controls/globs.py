"""Path globs for guard policies: `**` crosses folders, `*` and `?` do not, `[..]` classes, `{a,b}` alternatives.

Matched by one NFA per glob set (Thompson, "Regular expression search algorithm", CACM 1968) run as a lazily
built DFA, as RE2 does (Cox, "Regular expression matching can be simple and fast", 2007): time linear in the
string, where a backtracking regex takes exponential time on globs such as `**/**/**/x`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_PATTERN = 4096  # characters in one glob or regex
MAX_BRACE_DEPTH = 32


def _glob_tokens(glob: str) -> list[tuple[str, str]]:
    """Tokens of a path glob: lit, one (`?`), star (`*`), any (`**`), dirs (`**/` at a segment start: zero or more
    whole folders), class (a regex character class), open/alt/close (`{a,b}`). Raises ValueError on a bad glob."""
    out: list[tuple[str, str]] = []
    i, depth, n = 0, 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                at_start = i == 0 or glob[i - 1] == "/"
                if at_start and glob.startswith("**/", i):
                    out.append(("dirs", ""))
                    i += 3
                    continue
                out.append(("any", ""))
                i += 2
                continue
            out.append(("star", ""))
        elif c == "?":
            out.append(("one", ""))
        elif c == "[":
            j = i + 1
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"unterminated '[' at position {i}")
            body = glob[i + 1:j]
            neg = body[:1] in ("!", "^")
            body = body[1:] if neg else body
            cls = "[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]"
            try:  # a reversed range such as [z-a] is no class at all
                re.compile(cls)
            except re.error as exc:
                raise ValueError(f"bad character class {glob[i:j + 1]!r} at position {i}: {exc.msg}") from None
            out.append(("class", cls))
            i = j
        elif c == "{":
            depth += 1
            if depth > MAX_BRACE_DEPTH:
                raise ValueError(f"braces nested deeper than {MAX_BRACE_DEPTH} at position {i}")
            out.append(("open", ""))
        elif c == "}":
            if depth == 0:
                raise ValueError(f"unmatched '}}' at position {i}")
            depth -= 1
            out.append(("close", ""))
        elif c == "," and depth:
            out.append(("alt", ""))
        else:
            out.append(("lit", c))
        i += 1
    if depth:
        raise ValueError("unmatched '{'")
    return out


_REGEX_OF = {"one": "[^/]", "star": "[^/]*", "any": ".*", "dirs": "(?:.*/)?", "open": "(?:", "alt": "|", "close": ")"}


def glob_to_regex(glob: str) -> str:
    """Translate a path glob to a regex: `**` crosses `/`, `*` and `?` do not, `[..]`, `{a,b}`.

    Written here because fnmatch lets `*` cross `/` and has no `**` or braces. Matching uses
    `GlobMachine` (linear time), not this regex: backtracking on globs such as `**/**/**/x` takes exponential time.
    """
    return "".join(re.escape(a) if k == "lit" else a if k == "class" else _REGEX_OF[k] for k, a in _glob_tokens(glob))


class GlobMachine:
    """Globs compiled to one NFA (Thompson's construction, CACM 1968; several globs: their union) and run as a
    lazily built DFA, as RE2 does (Cox, "Regular expression matching can be simple and fast", 2007): time linear
    in the string whatever the globs, where Python's backtracking `re` takes exponential time on `**/**/**/x`."""

    MAX_CACHED = 200_000  # cached transitions; past this the cache starts afresh (memory stays bounded)

    def __init__(self, *globs: str):
        self.trans: list[list[tuple[str, Any, int]]] = []  # per NFA state: (kind, argument, next state)
        self.eps: list[list[int]] = []
        start, accepts = self._new(), set()
        for glob in globs:
            cur = self._new()
            self.eps[start].append(cur)
            stack: list[tuple[int, list[int]]] = []  # per open brace: (state it starts from, ends of alternatives)
            for kind, arg in _glob_tokens(glob):
                if kind in ("lit", "one", "class"):
                    nxt = self._new()
                    self.trans[cur].append((kind, re.compile(arg, re.DOTALL) if kind == "class" else arg, nxt))
                    cur = nxt
                elif kind in ("star", "any"):  # a state looping on any character but `/` (star) or any (`**`)
                    loop = self._new()
                    self.eps[cur].append(loop)
                    self.trans[loop].append(("one" if kind == "star" else "any", None, loop))
                    cur = loop
                elif kind == "dirs":  # (?:.*/)?
                    loop, end = self._new(), self._new()
                    self.eps[cur] += [end, loop]
                    self.trans[loop] += [("any", None, loop), ("lit", "/", end)]
                    cur = end
                elif kind == "open":
                    stack.append((cur, []))
                    branch = self._new()
                    self.eps[cur].append(branch)
                    cur = branch
                elif kind == "alt":
                    stack[-1][1].append(cur)
                    branch = self._new()
                    self.eps[stack[-1][0]].append(branch)
                    cur = branch
                else:  # close
                    _, ends = stack.pop()
                    join = self._new()
                    for e in ends + [cur]:
                        self.eps[e].append(join)
                    cur = join
            accepts.add(cur)
        self.accepts = frozenset(accepts)
        self._start = self._closure({start})
        self._ids: dict[frozenset[int], int] = {}
        self._sets: list[frozenset[int]] = []
        self._rows: list[dict[str, int]] = []
        self._accepting: list[bool] = []
        self._reset()

    def _reset(self) -> None:
        """Empty the DFA cache; the start state is always state 0."""
        self._ids.clear()
        self._sets.clear()
        self._rows.clear()
        self._accepting.clear()
        self._cached = 0
        self._dfa_state(self._start)

    def _new(self) -> int:
        self.trans.append([])
        self.eps.append([])
        return len(self.trans) - 1

    def _closure(self, states: set[int]) -> frozenset[int]:
        todo, seen = list(states), set(states)
        while todo:
            for nxt in self.eps[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def _dfa_state(self, states: frozenset[int]) -> int:
        if not states:
            return -1
        sid = self._ids.get(states)
        if sid is None:
            sid = len(self._sets)
            self._ids[states] = sid
            self._sets.append(states)
            self._rows.append({})
            self._accepting.append(bool(states & self.accepts))
        return sid

    def _step(self, sid: int, ch: str) -> int:
        out = set()
        for s in self._sets[sid]:
            for kind, arg, nxt in self.trans[s]:
                if (kind == "any" or (kind == "one" and ch != "/") or (kind == "lit" and ch == arg)
                        or (kind == "class" and arg.fullmatch(ch))):
                    out.add(nxt)
        states = self._closure(out)
        self._cached += 1
        if self._cached > self.MAX_CACHED:
            self._reset()  # bounded memory: start the cache afresh (the current match continues from the new id)
            return self._dfa_state(states)
        nxt_id = self._dfa_state(states)
        self._rows[sid][ch] = nxt_id
        return nxt_id

    def matches(self, text: str) -> bool:
        sid, rows = 0, self._rows
        for ch in text:
            nxt = rows[sid].get(ch)
            if nxt is None:
                nxt = self._step(sid, ch)
            if nxt < 0:
                return False
            sid = nxt
        return self._accepting[sid]


@dataclass(frozen=True)
class Pattern:
    """One glob (default) or regex (`re:` prefix) matched against the whole string."""

    source: str
    regex: re.Pattern
    machine: GlobMachine | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> "Pattern":
        if len(text) > MAX_PATTERN:
            raise ValueError(f"longer than {MAX_PATTERN} characters")
        if text.startswith("re:"):
            return cls(text, re.compile(text[3:]))
        return cls(text, re.compile(glob_to_regex(text), re.DOTALL), GlobMachine(text))

    def matches(self, value: str) -> bool:
        if self.machine is not None:
            return self.machine.matches(value)
        return self.regex.fullmatch(value) is not None


