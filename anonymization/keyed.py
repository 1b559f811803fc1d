"""The keyed hash behind every pseudonym, in SQL and in Python — bit-identical.

A replacement is a function of (key, strategy family, original value): HMAC-SHA256 with
a per-family key derived from the anonymization key. MariaDB has no HMAC function, so
it is built from SHA2 exactly as RFC 2104 defines it; the inner/outer pads are computed
here and reach the server only as session variables (never logged, never stored).
The Python twin exists for the few rules that run row-wise (free-text scrubbing), which
must produce the same pseudonym for the same value as the set-based SQL does.
"""

from __future__ import annotations

import hashlib
import hmac

_BLOCK = 64


def derive(key: bytes, family: str) -> bytes:
    """A key per strategy family: the same e-mail maps alike in every table and text."""
    return hmac.new(key, f"phoenix:{family}".encode(), hashlib.sha256).digest()


def pads(key: bytes) -> tuple[bytes, bytes]:
    k = key if len(key) <= _BLOCK else hashlib.sha256(key).digest()
    k = k.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def hmac_hex(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def sql_hmac(var: str, expr: str) -> str:
    """SQL computing hex(HMAC) of `expr` with the pads in @{var}_i / @{var}_o."""
    return f"SHA2(CONCAT(@{var}_o, UNHEX(SHA2(CONCAT(@{var}_i, CONVERT({expr} USING utf8mb4)), 256))), 256)"


def set_pads_sql(var: str, key: bytes) -> tuple[str, tuple[bytes, bytes]]:
    """A statement (with parameters) loading a family key's pads into session variables."""
    i, o = pads(key)
    return f"SET @{var}_i = %s, @{var}_o = %s", (i, o)


def bucket(hexdigest: str, start: int, size: int) -> int:
    """The dictionary slot: 8 hex digits of the hash at `start`, modulo the size."""
    return int(hexdigest[start : start + 8], 16) % size


def sql_bucket(hexpr: str, start: int, size: int) -> str:
    # CAST to an integer first: `CONV(…) MOD n` would go through a double (measured 30% slower).
    return f"(CAST(CONV(SUBSTR({hexpr}, {start + 1}, 8), 16, 10) AS UNSIGNED) MOD {size})"
