"""TextDictionary.within (anonymization/freetext.py): searching only for the originals whose
first word occurs in the texts replaces exactly what searching for all of them does."""

from __future__ import annotations

import random

from anonymization.freetext import TextDictionary, Words

ORIGINALS = {
    "Ada Derek": "Mia Stone",
    "Ann Lee": "Eve Park",
    "Anna Lee": "Zoe Hart",
    "Derek": "Liam",
    "ada@example.com": "kai@example.net",
    "ada@example.com.au": "ivy@example.org",
    "+49 30 123456": "+49 30 998877",
    "12 Main Street": "7 Oak Road",
    "Jose Angel Smith": "Noah Bell",
    "Angel Smith": "Ruby Fox",
    "Ünal Çelik": "Ole Berg",
    "DE44500105175407324931": "DE02120300000000202051",
}
FILLER = ["Hello,", "this is", "Anna", "Annabel", "Lee's", "x", "mail", "call", "at", "-", ".", "Derek2", "_Derek"]


def texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    pieces = [*ORIGINALS, *FILLER]
    glue = [" ", "", ", ", ".", "@", "+", "-", "\n"]
    return ["".join(rnd.choice(pieces) + rnd.choice(glue) for _ in range(rnd.randint(2, 12))) for _ in range(n)]


def dictionary() -> TextDictionary:
    d = TextDictionary()
    for original, pseudonym in ORIGINALS.items():
        d.add(original, pseudonym)
    for i in range(5000):  # originals no text holds: the part `within` leaves out of the automaton
        d.add(f"Person{i} Nobody", f"Fake{i} Name")
    return d


def test_the_same_replacements_and_written_pseudonyms_as_with_every_original():
    sample = texts(3000, seed=11)
    everything, focused = dictionary(), dictionary()
    words = Words()
    for t in sample:
        words.add(t)
    focused.within(words)
    assert [focused.replace(t) for t in sample] == [everything.replace(t) for t in sample]
    assert focused.written == everything.written and len(everything.written) > 5
    assert len(focused._auto._patterns) < len(ORIGINALS) + 10 < len(everything._auto._patterns)


def test_an_original_whose_words_do_not_follow_one_another_in_the_texts_is_not_searched():
    d, words = dictionary(), Words()
    words.add("Hello Ada, this is Derek")  # "Ada" and "Derek", never one after the other
    d.within(words)
    assert d.replace("Hello Ada Derek") == "Hello Ada Liam"
    words.add("Ada Derek")
    d.within(words)
    assert d.replace("Hello Ada Derek") == "Hello Mia Stone"
