"""Environment names → ids safe everywhere (DNS-1123 labels, image names, Kubernetes namespaces)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from phoenix.errors import InvalidEnvName

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
    return f"{slug[:MAX_ID - 7].rstrip('-') or 'env'}-{suffix}"


def image_name(eid: str) -> str:
    return f"env-{eid}"


_TTL = re.compile(r"^(\d+)([smhdw])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_ttl(ttl: str) -> timedelta:
    m = _TTL.match(str(ttl).strip())
    if not m or int(m.group(1)) == 0:
        raise InvalidEnvName(f"ttl {ttl!r}: use a number and a unit, e.g. 30m, 8h, 2d")
    return timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})
