"""The forensic scan's search itself (pure: no image, no server)."""

from __future__ import annotations

import pickle

import pytest

from anonymization.forensic import Needles, scan
from tasks.storage.base import Extent


def _needles(*values: str) -> Needles:
    n = Needles()
    for i, v in enumerate(values):
        n.add(v, f"t.c{i}")
    return n


def test_finds_a_value_across_a_chunk_border_once_with_its_offset():
    data = b"x" * 100 + b"ada.derek@example.org" + b"y" * 100
    chunks = [Extent("f", i, data[i:i + 16]) for i in range(0, len(data), 16)]
    result = scan(chunks, _needles("ada.derek@example.org"), "img")
    assert [(f.place, f.offset, f.column) for f in result.findings] == [("f", 100, "t.c0")]
    assert result.bytes_scanned == len(data) and not result.passed


def test_no_match_across_two_places_or_a_gap():
    left, right = b"ada.derek@", b"example.org"
    assert scan([Extent("a", 0, left), Extent("b", 0, right)], _needles("ada.derek@example.org")).passed
    assert scan([Extent("a", 0, left), Extent("a", 4096, right)], _needles("ada.derek@example.org")).passed


def test_latin1_storage_is_searched_too_and_short_values_are_not():
    n = _needles("Zoë Müller-Lüdenscheid", "Anna")
    assert len(n) == 2  # UTF-8 and Latin-1 forms of the long one; "Anna" is too short to identify
    assert not scan([Extent("f", 0, "Zoë Müller-Lüdenscheid".encode("latin-1"))], n).passed


def test_findings_and_errors_never_carry_the_value():
    n = _needles("ada.derek@example.org")
    result = scan([Extent("ib_logfile0", 0, b"..ada.derek@example.org..")], n, "breeder-x")
    with pytest.raises(Exception) as err:
        result.raise_if_failed()
    text = str(err.value) + result.to_markdown() + repr(n) + str(result.summary())
    assert "ib_logfile0" in text and "ada.derek" not in text
    assert err.value.exit_code == 4
    with pytest.raises(TypeError):
        pickle.dumps(n)


def test_discarded_values_are_not_searched():
    n = _needles("Jonathan Smith", "ada.derek@example.org")
    assert n.discard(["Jonathan Smith"]) >= 1
    result = scan([Extent("f", 0, b"Jonathan Smith")], n)
    assert result.passed


def test_an_original_inside_a_written_pseudonym_is_no_survivor_in_text():
    """At 1 GB the scrub wrote the fake "Jose Angel Smith"; "Angel Smith" is another row's
    original account holder: the SQL gate counted it as a surviving original."""
    from anonymization.freetext import Phrases

    phrases = Phrases()
    phrases.add("Angel Smith", "payments.account_holder")
    written = {"Jose Angel Smith"}
    assert phrases.count("Thanks, Jose Angel Smith (jose@example.invalid)", written) == 0
    assert phrases.count("Thanks, Angel Smith.", written) == 1
    assert phrases.count("Jose Angel Smith and Angel Smith", written) == 1
    assert phrases.count("Thanks, Jose Angel Smith", set()) == 1  # nothing written: it counts


def test_an_original_inside_a_written_pseudonym_is_no_leak_in_the_bytes():
    """The 1 GB shop's forensic findings: originals inside pseudonyms the scrub wrote."""
    n = _needles("Angel Smith", "Ada Derek")
    n.discard(["Jose Angel Smith"])  # written into a text: not an original, and searched alongside
    inside = scan([Extent("t.ibd", 0, b"\x00Thanks, Jose Angel Smith (x)\x00")], n)
    assert inside.passed and inside.values == 2
    alone = scan([Extent("t.ibd", 0, b"\x00Jose Angel Smith, Angel Smith and Ada Derek\x00")], n)
    assert [f.offset for f in alone.findings] == [19, 35]  # the two originals outside it
    border = scan([Extent("t.ibd", 0, b"xx Jose Ang"), Extent("t.ibd", 11, b"el Smith yy")], n)
    assert border.passed  # across a chunk border too
    seam = scan([Extent("t.ibd", 0, b"xx Jose "), Extent("t.ibd", 8, b"Angel Smith yy")], n)
    assert seam.passed  # the original starts the second chunk, inside the pseudonym that spans the seam


def test_a_hit_waits_for_the_next_chunk_to_know_whether_a_written_pseudonym_covers_it():
    n = _needles("Angel Smith")
    n.discard(["Jose Angel Smith Junior"])
    covered = scan([Extent("t.ibd", 0, b"xx Jose Angel Smith"), Extent("t.ibd", 19, b" Junior yy")], n)
    assert covered.passed  # the pseudonym goes on in the second chunk
    ends = scan([Extent("t.ibd", 0, b"xx Jose Angel Smith")], n)
    assert [f.offset for f in ends.findings] == [8]  # the place ends there: no pseudonym covers it
    other = scan([Extent("a", 0, b"xx Jose Angel Smith"), Extent("b", 0, b" Junior yy")], n)
    assert [(f.place, f.offset) for f in other.findings] == [("a", 8)]  # another file goes on, not this one


def test_chunks_searched_on_several_threads_find_what_one_thread_finds():
    import random

    rnd = random.Random(7)
    values = [f"Person{i:04d} Surname{i:04d}" for i in range(300)]
    n = _needles(*values)
    n.discard([f"Dr {v} Jr" for v in values[::3]])
    parts = []
    for _ in range(3000):
        v = rnd.choice(values)
        parts.append(rnd.choice([v, f"Dr {v} Jr", "filler text ", "\x00" * rnd.randint(1, 50)]).encode())
    data = b"".join(parts)
    extents = [Extent("f", i, data[i:i + 997]) for i in range(0, len(data), 997)]
    one, many = scan(extents, n, threads=1), scan(extents, n, threads=3)
    whole = scan([Extent("f", 0, data)], n, threads=1)
    assert [f.offset for f in one.findings] == [f.offset for f in many.findings] == [f.offset for f in whole.findings]
    assert one.findings and one.more == many.more


def test_the_result_counts_the_places_it_read():
    extents = [Extent("a", 0, b"x" * 10), Extent("a", 10, b"y" * 10), Extent("b", 0, b"z"), Extent("c", 0, b"")]
    result = scan(extents, _needles("ada.derek@example.org"), threads=2)
    assert (result.places, result.bytes_scanned) == (3, 21)


def test_runs_of_zeros_are_passed_over_and_what_borders_them_is_found():
    """Whole zero pages are not searched (no value holds a NUL), yet are counted as read; a
    value that ends where zeros start, or starts where they end, is found at its offset."""
    import random

    from anonymization import forensic

    rnd = random.Random(3)
    values = [f"someone{i:03d}@example.org" for i in range(40)]
    page, parts = forensic._ZERO_RUN, []
    for i in range(60):
        v = values[i % len(values)].encode()
        filler = bytes(rnd.randrange(32, 127) for _ in range(rnd.randint(0, 3 * page)))
        parts += [filler, v, b"\0" * (page * rnd.randint(0, 3) + rnd.randint(0, 50)), v]
    data = b"".join(parts)
    expected = sorted(i for v in {v.encode() for v in values} for i in _all(data, v))
    n = _needles(*values)
    for size in (40_000, 3 * page, len(data)):
        extents = [Extent("f", i, data[i : i + size]) for i in range(0, len(data), size)]
        result = scan(extents, n, threads=2)
        assert sorted(f.offset for f in result.findings) == expected[: len(result.findings)]
        assert len(result.findings) + result.more == len(expected) and result.bytes_scanned == len(data)
    chunks = list(forensic._runs(Extent("f", 100, b"x" * 10 + bytes(2 * page) + b"y")))
    assert [(o, s, d is None) for o, s, d in chunks] == [(100, page, False), (100 + page, page, True),
                                                         (100 + 2 * page, 11, False)]


def _all(data: bytes, value: bytes):
    i = data.find(value)
    while i >= 0:
        yield i
        i = data.find(value, i + 1)
