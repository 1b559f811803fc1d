"""The local cluster's container images, built here without a registry by
`build-images.sh` (buildah, OCI archives cached under /var/cache/phoenix/images/ by
version): the pod sandbox `k8s.gcr.io/pause:3.2` and `localhost/phoenix-mariadb:<ver>`.

MYSQL_UID/MYSQL_GID are the mysql user's ids inside the MariaDB image, pinned so a
datadir prepared on the host (or on a volume) can be chowned to them before the pod
starts; the runtime imports them from here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phoenix.errors import StackError

MYSQL_UID = 999
MYSQL_GID = 999
PAUSE_REF = "k8s.gcr.io/pause:3.2"
MARIADB_REPO = "localhost/phoenix-mariadb"
_BUILD = Path(__file__).with_name("build-images.sh")


def ensure(bin_dir: Path, progress=lambda m: print(m, file=sys.stderr)) -> dict[str, Path]:
    """{reference: OCI archive} of every image, building the missing ones (~2 min cold)."""
    progress("kubernetes: looking for the cached pause and MariaDB images "
             "(the first run builds them with debootstrap + buildah: ~2 min)")
    env = {**os.environ, "MYSQL_UID": str(MYSQL_UID), "MYSQL_GID": str(MYSQL_GID)}
    res = subprocess.run(["bash", str(_BUILD), str(bin_dir / "pause")], stdout=subprocess.PIPE,
                         text=True, env=env, timeout=3600)
    if res.returncode != 0:
        raise StackError("building the local container images failed (see the lines above): "
                         "fix the cause and re-run `phoenix stack up --kubernetes`")
    refs = dict(line.split(" ", 1) for line in res.stdout.split("\n") if " " in line)
    return {ref: Path(tar) for ref, tar in refs.items()}


def mariadb_ref(images: dict[str, Path]) -> str:
    return next(ref for ref in images if ref.startswith(MARIADB_REPO + ":"))
