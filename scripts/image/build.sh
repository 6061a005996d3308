#!/usr/bin/env bash
# `npm run image`: builds Entrepot's container image from the root Dockerfile
# with the Docker CLI against $DOCKER_HOST (or the CLI's default daemon).
#
#   npm run image                       # tags entrepot:local
#   IMAGE=registry.corp/entrepot:1.2 npm run image
#
# The base is the official Node 20 image (the Dockerfile's NODE_IMAGE). When
# the daemon neither has it nor can pull it (no route to Docker Hub), the
# script assembles a stand-in from this machine's Debian and Node with
# scripts/image/local-base.sh and builds on that. Environment:
#   IMAGE        tag to build (default entrepot:local)
#   NODE_IMAGE   base image to use as is (skips the pull and the fallback)
#   DOCKER       the Docker CLI (default docker)
#   ENTREPOT_BASE_REFRESH=1   assemble the local base again instead of reusing it
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGE="${IMAGE:-entrepot:local}"
DOCKER="${DOCKER:-docker}"
OFFICIAL_BASE="$(sed -n 's/^ARG NODE_IMAGE=//p' "$ROOT/Dockerfile")"
LOCAL_BASE=entrepot-base:node20

log() { printf '[image] %s\n' "$*" >&2; }

base="${NODE_IMAGE:-}"
if [ -z "$base" ]; then
  if "$DOCKER" image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 || "$DOCKER" pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    base="$OFFICIAL_BASE"
  elif "$DOCKER" image inspect "$LOCAL_BASE" >/dev/null 2>&1 && [ "${ENTREPOT_BASE_REFRESH:-0}" != "1" ]; then
    log "$OFFICIAL_BASE cannot be pulled: using $LOCAL_BASE, assembled earlier on this machine"
    base="$LOCAL_BASE"
  else
    log "$OFFICIAL_BASE cannot be pulled: assembling a local base from this machine's Debian and Node"
    base="$(DOCKER="$DOCKER" bash "$ROOT/scripts/image/local-base.sh" "$LOCAL_BASE")"
  fi
fi

version="$(node -p "require('$ROOT/package.json').version")"
revision="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
log "building $IMAGE on $base"
started=$SECONDS
# BuildKit: instructions that only change metadata cost nothing (the classic
# builder copies the whole tree for each of them under storage drivers without
# copy-on-write, such as vfs).
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-1}" "$DOCKER" build --network host --progress plain \
  --build-arg "NODE_IMAGE=$base" \
  --build-arg "VERSION=$version" \
  --build-arg "REVISION=$revision" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --tag "$IMAGE" "$ROOT"
size="$("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE")"
log "built $IMAGE in $((SECONDS - started)) s, $((size / 1000000)) MB"
