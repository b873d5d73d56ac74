#!/usr/bin/env bash
# Makes sure the Tansu broker is installed; an installed one is reused.
# A test broker needs no link-time optimisation: the lighter release profile
# below (no LTO, parallel codegen, no debug info) roughly halves the cold
# build on two cores.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
if command -v tansu >/dev/null 2>&1; then exit 0; fi
echo "ensure-tansu: installing tansu (cargo install, light release profile)" >&2
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_STRIP=true \
  cargo install tansu --locked --features dynostore --version 0.6.0 >&2
