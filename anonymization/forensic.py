"""The forensic gate (cycle step 5b): every byte of the stopped breeder, searched for originals.

The SQL gate sees what SQL sees. The bytes of an image hold more: the redo log, undo
pages, free space inside tablespaces, blocks the filesystem freed, the server's own
files. This gate reads every byte a reader of the image could get at (`Storage.extents`:
the whole block device on RBD, every file of the subvolume on btrfs) and searches it for
a sample of original values at once, with an Aho–Corasick automaton (the Rust
`aho-corasick` crate through `ahocorasick-rs`), not a loop per value.

The originals (`Needles`) live only in this process's memory: no repr, no pickling, never
in a log, result, artifact or exception. A finding names the place (file or image), the
byte offset and the column the value was sampled from — never the value.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import ahocorasick_rs

from anonymization._cover import Cover
from phoenix.errors import ForensicFailed

MIN_BYTES = 6  # shorter values ("Anna", "Rome") are words, not identifying on their own
_MAX_FINDINGS = 50
_DFA_MAX = 20_000  # originals searched with a DFA (~8 kB of memory each); more: the NFA


class Needles:
    """Original values to search for, each with the column it came from. In memory only."""

    __slots__ = ("_values", "_allowed")

    def __init__(self) -> None:
        self._values: dict[bytes, str] = {}
        self._allowed: set[bytes] = set()  # pseudonyms written into texts, searched alongside

    def add(self, value: str, column: str) -> bool:
        """Add an original (as stored: UTF-8, and Latin-1 where that differs); False if too short."""
        raw = value.encode("utf-8")
        if len(raw) < MIN_BYTES:
            return False
        self._values.setdefault(raw, column)
        try:
            latin = value.encode("latin-1")
        except UnicodeEncodeError:
            latin = raw
        if latin != raw:
            self._values.setdefault(latin, column)
        return True

    def discard(self, values: Iterable[str]) -> int:
        """Drop values that are not leaks when found (pseudonyms the engine itself wrote), and
        remember them: an original found inside one of them where it stands is no leak either
        ("Angel Smith", another row's original, inside the written "Jose Angel Smith")."""
        n = 0
        for v in values:
            for raw in {v.encode("utf-8"), v.encode("latin-1", errors="ignore")}:
                n += self._values.pop(raw, None) is not None
                if len(raw) >= MIN_BYTES:
                    self._allowed.add(raw)
        return n

    def discard_inside(self, texts: Iterable[str]) -> int:
        """Drop values that occur inside any of `texts` (dictionary entries the engine writes:
        the original street "rue de X" inside the pseudonym "20, rue de X" is no leak)."""
        if not self._values:
            return 0
        patterns = list(self._values)
        found = set()
        for enc in ("utf-8", "latin-1"):
            hay = "\n".join(texts).encode(enc, errors="ignore")
            automaton = ahocorasick_rs.BytesAhoCorasick(patterns)
            found |= {patterns[i] for i, _s, _e in automaton.find_matches_as_indexes(hay, overlapping=True)}
        for raw in found:
            del self._values[raw]
        return len(found)

    def columns(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self._values.values():
            out[c] = out.get(c, 0) + 1
        return out

    def __len__(self) -> int:
        return len(self._values)

    def update(self, other: Needles) -> None:
        """Add another set's originals (a breeder's databases are sampled one by one)."""
        for raw, column in other._values.items():
            self._values.setdefault(raw, column)
        self._allowed |= other._allowed

    def __repr__(self) -> str:  # never the values
        return f"<Needles: {len(self._values)} originals in memory>"

    def __reduce__(self):  # never pickled into a result or a cache
        raise TypeError("Needles hold original values and are never serialized")

    def discard_found_in(self, extents: Iterable) -> int:
        """Drop the originals that occur in `extents` — the server's own shipped files (its help
        tables quote people and places): there they are MariaDB's text, not a leak. Returns how many."""
        patterns = list(self._values)
        if not patterns:
            return 0
        automaton = ahocorasick_rs.BytesAhoCorasick(patterns)
        hits = {patterns[idx] for ext in extents for idx, _start, _stop in automaton.find_matches_as_indexes(ext.data)}
        for raw in hits:
            self._values.pop(raw, None)
        return len(hits)

    def items(self) -> tuple[list[bytes], list[str]]:
        """The originals as stored bytes, and the column of each (for the scan, and fault injection only)."""
        return list(self._values), list(self._values.values())

    def allowed(self) -> list[bytes]:
        """The written pseudonyms that are not themselves originals."""
        return [a for a in self._allowed if a not in self._values]


@dataclass(frozen=True)
class Finding:
    place: str
    offset: int
    column: str
    size: int = 0  # bytes of the original found there (never the value itself)

    def __str__(self) -> str:
        return f"an original value of {self.column} at byte {self.offset:,} of {self.place}"


@dataclass
class ForensicResult:
    target: str = ""
    bytes_scanned: int = 0
    seconds: float = 0.0
    values: int = 0
    places: int = 0
    findings: list[Finding] = field(default_factory=list)
    unscannable: list[str] = field(default_factory=list)
    more: int = 0  # findings beyond those kept

    @property
    def passed(self) -> bool:
        return not self.findings and not self.unscannable

    @property
    def mb_per_s(self) -> float:
        return self.bytes_scanned / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict:
        return {
            "passed": self.passed,
            "bytes_scanned": self.bytes_scanned,
            "seconds": round(self.seconds, 2),
            "mb_per_s": round(self.mb_per_s, 1),
            "values": self.values,
            "places": self.places,
            "findings": [str(f) for f in self.findings],
            "unscannable": list(self.unscannable),
        }

    def to_markdown(self) -> str:
        head = (
            f"## Forensic gate: {'PASSED' if self.passed else 'FAILED'}\n\n"
            f"| scanned | MB | seconds | MB/s | originals searched | files/devices |\n|---|---:|---:|---:|---:|---:|\n"
            f"| `{self.target}` | {self.bytes_scanned / 1e6:,.1f} | {self.seconds:.2f} | {self.mb_per_s:,.0f} "
            f"| {self.values:,} | {self.places:,} |"
        )
        lines = [f"- {f}" for f in self.findings] + [f"- {u}" for u in self.unscannable]
        if self.more:
            lines.append(f"- … and {self.more:,} more")
        return head + ("\n\n" + "\n".join(lines) if lines else "")

    def raise_if_failed(self, advice: str = "the golden was not published; see the breed report") -> None:
        if self.passed:
            return
        shown = [str(f) for f in self.findings[:5]] + self.unscannable[:5]
        total = len(self.findings) + self.more + len(self.unscannable)
        raise ForensicFailed(
            f"forensic gate failed on {self.target} ({total} finding(s)): "
            + "; ".join(shown)
            + (" …" if total > len(shown) else "")
            + f" — {advice}"
        )


def scan(extents: Iterable, needles: Needles, target: str = "", threads: int = 0) -> ForensicResult:
    """Search every extent for every needle, chunks on `threads` cores at once (the search
    releases the GIL). Matches across chunk borders of one place are found: each chunk is
    searched with the previous one's last bytes in front."""
    result = ForensicResult(target=target, values=len(needles))
    t0 = time.monotonic()
    patterns, columns = needles.items()
    if not patterns:
        for ext in extents:
            result.bytes_scanned += len(ext.data)
        result.seconds = time.monotonic() - t0
        return result
    search = _Search(patterns, needles.allowed())

    def found(where: str, offset: int, idx: int) -> None:
        if len(result.findings) < _MAX_FINDINGS:
            result.findings.append(Finding(where, offset, columns[idx], len(patterns[idx])))
        else:
            result.more += 1

    workers = threads or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()

        def settle() -> None:  # in the chunks' order: a hit may wait for the next chunk
            chunk_, hits = pending.popleft()
            search.decide(chunk_, hits.result(), found)

        place = None
        for chunk in search.chunks(extents):
            result.bytes_scanned += chunk.size
            if chunk.place != place:
                result.places, place = result.places + 1, chunk.place
            pending.append((chunk, pool.submit(search.hits, chunk)))
            if len(pending) > 2 * workers:  # bounded memory: a few chunks in flight
                settle()
        while pending:
            settle()
        search.flush(found)
    result.seconds = time.monotonic() - t0
    return result


_ZERO_RUN = 1 << 14  # an InnoDB page


def _runs(ext) -> Iterator[tuple[int, int, bytes | None]]:
    """(offset, size, bytes) of the extent's runs, None for a run of whole zero blocks (memcmp
    by `startswith`: ~0.1 s per GB, where the automaton reads zeros at ~550 MB/s)."""
    data, n, zeros = ext.data, len(ext.data), bytes(_ZERO_RUN)
    start = i = 0
    while i + _ZERO_RUN <= n:
        if not data.startswith(zeros, i):
            i += _ZERO_RUN
            continue
        j = i + _ZERO_RUN
        while j + _ZERO_RUN <= n and data.startswith(zeros, j):
            j += _ZERO_RUN
        if i > start:
            yield ext.offset + start, i - start, data[start:i]
        yield ext.offset + i, j - i, None
        start = i = j
    if start == 0:
        yield ext.offset, n, data  # no zero run: the extent itself, not a copy
    elif start < n:
        yield ext.offset + start, n - start, data[start:]


@dataclass
class _Chunk:
    place: str
    start: int  # offset in `place` of buf[0]
    buf: bytes  # the previous chunk's last bytes (`tail` of them), then this chunk's data
    tail: int  # 0: the first chunk of its place, or after a gap
    size: int  # this chunk's own bytes


class _Search:
    """The needles' automaton alone (a few thousand patterns: fast), and the written
    pseudonyms' automaton, run only around a hit: an original that stands inside a written
    pseudonym ("Angel Smith" in the fake "Jose Angel Smith") is no leak. Searching both in
    one automaton made it ~4× slower on text, for hits that are rare."""

    def __init__(self, patterns: list[bytes], allowed: list[bytes]) -> None:
        # A DFA searches ~2x faster than the crate's default NFA (336 vs 151 MB/s on one core
        # here, 5,200 originals) for ~8 kB of memory per original: worth it for a sample.
        fast = {"implementation": ahocorasick_rs.Implementation.DFA} if len(patterns) <= _DFA_MAX else {}
        self.needles = ahocorasick_rs.BytesAhoCorasick(
            patterns, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST, **fast
        )
        self.allowed = Cover(allowed)
        # A seam's hit, or one that waited for the next chunk, has its whole left context in the buffer.
        self.keep = max(len(p) for p in patterns) + 2 * self.allowed.longest
        self._deferred: list[tuple[str, int, int, int]] = []  # (place, start, stop, needle) awaiting bytes
        self._last: _Chunk | None = None
        # No value holds a NUL byte, so no match (nor a written pseudonym around one) can touch
        # a run of zeros: those runs are passed over, not searched (a fresh redo log, free pages).
        self.skip_zeros = not any(b"\0" in p for p in (*patterns, *allowed))

    def chunks(self, extents: Iterable):
        place, end, tail = None, 0, b""
        for ext in extents:
            for offset, size, data in _runs(ext) if self.skip_zeros else ((ext.offset, len(ext.data), ext.data),):
                if data is None:  # zeros: counted as read, and the next bytes follow a gap
                    yield _Chunk(ext.place, offset, b"", 0, size)
                    place, tail = None, b""
                    continue
                if ext.place != place or offset != end:
                    place, tail = ext.place, b""
                buf = tail + data
                yield _Chunk(ext.place, offset - len(tail), buf, len(tail), len(data))
                end, tail = offset + len(data), buf[-self.keep :]

    def hits(self, chunk: _Chunk) -> list[tuple[int, int, int]]:
        """(needle, start, stop) in buf of the matches that end in this chunk's own bytes."""
        return [(i, s, e) for i, s, e in self.needles.find_matches_as_indexes(chunk.buf) if e > chunk.tail]

    def decide(self, chunk: _Chunk, hits: list[tuple[int, int, int]], found) -> None:
        if not chunk.tail:  # not the previous chunk's continuation (any hit waiting came from one with bytes)
            self.flush(found)
        deferred, self._deferred = self._deferred, []
        for _place, s, e, i in deferred:  # still inside this buffer: the tail holds them
            self._one(chunk, i, s - chunk.start, e - chunk.start, found)
        for i, s, e in hits:
            self._one(chunk, i, s, e, found)
        self._last = chunk

    def _one(self, chunk: _Chunk, idx: int, s: int, e: int, found) -> None:
        if self.allowed and s + self.allowed.longest > len(chunk.buf):
            self._deferred.append((chunk.place, chunk.start + s, chunk.start + e, idx))  # needs the next bytes
        elif not self.allowed.covers(chunk.buf, s, e):
            found(chunk.place, chunk.start + s, idx)

    def flush(self, found) -> None:
        """The place ended: decide the hits that waited for bytes after them."""
        last, deferred, self._deferred = self._last, self._deferred, []
        for place, s, e, i in deferred:
            assert last is not None
            if not self.allowed.covers(last.buf, s - last.start, e - last.start):
                found(place, s, i)
        self._last = None


_READABLE_ENGINES = {"InnoDB", "Aria", "MyISAM", "MEMORY", "CSV", "MRG_MyISAM", "BLACKHOLE", "SEQUENCE"}


def unscannable_tables(conn, databases: list[str]) -> list[str]:
    """Tables whose bytes are not plain (compressed or encrypted pages, compressing engines):
    the byte search could not see an original there, so the gate fails on them by name."""
    marks = ", ".join(["%s"] * len(databases))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, ROW_FORMAT, CREATE_OPTIONS FROM information_schema.TABLES "
            f"WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ({marks})",
            databases,
        )
        rows = cur.fetchall()
    out = []
    for db, t, engine, row_format, options in rows:
        opts = (options or "").lower()
        why = None
        if engine and engine not in _READABLE_ENGINES:
            why = f"engine {engine}"
        elif (row_format or "").lower() == "compressed" or "page_compressed" in opts.replace("`", ""):
            why = "compressed pages"
        elif "encrypted" in opts:
            why = "encrypted pages"
        if why:
            out.append(
                f"table {db}.{t} uses {why}: the forensic gate cannot read it — rebuild it plain "
                "(ROW_FORMAT=DYNAMIC, no PAGE_COMPRESSED/ENCRYPTED) in the restore"
            )
    return sorted(out)
