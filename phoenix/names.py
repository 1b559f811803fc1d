"""Environment names → ids safe everywhere (DNS-1123 labels, image names, Kubernetes namespaces)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import timedelta

from phoenix.errors import InvalidEnvName, InvalidName, InvalidTTL

MAX_ID = 40


def env_id(name: str) -> str:
    """Lower-case, [a-z0-9-], ≤ 40 chars; a short hash suffix whenever the name had to be
    changed, so `feature/ABC-1` and `feature-abc-1` never collide. Stable for a name."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidEnvName(f"environment name {name!r}: give 1-255 characters, e.g. the branch name")
    slug = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", name.lower())).strip("-")
    if slug == name and len(slug) <= MAX_ID:
        return slug
    suffix = hashlib.sha1(name.encode()).hexdigest()[:6]
    return f"{slug[: MAX_ID - 7].rstrip('-') or 'env'}-{suffix}"


def image_name(eid: str) -> str:
    return f"env-{eid}"


TTL_PATTERN = r"^\s*(\d+)([smhdw])\s*$"  # also the flows' parameter schema: a bad ttl is refused before a run
_TTL = re.compile(TTL_PATTERN)
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# Environments are disposable: a branch that lives longer than a quarter gets re-spawned
# (which restarts the ttl). Also keeps `99999999d` from overflowing datetime (year 275 000).
MAX_TTL = timedelta(days=90)


def parse_ttl(ttl: str) -> timedelta:
    m = _TTL.match(str(ttl).strip())
    if not m or int(m.group(1)) == 0:
        raise InvalidTTL(f"ttl {ttl!r}: use a number and a unit, e.g. 30m, 8h, 2d")
    n = int(m.group(1))
    if len(m.group(1)) > 7 or timedelta(**{_UNIT[m.group(2)]: n}) > MAX_TTL:
        raise InvalidTTL(
            f"ttl {ttl!r} is longer than the longest allowed, {MAX_TTL.days}d: use at most 90d "
            "(a re-spawn restarts the ttl)"
        )
    return timedelta(**{_UNIT[m.group(2)]: n})


def ascii_slug(text: str) -> str:
    """Letters of a name as an e-mail local part: 'Müller-Łukasz' -> 'muller-ukasz'."""
    norm = unicodedata.normalize("NFKD", text)
    out = "".join(c for c in norm if c.isascii() and (c.isalnum() or c in ".-")).lower()
    return out.strip(".-") or "user"


_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


def validate_name(name: str, what: str = "image") -> str:
    """Letters, digits, '.', '_', '-'; 1..96 chars; no path tricks."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        shown = name if isinstance(name, str) and len(name) <= 60 else f"{str(name)[:60]}…"
        raise InvalidName(
            f"invalid {what} name {shown!r}: use 1-96 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name
