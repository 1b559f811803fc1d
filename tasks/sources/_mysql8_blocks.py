"""The MySQL 8 translation on the client path: a dump's blocks, rewritten as they stream to
the `mariadb` client.

mysqldump writes each row statement on one line (newlines inside values are escaped), and
rows come in runs. A run is passed on with one C-level regex search for its end, never line
by line in Python; only the few lines between runs (DDL, session statements) go through the
Translator, whole. `DELIMITER` is followed, so a routine's body lines are never taken for rows
and its statements are not mistaken for the dump's session statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tasks.sources._mysql8 import ROWS, Translator

_RUN_END = re.compile(rb"\n(?!INSERT |REPLACE )")


class BlockTranslator:
    def __init__(self, translator: Translator) -> None:
        self.tr = translator
        self.delim = b";"
        self.lines = 0  # complete lines passed on so far

    def blocks(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        carry, in_row = b"", False
        for block in blocks:
            if not block:
                continue
            if in_row:  # the rest of a row line that began in an earlier block
                nl = block.find(b"\n")
                if nl < 0:
                    yield block
                    continue
                yield block[: nl + 1]
                self.lines += 1
                block, in_row = block[nl + 1 :], False
            data = carry + block if carry else block
            parts, in_row, carry = self._scan(data)
            yield b"".join(parts)
        if carry:  # a last line without its newline
            yield self.tr.text(carry, self.lines + 1, self.delim == b";")

    def _scan(self, data: bytes) -> tuple[list[bytes], bool, bytes]:
        """`data` starts at a line start: (what to pass on, ends inside a row line, the open
        statement's lines kept for the next block)."""
        parts: list[bytes] = []
        i, n = 0, len(data)
        while i < n:
            if self.delim == b";" and data.startswith(ROWS, i):
                m = _RUN_END.search(data, i)
                j = m.start() + 1 if m else n
                parts.append(data[i:j])
                self.lines += data.count(b"\n", i, j)
                if not m:
                    return parts, not data.endswith(b"\n"), b""
                i = j
                continue
            i, done = self._other(data, i, parts)
            if not done:
                return parts, False, data[i:]
        return parts, False, b""

    def _other(self, data: bytes, i: int, parts: list[bytes]) -> tuple[int, bool]:
        """Non-row lines from `i` to the next row line, translated in whole statements (a rule
        may need all of one, e.g. a GTID set over several lines): (where the next row line
        starts, True), or (where the open statement starts, False) at the end of `data`."""
        start = cut = i
        delim, open_ = self.delim, False
        while not (not open_ and delim == b";" and data.startswith(ROWS, i)):
            nl = data.find(b"\n", i)
            if nl < 0:
                break
            line = data[i:nl].rstrip()
            i = nl + 1
            if not open_ and line[:10].upper() == b"DELIMITER ":
                self._emit(data, start, cut, parts, delim)
                start, delim = cut, line.split()[1] if len(line.split()) > 1 else b";"
                cut = i
            elif open_ or (line and not line.startswith(b"--")):
                open_ = not line.endswith(delim)
                cut = cut if open_ else i
            else:
                cut = i  # a blank line or comment between statements
            if i >= len(data):
                break
        self._emit(data, start, cut, parts, delim)
        self.delim = delim
        done = cut == i and (i >= len(data) or data.startswith(ROWS, i))
        return cut, done and cut < len(data)

    def _emit(self, data: bytes, start: int, cut: int, parts: list[bytes], delim: bytes) -> None:
        if start < cut:
            parts.append(self.tr.text(data[start:cut], self.lines + 1, delim == b";"))
            self.lines += data.count(b"\n", start, cut)
