"""Whether a hit stands inside a written pseudonym, for the SQL gate's text search and the
forensic byte scan alike: only the bytes around the hit are searched, with an automaton of
the pseudonyms (str or bytes, `ahocorasick-rs`)."""

from __future__ import annotations

import bisect
import itertools
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

    @classmethod
    def around(cls, candidates: list[Any], needles: Any) -> Cover:
        """A Cover of only the `candidates` that hold a needle: no other can stand around a
        needle's hit. `needles`: their automaton (standard match kind; str or bytes, as the
        candidates), searched once over the candidates joined, overlapping; a match counts
        only inside one candidate. On the 1 GB shop an automaton of all 326 k written
        pseudonyms took 3-10 s to build (per search, on a loaded machine); few hold a needle."""
        if not candidates or needles is None:
            return cls([])
        ends = list(itertools.accumulate(len(c) + 1 for c in candidates))  # candidate k: [ends[k-1], ends[k] - 1)
        hay = (b"\n" if isinstance(candidates[0], bytes) else "\n").join(candidates)
        keep = set()
        for _i, s, e in needles.find_matches_as_indexes(hay, overlapping=True):
            k = bisect.bisect_right(ends, s)
            if e < ends[k]:
                keep.add(k)
        return cls([candidates[k] for k in sorted(keep)])

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
