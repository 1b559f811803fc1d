#!/usr/bin/env bash
# Builds the local cluster's container images without a registry: the pod sandbox
# (`pause`, imported as k8s.gcr.io/pause:3.2) and MariaDB on a Debian minbase rootfs.
# buildah with vfs storage under its own root; the result is an OCI archive per image,
# cached outside the repository keyed by version, so a second run does nothing.
#   Usage: infra/local/build-images.sh PAUSE_BIN [CACHE_DIR]    (as root; ~2 min cold)
# Prints one line per image: `<reference> <oci-archive>`.
# With PHOENIX_APP_REPO (a checkout) and PHOENIX_APP_VENV (its installed virtualenv),
# also `localhost/phoenix:<version>-<tree>`: the project and that virtualenv on a
# minbase rootfs with python3 and the Ceph bindings, keyed by the commit's tree.
# MYSQL_UID/MYSQL_GID: the mysql user's ids in the image (infra/local/images.py passes those of
# tasks/runtime/kubernetes/images.py; datadirs on the host are chowned to them).
set -euo pipefail
PAUSE_BIN=${1:?usage: build-images.sh PAUSE_BIN [CACHE_DIR]}
CACHE=${2:-${PHOENIX_IMAGE_CACHE:-/var/cache/phoenix/images}}
MYSQL_UID=${MYSQL_UID:-999}
MYSQL_GID=${MYSQL_GID:-999}
MIRROR=${PHOENIX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "build-images: $*" >&2; }
die() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, ownership in the image)"
for t in buildah debootstrap; do
  command -v $t >/dev/null || die "$t not found: run \`make install\` (infra/local/bootstrap.sh installs it)"
done
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "another build-images.sh holds $CACHE/.lock"

work="$CACHE/work"
B=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
# buildah creates these host paths on first use; remove them again if we made them.
made=()
for p in /etc/cni/net.d /var/lib/containers; do [ -e "$p" ] || made+=("$p"); done
cleanup() {
  rm -rf "$work"
  for p in "${made[@]}"; do rm -rf "$p"; done
  rmdir /etc/cni 2>/dev/null || true
}
trap cleanup EXIT

# The marker holds `<ref> <tar>`; only a finished archive gets one.
cached() { [ -s "$1.complete" ] && [ -s "$1" ] && cat "$1.complete"; }

build_pause() {
  local tar="$CACHE/pause-3.2.tar" ref="k8s.gcr.io/pause:3.2" c
  cached "$tar" && return 0
  say "building $ref"
  mkdir -p "$work"
  c=$("${B[@]}" from scratch)
  "${B[@]}" copy "$c" "$PAUSE_BIN" /pause >/dev/null
  "${B[@]}" config --entrypoint '["/pause"]' "$c"
  "${B[@]}" commit -q "$c" localhost/pause:3.2 >/dev/null
  rm -f "$tar"
  "${B[@]}" push -q localhost/pause:3.2 "oci-archive:$tar:$ref" >/dev/null
  echo "$ref $tar" > "$tar.complete"; cat "$tar.complete"
}

# Minbase bookworm + the server and client, trimmed; mysql pinned to MYSQL_UID:MYSQL_GID.
mariadb_rootfs() {
  local root=$1 old_uid old_gid
  debootstrap --variant=minbase --include=mariadb-server,mariadb-client bookworm "$root" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1 || die "debootstrap failed (see $CACHE/debootstrap.log)"
  old_uid=$(chroot "$root" id -u mysql); old_gid=$(chroot "$root" id -g mysql)
  chroot "$root" groupmod -g "$MYSQL_GID" mysql
  chroot "$root" usermod -u "$MYSQL_UID" -g "$MYSQL_GID" mysql
  find "$root" -xdev -uid "$old_uid" -exec chown -h "$MYSQL_UID" {} +
  find "$root" -xdev -gid "$old_gid" -exec chgrp -h "$MYSQL_GID" {} +
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
         "$root"/usr/share/locale/* "$root"/var/lib/mysql/* "$root"/var/log/*.log
  # The pid/socket directory mariadbd expects (tmpfs on a host, absent in an image).
  install -d -o "$MYSQL_UID" -g "$MYSQL_GID" -m 0755 "$root/run/mysqld"
}

build_mariadb() {
  local root="$work/rootfs" version tar ref c m
  for f in "$CACHE"/phoenix-mariadb-*.tar; do cached "$f" && return 0; done
  say "building the MariaDB image (debootstrap bookworm minbase: ~80 s)"
  mkdir -p "$work"
  mariadb_rootfs "$root"
  version=$(chroot "$root" dpkg-query -W -f='${Version}' mariadb-server)
  version=${version#*:}; version=${version%%-*}    # 1:10.11.18-0+deb12u1 -> 10.11.18
  tar="$CACHE/phoenix-mariadb-$version.tar"; ref="localhost/phoenix-mariadb:$version"
  c=$("${B[@]}" from scratch)
  m=$("${B[@]}" mount "$c")
  # tar, not `buildah copy`: keeps owners (mysql) and modes as they are in the rootfs.
  tar -C "$root" -cf - . | tar -C "$m" -xpf - --numeric-owner
  "${B[@]}" umount "$c" >/dev/null
  "${B[@]}" config --cmd '["mariadbd","--user=mysql"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label "phoenix.mysql-uid=$MYSQL_UID" --label "phoenix.mysql-gid=$MYSQL_GID" "$c"
  "${B[@]}" commit -q "$c" "$ref" >/dev/null
  rm -f "$tar"
  "${B[@]}" push -q "$ref" "oci-archive:$tar:$ref" >/dev/null
  echo "$ref $tar" > "$tar.complete"; cat "$tar.complete"
}

# The project's virtualenv as installed on this host (same Debian, same python3.11):
# copied, not re-resolved, so the image runs exactly the tested dependencies.
phoenix_venv() {
  local root=$1 venv=/opt/phoenix/venv site py
  py=$(basename "$(ls -d "$PHOENIX_APP_VENV"/lib/python3.*)")
  site="$root$venv/lib/$py/site-packages"
  python3 -m venv --without-pip "$root$venv"
  ln -sfn /usr/bin/python3 "$root$venv/bin/python3"
  cp -a "$PHOENIX_APP_VENV/lib/$py/site-packages/." "$site/"
  rm -f "$site"/__editable__*phoenix* "$site/phoenix_ceph_bindings.pth"
  # The test tier's tools (Kubernetes schemas, the type checker, pip) are not the app's: 180 MB.
  rm -rf "$site"/kubernetes_validate "$site"/mypy "$site"/mypyc "$site"/*__mypyc*.so "$site"/pip
  # The project in a directory of its own: the working directory of flow-run Jobs, where the
  # deployments' entrypoints (flows/spawn.py:spawn) are found (prefect.yaml's k8s pull step).
  mkdir -p "$root/opt/phoenix/app"
  git -C "$PHOENIX_APP_REPO" archive HEAD phoenix flows tasks anonymization deployments infra \
    | tar -C "$root/opt/phoenix/app" -xf -
  echo /opt/phoenix/app > "$site/phoenix_app.pth"
  mkdir -p "$root/opt/phoenix/ceph-bindings"
  for so in "$root"/usr/lib/python3/dist-packages/rados*.so "$root"/usr/lib/python3/dist-packages/rbd*.so; do
    ln -sfn "${so#"$root"}" "$root/opt/phoenix/ceph-bindings/$(basename "$so")"
  done
  echo /opt/phoenix/ceph-bindings > "$site/phoenix_ceph_bindings.pth"
  for f in "$PHOENIX_APP_VENV"/bin/*; do  # console scripts: this venv's python, in the image's path
    [ -f "$f" ] && [ ! -L "$f" ] && head -c2 "$f" | grep -q '#!' || continue
    sed "1s|^#!.*python.*|#!$venv/bin/python3|" "$f" > "$root$venv/bin/$(basename "$f")"
    chmod 0755 "$root$venv/bin/$(basename "$f")"
  done
}

# The app image's Debian part, debootstrapped once per package list and kept as a tarball:
# every commit is a new tree and so a new image (the debootstrap is ~45 s of CPU of each build;
# most of the rest is buildah copying, committing and pushing the virtualenv).
APP_PACKAGES=python3,python3-rados,python3-rbd,mariadb-client,ca-certificates,btrfs-progs
app_base() {
  local root=$1 base
  base="$CACHE/phoenix-base-bookworm-$(echo "$APP_PACKAGES" | sha256sum | cut -c1-12).tar"
  mkdir -p "$root"
  if [ -s "$base.complete" ] && [ -s "$base" ]; then
    tar -C "$root" -xpf "$base" --numeric-owner
    return 0
  fi
  say "debootstrapping the app image's base (bookworm minbase + $APP_PACKAGES: ~90 s, cached)"
  debootstrap --variant=minbase --include="$APP_PACKAGES" bookworm "$root" "$MIRROR" \
    >"$CACHE/debootstrap-app.log" 2>&1 || die "debootstrap failed (see $CACHE/debootstrap-app.log)"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
         "$root"/usr/share/locale/*
  rm -f "$base" "$base.complete"
  tar -C "$root" -cf "$base.part" . && mv "$base.part" "$base" && echo "$APP_PACKAGES" > "$base.complete"
}

build_phoenix() {
  [ -n "${PHOENIX_APP_REPO:-}" ] || return 0
  local root="$work/app-rootfs" version tree tar ref c m
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$PHOENIX_APP_REPO/pyproject.toml" | head -1)
  tree=$(git -C "$PHOENIX_APP_REPO" rev-parse --short=12 'HEAD^{tree}')
  tar="$CACHE/phoenix-$version-$tree.tar"; ref="localhost/phoenix:$version-$tree"
  cached "$tar" && return 0
  say "building $ref (the project's virtualenv on the cached Debian base)"
  mkdir -p "$work"
  app_base "$root"
  phoenix_venv "$root"
  c=$("${B[@]}" from scratch)
  m=$("${B[@]}" mount "$c")
  tar -C "$root" -cf - . | tar -C "$m" -xpf - --numeric-owner
  "${B[@]}" umount "$c" >/dev/null
  # No entrypoint: Prefect's Kubernetes Jobs pass their command as the container's args.
  "${B[@]}" config --entrypoint '[]' --cmd '["phoenix", "--help"]' --workingdir /opt/phoenix/app \
    --env PATH=/opt/phoenix/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  "${B[@]}" commit -q "$c" "$ref" >/dev/null
  rm -f "$CACHE"/phoenix-[0-9]*.tar "$CACHE"/phoenix-[0-9]*.tar.complete  # older trees: one per checkout is enough
  "${B[@]}" push -q "$ref" "oci-archive:$tar:$ref" >/dev/null
  echo "$ref $tar" > "$tar.complete"; cat "$tar.complete"
}

build_pause
build_mariadb
build_phoenix
