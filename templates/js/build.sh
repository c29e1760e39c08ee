#!/bin/sh
# Builds {{name}}.wasm from counter.js with componentize-js, as pinned by
# toolchain/package-lock.json. The first build installs it (with npm) in the
# tools directory, $EJ_TOOLS or ~/.cache/ej-tools, shared by every project;
# later builds take about 15 s.
set -eu
cd "$(dirname "$0")"
tools="${EJ_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ej-tools}/js"
if ! cmp -s toolchain/package-lock.json "$tools/package-lock.json" ||
  [ ! -f "$tools/node_modules/.package-lock.json" ]; then
  echo "installing componentize-js under $tools (once)"
  mkdir -p "$tools"
  cp toolchain/package.json toolchain/package-lock.json "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
fi
cp toolchain/build.mjs "$tools/build.mjs"
node "$tools/build.mjs" counter.js wit {{name}}.wasm
echo "built {{name}}.wasm"
