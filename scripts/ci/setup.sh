#!/usr/bin/env bash
# Installs and builds the external tools that Entrepot's integration tests
# drive: a real upstream registry (CNCF Distribution), registry clients
# (skopeo, podman, containerd/ctr, Docker Engine), an S3-compatible server,
# the OCI distribution-spec conformance suite, Clair (vulnerability scanner)
# and clairctl, nginx, Chromium, wrk, the referrer/signature clients oras and
# cosign, and the deployment tools (docker-compose, debootstrap, Helm).
#
# Run as root on Debian 12. Idempotent: when everything is in place it only
# checks and prints the tool paths (about a second). Go-built tools are cached
# outside the repository, in $ENTREPOT_TOOLS_DIR (default
# /var/cache/entrepot-tools), so every clone on the machine reuses them; a
# missing or outdated binary is rebuilt.
set -euo pipefail

TOOLS_DIR="${ENTREPOT_TOOLS_DIR:-/var/cache/entrepot-tools}"
BIN_DIR="$TOOLS_DIR/bin"
GO="${GO:-/usr/local/go/bin/go}"

# Debian packages (command → package):
#   docker-registry → docker-registry   htpasswd → apache2-utils
#   skopeo, podman, containerd + ctr, wrk, jq, curl, openssl → same names
#   nginx → nginx-light                  chromium → chromium
#   libjemalloc.so.2 → libjemalloc2 (the allocator Entrepot's launcher preloads)
#   psql → postgresql-client (creates Clair's test databases)
#   dockerd + docker → docker.io (Docker Engine 20.10; the tests start their own daemon)
#   docker-compose → docker-compose (Compose v1, validates deploy/compose)
#   debootstrap → debootstrap (scripts/image/local-base.sh assembles a Debian base image)
APT_PACKAGES=(
  docker-registry apache2-utils skopeo podman containerd nginx-light
  chromium wrk jq curl openssl ca-certificates libjemalloc2 postgresql-client
  docker.io docker-compose debootstrap
)

# Go-built tools, pinned. Versions are module versions served by the Go module proxy.
# OCI distribution-spec conformance runner (a main package in this version).
OCI_CONFORMANCE_MODULE="github.com/opencontainers/distribution-spec/conformance"
OCI_CONFORMANCE_VERSION="v0.0.0-20260831232431-97274622c111"
OCI_CONFORMANCE_PKG="$OCI_CONFORMANCE_MODULE"
# SeaweedFS (Apache-2.0); `weed mini` provides the S3 gateway used by the storage tests.
SEAWEEDFS_MODULE="github.com/seaweedfs/seaweedfs"
SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
SEAWEEDFS_PKG="github.com/seaweedfs/seaweedfs/weed"
# Clair v4 (Apache-2.0), the vulnerability scanner, and clairctl, which loads the
# scanning tests' vulnerability fixture (import-updaters).
CLAIR_MODULE="github.com/quay/clair/v4"
CLAIR_VERSION="v4.9.0"
# ORAS CLI: attaches and discovers OCI referrers (SBOMs, signatures) in the referrers tests.
ORAS_MODULE="oras.land/oras"
ORAS_VERSION="v1.3.6"
ORAS_PKG="oras.land/oras/cmd/oras"
# cosign: signs and verifies images with a key pair (no transparency log) in the signature-policy tests.
COSIGN_MODULE="github.com/sigstore/cosign/v2"
COSIGN_VERSION="v2.6.5"
COSIGN_PKG="github.com/sigstore/cosign/v2/cmd/cosign"
# Helm v4 (Apache-2.0); lints and renders deploy/helm/entrepot.
HELM_MODULE="helm.sh/helm/v4"
HELM_VERSION="v4.3.2"
HELM_PKG="helm.sh/helm/v4/cmd/helm"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get and the container tools need it)"

mkdir -p "$BIN_DIR" "$TOOLS_DIR/src" "$TOOLS_DIR/logs"
# One setup at a time per machine (parallel CI jobs or test runs).
exec 9>"$TOOLS_DIR/.lock"
flock 9

# --- Debian packages ---------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$TOOLS_DIR/logs/apt.log" 2>&1 ||
    { tail -n 30 "$TOOLS_DIR/logs/apt.log" >&2; die "apt-get install failed (log: $TOOLS_DIR/logs/apt.log)"; }
else
  log "Debian packages already installed"
fi

# --- Go-built tools ----------------------------------------------------------
# build_go_tool NAME MODULE VERSION PACKAGE
# Builds PACKAGE from MODULE@VERSION in a scratch module and installs it as
# $BIN_DIR/NAME; skipped when the binary exists and its stamp names the same
# module version.
build_go_tool() {
  local name="$1" module="$2" version="$3" pkg="$4"
  local bin="$BIN_DIR/$name" stamp="$BIN_DIR/.$name.version" want="$module@$version $pkg"
  if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "$name: cached ($module@$version)"
    return 0
  fi
  [ -x "$GO" ] || die "Go not found at $GO (needed to build $name)"
  local src="$TOOLS_DIR/src/$name" buildlog="$TOOLS_DIR/logs/$name.log" started=$SECONDS
  log "$name: building $pkg from $module@$version (log: $buildlog)"
  rm -rf "$src"
  mkdir -p "$src"
  printf 'module entrepot.local/testtools/%s\n\ngo 1.22\n' "$name" >"$src/go.mod"
  if ! (
    cd "$src" &&
      export GOFLAGS=-mod=mod &&
      "$GO" get "$module@$version" &&
      "$GO" build -o "$bin.tmp" "$pkg"
  ) >"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    rm -f "$bin.tmp"
    die "$name: build failed (log: $buildlog)"
  fi
  mv -f "$bin.tmp" "$bin"
  printf '%s' "$want" >"$stamp"
  log "$name: built in $((SECONDS - started)) s"
}

build_go_tool oci-conformance "$OCI_CONFORMANCE_MODULE" "$OCI_CONFORMANCE_VERSION" "$OCI_CONFORMANCE_PKG"
build_go_tool weed "$SEAWEEDFS_MODULE" "$SEAWEEDFS_VERSION" "$SEAWEEDFS_PKG"
# Pure Go; built without cgo as upstream releases it.
CGO_ENABLED=0 build_go_tool clair "$CLAIR_MODULE" "$CLAIR_VERSION" "$CLAIR_MODULE/cmd/clair"
CGO_ENABLED=0 build_go_tool clairctl "$CLAIR_MODULE" "$CLAIR_VERSION" "$CLAIR_MODULE/cmd/clairctl"
build_go_tool oras "$ORAS_MODULE" "$ORAS_VERSION" "$ORAS_PKG"
build_go_tool cosign "$COSIGN_MODULE" "$COSIGN_VERSION" "$COSIGN_PKG"
build_go_tool helm "$HELM_MODULE" "$HELM_VERSION" "$HELM_PKG"

# --- Check and report --------------------------------------------------------
declare -A TOOLS=(
  [docker-registry]=/usr/bin/docker-registry
  [htpasswd]=/usr/bin/htpasswd
  [skopeo]=/usr/bin/skopeo
  [podman]=/usr/bin/podman
  [containerd]=/usr/bin/containerd
  [ctr]=/usr/bin/ctr
  [nginx]=/usr/sbin/nginx
  [chromium]=/usr/bin/chromium
  [wrk]=/usr/bin/wrk
  [jq]=/usr/bin/jq
  [curl]=/usr/bin/curl
  [openssl]=/usr/bin/openssl
  [psql]=/usr/bin/psql
  [dockerd]=/usr/sbin/dockerd
  [docker]=/usr/bin/docker
  [docker-compose]=/usr/bin/docker-compose
  [debootstrap]=/usr/sbin/debootstrap
  [helm]="$BIN_DIR/helm"
  [oci-conformance]="$BIN_DIR/oci-conformance"
  [weed]="$BIN_DIR/weed"
  [clair]="$BIN_DIR/clair"
  [clairctl]="$BIN_DIR/clairctl"
  [oras]="$BIN_DIR/oras"
  [cosign]="$BIN_DIR/cosign"
)
failed=0
echo "Entrepot test tools:"
for name in docker-registry htpasswd skopeo podman containerd ctr nginx chromium wrk jq curl openssl psql \
  dockerd docker docker-compose debootstrap oci-conformance weed clair clairctl oras cosign helm; do
  path="${TOOLS[$name]}"
  if [ -x "$path" ]; then
    printf '  %-16s %s\n' "$name" "$path"
  else
    printf '  %-16s MISSING (expected %s)\n' "$name" "$path"
    failed=1
  fi
done
[ "$failed" -eq 0 ] || die "some tools are missing"
