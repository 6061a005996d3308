# Entrepot's container image (docs/deployment.md).
#
#   npm run image                                  # entrepot:local (scripts/image/build.sh)
#   docker build --network host -t entrepot .      # by hand
#
# Two stages on one base: `build` installs every dependency, compiles the
# TypeScript packages and the web UI, then drops the dev dependencies; the
# runtime stage gets the result and nothing else (no compiler, no sources).
# `--network host` lets npm reach the registry where the build containers'
# default network has no route out.
#
# NODE_IMAGE is any Debian-based Node 20 image with node, npm and Node's
# headers under /usr/local: the official one by default, or the stand-in that
# scripts/image/local-base.sh assembles where Docker Hub is out of reach.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
# One RUN, so the build stage is one layer over the sources (storage drivers
# without copy-on-write, like vfs, copy the whole tree for every layer).
# better-sqlite3 compiles against the base's own Node headers when no prebuilt
# binary can be downloaded, so the toolchain is installed when missing.
RUN set -eu; \
    if ! command -v g++ >/dev/null || ! command -v make >/dev/null || ! command -v python3 >/dev/null; then \
      apt-get update; \
      apt-get install -y --no-install-recommends python3 make g++; \
    fi; \
    npm_config_nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"; \
    export npm_config_nodedir; \
    npm ci --no-audit --no-fund --loglevel=error; \
    npx tsc -b packages/registry-core packages/proxy-cache; \
    npm run build -w @entrepot/web-ui; \
    npm prune --omit=dev --no-audit --no-fund --loglevel=error; \
    sh scripts/image/assemble-app.sh /src /app

FROM ${NODE_IMAGE}
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="Entrepot" \
      org.opencontainers.image.description="A container registry whose organizations can act as pull-through caches" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.documentation="docs/deployment.md"

# A fixed unprivileged user; /data belongs to it so a new named volume does too.
RUN groupadd --system --gid 10001 entrepot \
 && useradd --system --uid 10001 --gid entrepot --home-dir /data --no-create-home --shell /usr/sbin/nologin entrepot \
 && mkdir -p /data \
 && chown entrepot:entrepot /data
COPY --from=build /app /app

# The environment contract of the README: the embedded backends under /data
# unless ENTREPOT_DATABASE_URL / ENTREPOT_REDIS_URL / ENTREPOT_S3_* say otherwise.
ENV NODE_ENV=production \
    ENTREPOT_HOST=0.0.0.0 \
    PORT=5000 \
    ENTREPOT_DATA_DIR=/data
WORKDIR /app
USER entrepot:entrepot
VOLUME ["/data"]
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 5000) + '/health/instance').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/packages/registry-core/bin/entrepot-server"]
