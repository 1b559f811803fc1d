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
