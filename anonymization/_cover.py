"""Whether a hit stands inside a written pseudonym, for the SQL gate's text search and the
forensic byte scan alike: only the bytes around the hit are searched, with an automaton of
the pseudonyms (str or bytes, `ahocorasick-rs`)."""

from __future__ import annotations

from typing import Any

import ahocorasick_rs


class Cover:
    """The written pseudonyms (all str, or all bytes); none: nothing covers a hit."""

    __slots__ = ("_auto", "longest")

    def __init__(self, patterns: list[Any]) -> None:
        if patterns and isinstance(patterns[0], bytes):
            self._auto: Any = ahocorasick_rs.BytesAhoCorasick(patterns)
        else:
            self._auto = ahocorasick_rs.AhoCorasick(patterns) if patterns else None
        self.longest = max((len(p) for p in patterns), default=0)

    def __bool__(self) -> bool:
        return self._auto is not None

    def __repr__(self) -> str:  # pseudonyms, but still: never the values
        return f"<Cover: {self.longest} bytes at most>"

    def covers(self, hay: Any, s: int, e: int) -> bool:
        """Whether a pseudonym occurs in `hay` over all of [s, e)."""
        if self._auto is None:
            return False
        lo = max(0, e - self.longest)
        window = hay[lo : s + self.longest]
        return any(
            a + lo <= s and b + lo >= e for _i, a, b in self._auto.find_matches_as_indexes(window, overlapping=True)
        )
