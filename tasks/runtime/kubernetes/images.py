"""The images of the local cluster, as the runtime needs to know them (built by
`infra/local/build-images.sh`, no registry involved).

MYSQL_UID/MYSQL_GID: the mysql user's ids inside `localhost/phoenix-mariadb:<version>`,
pinned so a datadir on the host (the node's `local` PersistentVolume) can be chowned to
them before the pod starts. Here, below `infra` in the layers, so the runtime may import it.
"""

MYSQL_UID = 999
MYSQL_GID = 999
MARIADB_REPO = "localhost/phoenix-mariadb"  # tagged with the Debian MariaDB version, e.g. 10.11.18
PAUSE_REF = "k8s.gcr.io/pause:3.2"  # the sandbox image containerd expects, built here too
APP_REPO = "localhost/phoenix"  # the project and its virtualenv, tagged <version>-<git tree>
