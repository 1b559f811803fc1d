"""Cover.around (anonymization/_cover.py): a Cover of only the written pseudonyms that hold
a needle answers every needle hit as the Cover of all of them does."""

from __future__ import annotations

import random

import ahocorasick_rs

from anonymization._cover import Cover


def test_only_candidates_holding_a_needle_are_kept():
    needles = ["Angel Smith", "ada@x.de", "Angel\nSmith"]
    candidates = ["Jose Angel Smith", "Maria Lopez de la Cruz Fernandez", "Angel", "Smith Jr", "mail ada@x.de now"]
    kept = Cover.around(candidates, ahocorasick_rs.AhoCorasick(needles))
    assert kept.longest == len("mail ada@x.de now")  # not the longest candidate's: it holds no needle
    # "Angel\nSmith" occurs only across two candidates joined: neither holds it.
    assert not kept.covers("Angel", 0, 5) and not kept.covers("Smith Jr", 0, 8)
    text = "Hi Jose Angel Smith, Angel Smith here"
    assert kept.covers(text, 8, 19) and not kept.covers(text, 21, 32)
    assert not Cover.around([], ahocorasick_rs.AhoCorasick(needles))
    assert not Cover.around(candidates, None)


def test_it_answers_every_hit_as_the_cover_of_all_candidates():
    rnd = random.Random(7)
    words = ["Ann", "Anna", "Lee", "Angel", "Smith", "Jose", "Maria", "de", "la", "Cruz"]
    phrase = lambda n: " ".join(rnd.choice(words) for _ in range(n))  # noqa: E731
    needles = sorted({phrase(rnd.randint(1, 2)) for _ in range(30)})
    candidates = sorted({phrase(rnd.randint(1, 4)) for _ in range(200)})
    ac = ahocorasick_rs.AhoCorasick(needles)
    full, small = Cover(candidates), Cover.around(candidates, ac)
    assert 0 < small.longest and len(candidates) > 50
    checked = 0
    for _ in range(300):
        text = phrase(rnd.randint(3, 12))
        for _i, s, e in ac.find_matches_as_indexes(text, overlapping=True):
            assert small.covers(text, s, e) == full.covers(text, s, e)
            checked += 1
    assert checked > 500


def test_bytes_candidates():
    needles = [b"Angel Smith"]
    kept = Cover.around([b"Jose Angel Smith", b"Maria"], ahocorasick_rs.BytesAhoCorasick(needles))
    assert kept.covers(b"..Jose Angel Smith..", 7, 18) and kept.longest == len(b"Jose Angel Smith")
