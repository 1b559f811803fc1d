"""Sampling original values from a dump file, for `phoenix gate --source` outside the cycle.

The dump is streamed; a fair (reservoir) sample of the e-mails, phone numbers and IBANs
found in it is kept as keyed hashes (what the SQL gate searches for) and, for the forensic
byte scan of `phoenix gate --image`, as `Needles`: originals in clear, in this process's
memory only, each labelled with the table whose INSERT it came from — never printed.
Row counts are not known from a dump, so check (c) is skipped there.
"""

from __future__ import annotations

import bisect
import codecs
import random
import re
from collections.abc import Iterable, Iterator

from anonymization.engine import EMAIL_RE, IBAN_RE, PHONE_RE
from anonymization.gate import Baseline
from anonymization.keyed import derive
from anonymization.rules import Rules

_MAX = 5000  # a few thousand: the Aho–Corasick scan costs the same for 50 or 5,000 needles
_OVERLAP = 200  # longer than any e-mail/phone/IBAN: a match cut by a block border is found whole in the next
_KINDS = (("e-mail", EMAIL_RE), ("phone", PHONE_RE), ("IBAN", IBAN_RE))
_INSERT_RE = re.compile(r"INSERT INTO `?([A-Za-z0-9_$]+)`?")


def _matches(blocks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """(value, label) of every e-mail/phone/IBAN in the dump, once each occurrence."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # no character split at a block border
    carry, table = "", "?"
    for block, last in _with_last(iter(blocks)):
        text = carry + decoder.decode(block, final=last)
        cut = len(text) if last else max(0, len(text) - _OVERLAP)
        inserts = [(m.start(), m.group(1)) for m in _INSERT_RE.finditer(text)]
        starts = [p for p, _t in inserts]
        for kind, rx in _KINDS:
            for m in rx.finditer(text):
                if m.start() < cut:  # the rest comes again, at the start of the next text
                    i = bisect.bisect_right(starts, m.start())
                    yield m.group(0), f"{inserts[i - 1][1] if i else table} ({kind}, from the dump)"
        before_cut = [t for p, t in inserts if p < cut]
        table = before_cut[-1] if before_cut else table
        carry = text[cut:]


def _with_last(it: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    prev = None
    for item in it:
        if prev is not None:
            yield prev, False
        prev = item
    yield (prev or b""), True


def baseline_from_dump(blocks: Iterable[bytes], rules: Rules, key: bytes) -> Baseline:
    """`blocks`: the dump's decompressed bytes (tasks.sources.dump_blocks)."""
    gate_key = derive(key, "gate")
    rng = random.Random(42)
    found: list[tuple[str, str]] = []
    seen = 0
    for m in _matches(blocks):
        seen += 1  # reservoir sample: a fair sample of the whole dump
        if len(found) < _MAX:
            found.append(m)
        elif (j := rng.randrange(seen)) < _MAX:
            found[j] = m
    base = Baseline()
    own_domain = "@" + rules.email_domain.lower()
    for value, label in found:
        base.add(gate_key, value)
        if not value.lower().endswith(own_domain):  # the pseudonyms' own domain is no leak when found
            base.needles.add(value, label)  # ≥ 6 bytes only (Needles.add)
    return base
