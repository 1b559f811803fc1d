#!/usr/bin/env bash
# Builds the Kubernetes binaries from Debian's `kubernetes` source package — no Debian
# package ships them and no Go module proxy is reachable here. Two sets, each with its
# own marker: the control plane (kube-apiserver, kube-controller-manager: `.complete`)
# and the node (kubelet, kube-scheduler, kube-proxy and the static `pause`: `.complete-node`).
# The binaries are cached outside the repository, keyed by the source version, so a
# second run (or a fresh clone on the same machine) does not rebuild.
#   Usage: infra/local/build-kubernetes.sh [CACHE_DIR]     (as root; ~6 min cold on 2 cores)
# Prints the directory holding the binaries on its last line.
set -euo pipefail
CACHE=${1:-${PHOENIX_KUBE_CACHE:-/var/cache/phoenix/kubernetes}}
say() { echo "build-kubernetes: $*" >&2; }
die() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (apt-get source/install)"

# Fast path: any finished build in the cache (the version is only known after apt).
for d in "$CACHE"/*/bin; do
  if [ -e "$d/.complete" ] && [ -e "$d/.complete-node" ]; then
    echo "$d"; exit 0
  fi
done

export DEBIAN_FRONTEND=noninteractive
# deb-src for the same archive as the binary packages (bookworm has none by default).
src_list=/etc/apt/sources.list.d/phoenix-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
  say "adding a deb-src source for bookworm ($src_list)"
  cat > "$src_list" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq >/dev/null || die "apt-get update failed: check the network/apt sources"
fi
need=()
for p in golang-1.19-go dpkg-dev gcc libc6-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/phoenix-kube-apt.log 2>&1 \
    || { apt-get update -qq >/dev/null; apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/phoenix-kube-apt.log 2>&1; } \
    || die "apt-get install ${need[*]} failed (see /tmp/phoenix-kube-apt.log)"
fi

version=$(apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2; exit}')
[ -n "$version" ] || die "no source package 'kubernetes' in apt: check the deb-src line in $src_list"
out="$CACHE/$version/bin"
if [ -e "$out/.complete" ] && [ -e "$out/.complete-node" ]; then echo "$out"; exit 0; fi

work="$CACHE/$version/work"
mkdir -p "$work"
cd "$work"
if [ ! -d src/.done ]; then
  say "fetching the source package kubernetes $version"
  rm -rf src && mkdir src
  (cd src && apt-get source -qq --download-only kubernetes >/dev/null 2>&1) \
    || die "apt-get source kubernetes failed"
  (cd src && dpkg-source -x --no-check ./*.dsc tree >/dev/null) || die "dpkg-source -x failed"
  mkdir src/.done
fi

# GOPATH mode with the package's vendor/ tree: the repository must sit at k8s.io/kubernetes.
export GOROOT=/usr/lib/go-1.19 PATH=/usr/lib/go-1.19/bin:$PATH
export GOPATH="$work/gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS= GOCACHE="$CACHE/go-build"
mkdir -p "$GOPATH/src/k8s.io" "$work/tools"
ln -sfn "$work/src/tree" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"

# The apiserver needs the generated OpenAPI definitions, which the source does not ship.
openapi=pkg/generated/openapi/zz_generated.openapi.go
if [ ! -s "$openapi" ]; then
  say "building openapi-gen and generating $openapi"
  go build -o "$work/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  dirs=$(grep -rl --include='*.go' -e '+k8s:openapi-gen=' pkg staging/src/k8s.io 2>/dev/null \
         | xargs -n1 dirname | sort -u \
         | sed -e 's|^staging/src/|k8s.io/kubernetes/vendor/|' -e 's|^pkg/|k8s.io/kubernetes/pkg/|' \
         | grep -v '/testdata' | paste -sd, -)
  "$work/tools/openapi-gen" --logtostderr -i "$dirs" \
      -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
      -h hack/boilerplate/boilerplate.generatego.txt -r /dev/null \
      -o "$GOPATH/src" >/dev/null 2>"$work/openapi-gen.log" \
    || die "openapi-gen failed (see $work/openapi-gen.log)"
  [ -s "$openapi" ] || die "openapi-gen wrote nothing (see $work/openapi-gen.log)"
fi

mkdir -p "$out"
# In GOPATH mode the version package sits under vendor/ of k8s.io/kubernetes.
upstream=${version#*really}; upstream=${upstream%%-*}
vpkg=k8s.io/kubernetes/vendor/k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=v$upstream -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$(echo "$upstream" | cut -d. -f2)"
build_set() {  # MARKER CMD…: compile what is missing, then mark the set finished
  local marker=$1 cmd; shift
  [ -e "$out/$marker" ] && return 0
  for cmd in "$@"; do
    if [ ! -x "$out/$cmd" ]; then
      say "compiling $cmd (minutes on 2 cores; cached in $out)"
      go build -ldflags "$ldflags" -o "$out/$cmd.tmp" "./cmd/$cmd" 2>"$work/$cmd.log" \
        || die "go build $cmd failed (see $work/$cmd.log)"
      mv "$out/$cmd.tmp" "$out/$cmd"
    fi
  done
  if [ "$marker" = .complete-node ] && [ ! -x "$out/pause" ]; then
    # The sandbox image's only binary; static so the image needs no libc.
    say "compiling pause"
    gcc -Os -static -DVERSION=v3.4.1 -o "$out/pause.tmp" build/pause/linux/pause.c 2>"$work/pause.log" \
      || die "gcc pause failed (see $work/pause.log; needs gcc and libc6-dev)"
    strip "$out/pause.tmp" && mv "$out/pause.tmp" "$out/pause"
  fi
  touch "$out/$marker"
}
build_set .complete kube-apiserver kube-controller-manager
build_set .complete-node kubelet kube-scheduler kube-proxy
say "done: $out"
echo "$out"
