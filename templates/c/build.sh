#!/bin/sh
# Builds {{name}}.wasm from counter.c: C bindings from wit/ by wit-bindgen,
# compiled by clang into a core module, made a component by wasm-tools (both
# pinned below). The first build installs the two tools (cargo install, from
# source: about nine minutes on two cores) in the tools directory, $EJ_TOOLS
# or ~/.cache/ej-tools, shared by every project; later builds take a second.
# clang, its wasm linker and the WASI libc come from your system: on Debian 12,
# apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
set -eu
cd "$(dirname "$0")"
wit_bindgen=0.61.1
wasm_tools=1.263.0
clang=clang-19
tools="${EJ_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ej-tools}"

# install CRATE VERSION BINARY FEATURE: cargo install, unless already there.
install() {
  if ! "$tools/bin/$3" --version 2>/dev/null | grep -q "$2"; then
    echo "installing $1 $2 under $tools (once: a few minutes)"
    (unset CARGO_TARGET_DIR; cargo install --locked --force --root "$tools" --version "$2" \
      --no-default-features --features "$4" "$1")
  fi
}
install wit-bindgen-cli "$wit_bindgen" wit-bindgen c
install wasm-tools "$wasm_tools" wasm-tools component
command -v "$clang" >/dev/null || {
  echo "$clang is missing: apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32" >&2
  exit 1
}

"$tools/bin/wit-bindgen" c wit --world handler --out-dir gen
"$clang" --target=wasm32-wasi -mexec-model=reactor -O2 -s -Wall -Wextra -Werror \
  -I gen -o gen/core.wasm counter.c gen/handler.c gen/handler_component_type.o
"$tools/bin/wasm-tools" component new gen/core.wasm -o {{name}}.wasm
echo "built {{name}}.wasm"
