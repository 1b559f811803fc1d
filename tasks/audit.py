"""`phoenix gate --image`: the forensic gate, run again on a golden that is already published.

Goldens published before the forensic gate existed carry production data in their redo
logs; this searches every byte of a golden's protected snapshot `@base` (what every clone
is made of) for originals sampled from the dump it was bred from. Read-only: it opens the
snapshot, never the image, and writes no metadata.
"""

from __future__ import annotations

from anonymization.forensic import ForensicResult, Needles, scan
from tasks import catalog
from tasks.schema import BASE_SNAPSHOT
from tasks.storage import Storage

ADVICE = "re-breed with `phoenix breed` and tear down the environments cloned from it"


def audit(storage: Storage, generation: str, needles: Needles) -> ForensicResult:
    """Scan `generation@base` ('latest' or an id of a published or retiring golden)."""
    gen = catalog.resolve(storage, generation)
    if BASE_SNAPSHOT not in storage.snapshots(gen):
        raise catalog.GenerationNotFound(f"generation {gen} has no @{BASE_SNAPSHOT} snapshot: it was never "
                                         "published completely; `phoenix reap` removes it")
    return scan(storage.extents(gen, BASE_SNAPSHOT), needles, target=f"{gen}@{BASE_SNAPSHOT}")
