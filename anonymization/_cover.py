"""Whether a hit stands inside a written pseudonym, for the SQL gate's text search and the
forensic byte scan alike: only the bytes around the hit are searched, with an automaton of
the pseudonyms (str or bytes, `ahocorasick-rs`)."""

from __future__ import annotations

from typing import Any


def covered(automaton: Any, longest: int, hay: Any, s: int, e: int) -> bool:
    """Whether some pattern of `automaton` (none longer than `longest`) occurs in `hay` over
    all of [s, e)."""
    if automaton is None:
        return False
    lo = max(0, e - longest)
    window = hay[lo : s + longest]
    return any(a + lo <= s and b + lo >= e for _i, a, b in automaton.find_matches_as_indexes(window, overlapping=True))
