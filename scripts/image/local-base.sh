#!/usr/bin/env bash
# Assembles a Node 20 base image from this machine's own Debian release and
# Node installation, for building Entrepot's image where the official
# `node:20-bookworm-slim` cannot be pulled (no Docker Hub). `npm run image`
# runs it by itself in that case; the result plays the same role: Debian with
# `node` and `npm` on the PATH and Node's headers under the same prefix.
#
#   scripts/image/local-base.sh [TAG]     default TAG: entrepot-base:node20
#
# The root filesystem is a minimal Debian (`debootstrap --variant=minbase`,
# same release and mirror as the host's apt sources) plus the host's Node
# (its binary, npm and headers) and the host's locally added CA certificates. It is cached as a tarball in
# $ENTREPOT_IMAGE_CACHE (default /var/cache/entrepot-tools/images), keyed by
# release, architecture and Node version, so only the first run downloads
# anything; ENTREPOT_BASE_REFRESH=1 rebuilds it. Needs root and debootstrap
# (scripts/ci/setup.sh installs it). DOCKER names the Docker CLI (default
# `docker`, against $DOCKER_HOST).
set -euo pipefail

TAG="${1:-entrepot-base:node20}"
DOCKER="${DOCKER:-docker}"
CACHE_DIR="${ENTREPOT_IMAGE_CACHE:-${ENTREPOT_TOOLS_DIR:-/var/cache/entrepot-tools}/images}"

log() { printf '[local-base] %s\n' "$*" >&2; }
die() { printf '[local-base] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap, or run scripts/ci/setup.sh)"
NODE_BIN="$(readlink -f "$(command -v node)")" || die "node is not on the PATH"
NODE_VERSION="$("$NODE_BIN" -p 'process.versions.node')"
case "$NODE_VERSION" in 20.*) ;; *) die "this machine's Node is $NODE_VERSION; the image needs Node 20" ;; esac
# The prefix Node was installed under: bin/node, lib/node_modules/npm, include/node.
NODE_PREFIX="$(dirname "$(dirname "$NODE_BIN")")"
[ -d "$NODE_PREFIX/lib/node_modules/npm" ] || die "npm not found under $NODE_PREFIX/lib/node_modules"
[ -f "$NODE_PREFIX/include/node/node.h" ] || die "Node's headers not found under $NODE_PREFIX/include/node (native modules build against them)"

# shellcheck source=/dev/null
SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
[ -n "$SUITE" ] || die "cannot tell the Debian release from /etc/os-release"
ARCH="$(dpkg --print-architecture)"
# The first Debian mirror of the host's apt sources (deb822 or one-line format).
MIRROR="${DEBIAN_MIRROR:-$({ grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true; } | head -n 1 | tr -d ' ')}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

TARBALL="$CACHE_DIR/debian-$SUITE-$ARCH-node$NODE_VERSION.tar"
if [ ! -s "$TARBALL" ] || [ "${ENTREPOT_BASE_REFRESH:-0}" = "1" ]; then
  mkdir -p "$CACHE_DIR"
  work="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  rootfs="$work/rootfs"
  log "debootstrap $SUITE ($ARCH) from $MIRROR (log: $work/debootstrap.log)"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

  log "adding Node $NODE_VERSION from $NODE_PREFIX"
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules" "$rootfs/usr/local/include"
  cp -a "$NODE_BIN" "$rootfs/usr/local/bin/node"
  cp -a "$NODE_PREFIX/lib/node_modules/npm" "$rootfs/usr/local/lib/node_modules/npm"
  cp -a "$NODE_PREFIX/include/node" "$rootfs/usr/local/include/node"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # Same layout as the official image: node, npm and headers under /usr/local.
  chroot "$rootfs" /usr/local/bin/node -e 'process.exit(process.versions.node === process.argv[1] ? 0 : 1)' "$NODE_VERSION" ||
    die "the copied node does not run inside the Debian root (a library it links against is missing)"

  # Smaller image: no downloaded packages, package lists or documentation.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/*
  tar -C "$rootfs" --numeric-owner -cf "$TARBALL.tmp" .
  mv -f "$TARBALL.tmp" "$TARBALL"
  rm -rf "$work"
  trap - EXIT
else
  log "using the cached root filesystem $TARBALL"
fi

# The host's locally added CA certificates (Debian's /usr/local/share/ca-certificates),
# so that npm and apt inside the build trust what this machine trusts (a TLS
# proxy in front of the registries, say); NODE_EXTRA_CA_CERTS makes Node (npm
# included) read the system bundle. Added at each import, not cached.
import_tar="$TARBALL"
extra_cas=(/usr/local/share/ca-certificates/*.crt)
if [ -e "${extra_cas[0]}" ]; then
  work="$(mktemp -d "$CACHE_DIR/import.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  mkdir "$work/rootfs"
  tar -C "$work/rootfs" -xf "$TARBALL"
  mkdir -p "$work/rootfs/usr/local/share/ca-certificates"
  cp "${extra_cas[@]}" "$work/rootfs/usr/local/share/ca-certificates/"
  chroot "$work/rootfs" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the Debian root"
  log "added ${#extra_cas[@]} local CA certificate(s) from /usr/local/share/ca-certificates"
  tar -C "$work/rootfs" --numeric-owner -cf "$work/rootfs.tar" .
  import_tar="$work/rootfs.tar"
fi

log "importing the root filesystem as $TAG"
"$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  --message "Debian $SUITE with Node $NODE_VERSION, assembled by scripts/image/local-base.sh" \
  "$import_tar" "$TAG" >/dev/null
echo "$TAG"
