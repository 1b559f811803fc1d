#!/usr/bin/env bash
# Everything Phoenix needs on a fresh Debian 12 machine, as root, idempotent and quiet
# when all is there: Debian packages, the project's virtualenv, the Ceph bindings.
# Usage: infra/local/bootstrap.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.venv}

die() { echo "bootstrap: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (loop devices, mounts and apt need it): sudo make …"
command -v apt-get >/dev/null || die "apt-get not found: Phoenix's local stack needs Debian 12 (bookworm)"

# --- Debian packages -----------------------------------------------------------------
PACKAGES=(mariadb-server mariadb-client btrfs-progs ceph-mon ceph-mgr ceph-osd ceph-common
          python3-rados python3-rbd rbd-fuse fuse3 e2fsprogs uuid-runtime etcd-server zstd
          mydumper openssl util-linux procps curl
          containerd runc containernetworking-plugins iptables nftables conntrack buildah debootstrap)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed: check the network/apt sources, then re-run"
  # Keep the packages' init scripts from starting system-wide daemons (mariadb, ceph):
  # Phoenix starts its own, under its state directory.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  trap '[ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/phoenix-apt.log 2>&1 \
    || die "apt-get install failed (see /tmp/phoenix-apt.log): fix apt, then re-run"
fi

# --- virtualenv ------------------------------------------------------------------------
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || die "$PY is older than 3.11 (or missing): install python3 >= 3.11"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" || die "could not create $VENV: install python3-venv"
stamp="$VENV/.phoenix-installed"
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python dependencies into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test,bench]" >/tmp/phoenix-pip.log 2>&1 \
    || die "pip install failed (see /tmp/phoenix-pip.log)"
  echo "$want" > "$stamp"
fi

# --- Ceph bindings: only rados and rbd from Debian's dist-packages, not the rest --------
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
links="$(cd "$VENV" && pwd)/ceph-bindings"
mkdir -p "$links"
for so in /usr/lib/python3/dist-packages/rados*.so /usr/lib/python3/dist-packages/rbd*.so; do
  [ -e "$so" ] && ln -sfn "$so" "$links/$(basename "$so")"
done
echo "$links" > "$site/phoenix_ceph_bindings.pth"
"$VENV/bin/python" -c 'import rados, rbd' 2>/dev/null \
  || die "the rados/rbd bindings do not import in $VENV: python3-rados/python3-rbd must match $PY's version"

# --- gitlab-ci-local: the tests run the GitLab template through it (tests/ci/test_gitlab_template.py).
# Pinned: 4.75 crashes on Node 20. Cached outside the repository, keyed by version.
GCL_VERSION=4.70.1
GCL_DIR=${PHOENIX_NPM_CACHE:-/var/cache/phoenix/npm}/gitlab-ci-local-$GCL_VERSION
if [ ! -x "$GCL_DIR/node_modules/.bin/gitlab-ci-local" ]; then
  if ! command -v npm >/dev/null; then
    echo "bootstrap: installing Debian packages: nodejs npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >>/tmp/phoenix-apt.log 2>&1 \
      || die "apt-get install nodejs npm failed (see /tmp/phoenix-apt.log)"
  fi
  echo "bootstrap: installing gitlab-ci-local $GCL_VERSION into $GCL_DIR"
  mkdir -p "$GCL_DIR"
  npm install --prefix "$GCL_DIR" --no-audit --no-fund --loglevel=error "gitlab-ci-local@$GCL_VERSION" \
    >/tmp/phoenix-npm.log 2>&1 || die "npm install gitlab-ci-local failed (see /tmp/phoenix-npm.log)"
fi
