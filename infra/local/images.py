"""The local cluster's container images, built here without a registry by
`build-images.sh` (buildah, OCI archives cached under /var/cache/phoenix/images/ by
version): the pod sandbox `k8s.gcr.io/pause:3.2` and `localhost/phoenix-mariadb:<ver>`.

MYSQL_UID/MYSQL_GID (the mysql user's ids inside the MariaDB image) are defined in
`tasks.runtime.kubernetes.images`, where the runtime can import them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phoenix.errors import StackError
from tasks.runtime.kubernetes.images import APP_REPO, MARIADB_REPO, MYSQL_GID, MYSQL_UID, PAUSE_REF

__all__ = ["APP_REPO", "MARIADB_REPO", "MYSQL_GID", "MYSQL_UID", "PAUSE_REF", "app_ref", "ensure", "mariadb_ref"]
_BUILD = Path(__file__).with_name("build-images.sh")


def ensure(bin_dir: Path, progress=lambda m: print(m, file=sys.stderr), *, app: bool = False) -> dict[str, Path]:
    """{reference: OCI archive} of every image, building the missing ones (~2 min cold).
    With `app`, also the Phoenix image of this checkout's HEAD and its installed venv."""
    progress("kubernetes: looking for the cached pause and MariaDB images "
             "(the first run builds them with debootstrap + buildah: ~2 min)")
    env = {**os.environ, "MYSQL_UID": str(MYSQL_UID), "MYSQL_GID": str(MYSQL_GID)}
    if app:
        repo = _BUILD.parent.parent.parent
        env |= {"PHOENIX_APP_REPO": str(repo), "PHOENIX_APP_VENV": str(Path(sys.prefix))}
    res = subprocess.run(["bash", str(_BUILD), str(bin_dir / "pause")], stdout=subprocess.PIPE,
                         text=True, env=env, timeout=3600)
    if res.returncode != 0:
        raise StackError("building the local container images failed (see the lines above): "
                         "fix the cause and re-run `phoenix stack up --kubernetes`")
    refs = dict(line.split(" ", 1) for line in res.stdout.split("\n") if " " in line)
    return {ref: Path(tar) for ref, tar in refs.items()}


def mariadb_ref(images: dict[str, Path]) -> str:
    return next(ref for ref in images if ref.startswith(MARIADB_REPO + ":"))


def app_ref(images: dict[str, Path]) -> str:
    return next(ref for ref in images if ref.startswith(APP_REPO + ":"))
