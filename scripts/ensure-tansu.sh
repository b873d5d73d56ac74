#!/usr/bin/env bash
# Makes sure a Tansu broker is installed and prints its path; an installed
# one is reused.
#
#   scripts/ensure-tansu.sh        the broker for tests and the demo: built
#                                  without optimisation (opt-level 0, 256
#                                  codegen units, no LTO, no debug info), about
#                                  4 minutes cold on two cores instead of 12-15;
#                                  every test passes against it. Installed in
#                                  $CARGO_HOME/bin (any tansu already on PATH is used).
#   scripts/ensure-tansu.sh bench  an optimised build (opt-level 3, no LTO,
#                                  16 codegen units) for `make bench-e2e`, whose
#                                  figures include the broker's CPU: installed
#                                  once in $CARGO_HOME/tansu-bench.
set -euo pipefail
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
version=0.6.0
case "${1:-quick}" in
  quick)
    if command -v tansu >/dev/null 2>&1; then command -v tansu; exit 0; fi
    echo "ensure-tansu: installing tansu $version (quick build, for tests and the demo)" >&2
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    CARGO_PROFILE_RELEASE_STRIP=true \
      cargo install tansu --locked --features dynostore --version "$version" >&2
    command -v tansu
    ;;
  bench)
    root="${CARGO_HOME:-$HOME/.cargo}/tansu-bench"
    if [ -x "$root/bin/tansu" ]; then echo "$root/bin/tansu"; exit 0; fi
    echo "ensure-tansu: installing an optimised tansu $version for the benchmark in $root (12-15 min cold)" >&2
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true \
      cargo install tansu --locked --features dynostore --version "$version" --root "$root" >&2
    echo "$root/bin/tansu"
    ;;
  *) echo "usage: $0 [quick|bench]" >&2; exit 2 ;;
esac
