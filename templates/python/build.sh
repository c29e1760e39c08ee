#!/bin/sh
# Builds {{name}}.wasm from app.py with componentize-py, pinned below. The
# first build installs it (with pip, in a virtual environment) in the tools
# directory, $EJ_TOOLS or ~/.cache/ej-tools, shared by every project; later
# builds take about 10 s.
set -eu
cd "$(dirname "$0")"
version=0.25.1
tools="${EJ_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ej-tools}/py"
if ! "$tools/bin/componentize-py" --version 2>/dev/null | grep -q "$version"; then
  echo "installing componentize-py $version under $tools (once)"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$version"
fi
"$tools/bin/componentize-py" -d wit -w handler componentize app -o {{name}}.wasm
echo "built {{name}}.wasm"
