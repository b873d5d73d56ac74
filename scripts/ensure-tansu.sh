#!/usr/bin/env bash
# Makes sure the Tansu broker is installed; a cold build takes about 18
# minutes, so an installed one is reused.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
if command -v tansu >/dev/null 2>&1; then exit 0; fi
echo "ensure-tansu: installing tansu (cargo install, ~18 minutes cold)" >&2
cargo install tansu --locked --features dynostore --version 0.6.0 >&2
