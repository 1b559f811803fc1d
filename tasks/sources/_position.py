"""Where a dump broke: its line, its byte offset (in the decompressed stream), its table.

Both restore paths name the same position. The statement path knows each statement's first
line and offset (the splitter counts them); the `mariadb` client names only the line its
failing statement began on, so `Tracker` follows the stream as it passes — bytes and lines
counted per block (C-level `count`), the table the last statement head in a block names —
and keeps the last few MiB, to find that line again after the fact. A server error inside
a multi-line statement says `at line M` of the statement, and its `near '…'` text starts at
the token it stopped on: `within` turns both into lines and bytes from the statement's start
(the text is used to find the place, never quoted: it is the dump's data).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from phoenix.errors import RestoreError

_KEEP = 8 << 20  # what the client may still hold unread when it fails: its statement, the pipe
_HEADS = (b"\nINSERT ", b"\nREPLACE ", b"\nCREATE TABLE ", b"\nLOCK TABLES ")
_TABLE = re.compile(rb"\n(?:INSERT (?:IGNORE )?INTO|REPLACE INTO|CREATE TABLE(?: IF NOT EXISTS)?|LOCK TABLES) "
                    rb"(?:`((?:[^`\n]|``){1,256})`|(\w{1,64}))")
_LONGEST = 64  # characters in a MySQL identifier: a longer "name" is damaged data, never quoted
_WALK = 32  # line starts looked at from a block's end before one search of the whole block
_NEAR = re.compile(r"near '(.*)' at line (\d+)\s*$", re.S)


class StreamBroken(RestoreError):
    """The dump's bytes themselves are bad (not the SQL in them): a compressed stream that is
    corrupt or ends early. `what` and `advice` are kept apart so the position goes between."""

    def __init__(self, what: str, advice: str) -> None:
        super().__init__(f"{what}; {advice}")
        self.what, self.advice = what, advice


@dataclass
class Position:
    line: int
    offset: int | None
    table: str | None
    decompressed: bool = False

    def __str__(self) -> str:
        parts = [f"line {self.line}"]
        if self.offset is not None:
            parts.append(f"{'decompressed ' if self.decompressed else ''}byte {self.offset}")
        if self.table:
            parts.append(f"table `{self.table}`")
        return ", ".join(parts)


def _name(m: re.Match[bytes]) -> str | None:
    name = (m.group(1) or m.group(2)).decode("utf-8", "replace").replace("``", "`")
    return name if len(name) <= _LONGEST else None


def table_in(data: bytes, end: int | None = None) -> str | None:
    """The table the last statement head in `data[:end]` (at a line start) names."""
    end = len(data) if end is None else end
    at = max(data.rfind(h, 0, end) for h in _HEADS)
    while at >= 0:
        m = _TABLE.match(data, at)
        if m and (name := _name(m)):
            return name
        at = max(data.rfind(h, 0, at) for h in _HEADS)
    return None


def within(message: str, text: bytes) -> tuple[int, int | None]:
    """A server error's place in the statement `text`: (lines after its first, byte from its
    start, or None). Without `at line M`, its first line; without `near`, line M's start."""
    m = _NEAR.search(message)
    if not m:
        return 0, 0
    down = max(int(m.group(2)) - 1, 0)
    start = 0
    for _ in range(down):
        start = text.find(b"\n", start) + 1
        if start == 0:
            return down, None
    # The server quotes at most 80 characters, then `...`: the rest of the statement from the token.
    near = m.group(1).removesuffix("...").split("\n", 1)[0].encode("utf-8", "replace")
    end = text.find(b"\n", start)
    end = len(text) if end < 0 else end
    if not near:  # `near ''`: the statement's end, before its delimiter
        return down, len(text[start:end].rstrip().removesuffix(b";").rstrip()) + start
    col = text.find(near, start, end)
    return down, col if col >= 0 else start


class Tracker:
    """Follows a decompressed dump stream: `blocks` passes it on, counting."""

    def __init__(self, decompressed: bool, keep: int = _KEEP) -> None:
        self.decompressed, self.keep = decompressed, keep
        self.offset = self.lines = 0  # bytes and newlines passed
        self.table: str | None = None
        # offset, newlines before, data, table before, the stream's bytes before (a head cut by the block)
        self._blocks: deque[tuple[int, int, bytes, str | None, bytes]] = deque()
        self._kept = 0
        self._tail = b"\n"

    def blocks(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            for block in blocks:
                if block:
                    self._add(block)
                yield block
        except StreamBroken as exc:  # at the end of what decompressed, the table last begun
            raise StreamBroken(f"{exc.what}, after {self.end()}", exc.advice) from None

    def _add(self, block: bytes) -> None:
        self._blocks.append((self.offset, self.lines, block, self.table, self._tail))
        self._kept += len(block)
        while self._kept > self.keep and len(self._blocks) > 2:
            self._kept -= len(self._blocks.popleft()[2])
        self.offset += len(block)
        self.lines += int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))  # 4× bytes.count
        self.table = self._last_table(block) or self.table
        self._tail = block[-256:] if len(block) >= 256 else (self._tail + block)[-256:]

    def _last_table(self, block: bytes) -> str | None:
        """The table the block's last statement head names: its last few line starts are looked
        at first (a dump's blocks end in rows of the table being dumped), then one search."""
        at = len(block)
        for _ in range(_WALK):
            nl = block.rfind(b"\n", 0, at)
            if nl < 0:  # a head at or across the block's first bytes
                return table_in(self._tail + block[:256])
            m = _TABLE.match(block, nl)
            if m and (name := _name(m)):
                return name
            at = nl
        return table_in(block) or table_in(self._tail + block[:256])

    def end(self) -> Position:
        """Where the stream ends (so far): its last line."""
        last = self.lines + (0 if self._tail.endswith(b"\n") and self.lines else 1)
        return Position(last, self.offset, self.table, self.decompressed)

    def line_start(self, line: int) -> int | None:
        """The offset of `line`'s first byte, if the stream passed it lately."""
        if line <= 1:
            return 0
        for off, before, data, _, _ in self._blocks:
            k = line - 1 - before  # the k-th newline of this block ends the line before
            if 0 < k <= data.count(b"\n"):
                at = -1
                for _ in range(k):
                    at = data.find(b"\n", at + 1)
                return off + at + 1
        return None

    def text(self, start: int, limit: int = 1 << 20) -> bytes:
        """Up to `limit` kept bytes from offset `start`."""
        parts = [data[max(start - off, 0):] for off, _, data, _, _ in self._blocks if off + len(data) > start]
        return b"".join(parts)[:limit]

    def table_at(self, offset: int) -> str | None:
        for off, _, data, table, tail in reversed(self._blocks):
            if off <= offset:
                return table_in(tail + data, offset - off + len(tail)) or table
        return None

    def locate(self, line: int, message: str) -> Position:
        """The place of a server error the client reports at `line` (its statement's first)."""
        start = self.line_start(line)
        if start is None:
            return Position(line, None, self.table_at(self.offset), self.decompressed)
        down, byte = within(message, self.text(start, self.keep))
        at = start + byte if byte is not None else self.line_start(line + down)
        return Position(line + down, at, self.table_at(start), self.decompressed)
