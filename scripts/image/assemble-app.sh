#!/bin/sh
# Copies what Entrepot needs at run time from a built checkout (SRC, after
# `npm prune --omit=dev`) into DEST, with the checkout's layout, so the
# launcher, the plugin lookup (`@entrepot/proxy-cache`), the bundled feature
# flags and the web UI are found where the code expects them. The Dockerfile's
# build stage runs it; nothing else is copied into the image.
#
#   sh scripts/image/assemble-app.sh SRC DEST
set -eu

src="$1"
dest="$2"
mkdir -p "$dest"
cp -a "$src/package.json" "$src/package-lock.json" "$src/feature-flags.json" "$dest/"
cp -a "$src/node_modules" "$dest/node_modules"
for pkg in registry-core proxy-cache web-ui; do
  mkdir -p "$dest/packages/$pkg"
  cp -a "$src/packages/$pkg/package.json" "$src/packages/$pkg/dist" "$dest/packages/$pkg/"
  if [ -d "$src/packages/$pkg/node_modules" ]; then
    cp -a "$src/packages/$pkg/node_modules" "$dest/packages/$pkg/"
  fi
done
cp -a "$src/packages/registry-core/bin" "$dest/packages/registry-core/"
find "$dest/packages" -name '*.tsbuildinfo' -delete

# better-sqlite3 needs only its JavaScript and the compiled addon at run time:
# not the bundled SQLite sources or the compiler's object files.
sqlite="$dest/node_modules/better-sqlite3"
if [ -d "$sqlite/build/Release" ]; then
  rm -rf "$sqlite/deps" "$sqlite/src" "$sqlite/build/Release/obj" "$sqlite/build/Release/obj.target" \
    "$sqlite/build/Release/.deps" "$sqlite/build/deps" "$sqlite/build/Release/test_extension.node"
fi
# The addon must load in this Node: fail the build, not the first start.
(cd "$dest" && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()")
