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
#   psql → postgresql-client (creates Clair's test databases)
#   dockerd + docker → docker.io (Docker Engine 20.10; the tests start their own daemon)
#   docker-compose → docker-compose (Compose v1, validates deploy/compose)
#   debootstrap → debootstrap (scripts/image/local-base.sh assembles a Debian base image)
#   zlib1g-dev (libz.a for the soci build), busybox-static (the SOCI test image's userland)
APT_PACKAGES=(
  docker-registry apache2-utils skopeo podman containerd nginx-light
  chromium wrk jq curl openssl ca-certificates postgresql-client
  docker.io docker-compose debootstrap zlib1g-dev busybox-static
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

# SOCI snapshotter (Apache-2.0), for the lazy-pulling test: the `soci` CLI (makes
# SOCI indexes), `soci-snapshotter-grpc` (the lazy-pulling snapshotter) and
# `soci-pull` (a pull with the labels a remote snapshotter needs, as nerdctl
# passes them; written below). The cmd module has no tagged version on the Go
# module proxy: this pseudo-version is the v0.16.1 commit (same time). Its go.mod
# replaces the root module with ../, so a copy of it is built with the released
# root module instead. cgo links zlib statically (zlib1g-dev).
SOCI_VERSION="v0.16.1"
SOCI_CMD_VERSION="v0.0.0-20260930233240-61147fe7c929"
# containerd 2 for the SOCI test: Debian's containerd 1.6 does not pass the
# namespace to snapshotter plugins, which soci-snapshotter-grpc requires.
CONTAINERD2_MODULE="github.com/containerd/containerd/v2"
CONTAINERD2_VERSION="v2.2.9"

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

# build_soci_tools: soci, soci-snapshotter-grpc, soci-pull, containerd2 and ctr2 (see SOCI_VERSION).
build_soci_tools() {
  local stamp="$BIN_DIR/.soci.version" want="soci $SOCI_VERSION cmd $SOCI_CMD_VERSION containerd $CONTAINERD2_VERSION"
  local bins=(soci soci-snapshotter-grpc soci-pull containerd2 ctr2) b ok=1
  for b in "${bins[@]}"; do [ -x "$BIN_DIR/$b" ] || ok=0; done
  if [ "$ok" -eq 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "soci: cached ($want)"
    return 0
  fi
  [ -x "$GO" ] || die "Go not found at $GO (needed to build soci)"
  local src="$TOOLS_DIR/src/soci" ctd="$TOOLS_DIR/src/containerd2" buildlog="$TOOLS_DIR/logs/soci.log" started=$SECONDS
  log "soci: building soci, soci-snapshotter-grpc, soci-pull, containerd $CONTAINERD2_VERSION (log: $buildlog)"
  rm -rf "$src" "$ctd"
  mkdir -p "$ctd"
  if ! (
    set -e
    export GOFLAGS=-modcacherw
    dir=$("$GO" mod download -json "github.com/awslabs/soci-snapshotter/cmd@$SOCI_CMD_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    cd "$src"
    sed -i "s#github.com/awslabs/soci-snapshotter \(v0.0.0[-a-z]*\) => ../#github.com/awslabs/soci-snapshotter \1 => github.com/awslabs/soci-snapshotter $SOCI_VERSION#" go.mod
    mkdir -p soci-pull
    cat >soci-pull/main.go <<'GO'
// soci-pull SOCKET NAMESPACE REF: pulls REF into containerd with the SOCI
// snapshotter, passing the labels a remote snapshotter needs (as nerdctl
// does), over plain HTTP.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/awslabs/soci-snapshotter/fs/source"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ctdsnapshotters "github.com/containerd/containerd/v2/pkg/snapshotters"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: soci-pull SOCKET NAMESPACE REF")
		os.Exit(2)
	}
	client, err := containerd.New(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), os.Args[2])
	ref := os.Args[3]
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts))})
	img, err := client.Pull(ctx, ref,
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter("soci"),
		containerd.WithImageHandlerWrapper(source.AppendDefaultLabelsHandlerWrapper("", ctdsnapshotters.AppendInfoHandlerWrapper(ref))),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pull:", err)
		os.Exit(1)
	}
	fmt.Println(img.Name(), img.Target().Digest)
}
GO
    "$GO" mod download github.com/awslabs/soci-snapshotter
    mkdir -p out
    "$GO" build -o out/ ./soci ./soci-snapshotter-grpc ./soci-pull
    # containerd in a module of its own: its dependencies, not soci's.
    cd "$ctd"
    printf 'module entrepot.local/testtools/containerd2\n\ngo 1.22\n' >go.mod
    GOFLAGS="-modcacherw -mod=mod" "$GO" get "$CONTAINERD2_MODULE@$CONTAINERD2_VERSION"
    GOFLAGS="-modcacherw -mod=mod" "$GO" build -tags "no_btrfs no_devmapper no_zfs" -o out/ "$CONTAINERD2_MODULE/cmd/containerd" "$CONTAINERD2_MODULE/cmd/ctr"
  ) >"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    die "soci: build failed (log: $buildlog)"
  fi
  for b in soci soci-snapshotter-grpc soci-pull; do mv -f "$src/out/$b" "$BIN_DIR/$b"; done
  mv -f "$ctd/out/containerd" "$BIN_DIR/containerd2"
  mv -f "$ctd/out/ctr" "$BIN_DIR/ctr2"
  printf '%s' "$want" >"$stamp"
  log "soci: built in $((SECONDS - started)) s"
}
build_soci_tools

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
  [soci]="$BIN_DIR/soci"
  [soci-snapshotter-grpc]="$BIN_DIR/soci-snapshotter-grpc"
  [soci-pull]="$BIN_DIR/soci-pull"
  [containerd2]="$BIN_DIR/containerd2"
  [ctr2]="$BIN_DIR/ctr2"
  [busybox]=/bin/busybox
)
failed=0
echo "Entrepot test tools:"
for name in docker-registry htpasswd skopeo podman containerd ctr nginx chromium wrk jq curl openssl psql \
  dockerd docker docker-compose debootstrap oci-conformance weed clair clairctl oras cosign helm \
  soci soci-snapshotter-grpc soci-pull containerd2 ctr2 busybox; do
  path="${TOOLS[$name]}"
  if [ -x "$path" ]; then
    printf '  %-16s %s\n' "$name" "$path"
  else
    printf '  %-16s MISSING (expected %s)\n' "$name" "$path"
    failed=1
  fi
done
[ "$failed" -eq 0 ] || die "some tools are missing"
