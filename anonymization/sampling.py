"""Sampling original values from a dump file, for `phoenix gate --source` outside the cycle.

The dump is streamed; e-mails, phone numbers and IBANs found in it are kept only as
keyed hashes (the same the gate searches for). Row counts are not known from a dump,
so check (c) is skipped there.
"""

from __future__ import annotations

import random
from pathlib import Path

from anonymization.engine import EMAIL_RE, IBAN_RE, PHONE_RE
from anonymization.gate import Baseline
from anonymization.keyed import derive
from anonymization.rules import Rules
from tasks.sources.restore import _reader

_MAX = 5000


def baseline_from_dump(path: Path, rules: Rules, key: bytes) -> Baseline:
    gate_key = derive(key, "gate")
    rng = random.Random(42)
    found: list[str] = []
    seen = 0
    with open(path, "rb") as raw:
        tail = ""
        for block in _reader(Path(path), raw):
            text = tail + block.decode("utf-8", errors="replace")
            tail = text[-200:]
            for rx in (EMAIL_RE, PHONE_RE, IBAN_RE):
                for m in rx.findall(text[:-200] if len(text) > 200 else text):
                    seen += 1  # reservoir sample: a fair sample of the whole dump
                    if len(found) < _MAX:
                        found.append(m)
                    elif (j := rng.randrange(seen)) < _MAX:
                        found[j] = m
    base = Baseline()
    for v in found:
        base.add(gate_key, v)
    return base
