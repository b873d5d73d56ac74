#!/usr/bin/env bash
# Makes sure a Tansu broker is installed and prints its path; an installed
# one is reused.
#
#   scripts/ensure-tansu.sh        the demo's broker: built without optimisation
#                                  (opt-level 0, 256 codegen units, no LTO, no
#                                  debug info), about 4 minutes cold on two cores
#                                  instead of 12-15, so a first `make demo` takes
#                                  under 10 minutes. Installed in $CARGO_HOME/bin
#                                  (any tansu already on PATH is used).
#   scripts/ensure-tansu.sh full   an optimised build (opt-level 3, no LTO, 16
#                                  codegen units) for `make test` and `make
#                                  bench-e2e`: the benchmark's figures include
#                                  the broker's CPU, and under the test suite's
#                                  load the unoptimised build once committed a
#                                  consumer offset no instance had stored (a
#                                  killed instance's partition resumed 400
#                                  messages late). Installed once in
#                                  $CARGO_HOME/tansu-full.
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
  full)
    root="${CARGO_HOME:-$HOME/.cargo}/tansu-full"
    if [ -x "$root/bin/tansu" ]; then echo "$root/bin/tansu"; exit 0; fi
    echo "ensure-tansu: installing an optimised tansu $version for tests and benchmarks in $root (12-15 min cold)" >&2
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true \
      cargo install tansu --locked --features dynostore --version "$version" --root "$root" >&2
    echo "$root/bin/tansu"
    ;;
  *) echo "usage: $0 [quick|full]" >&2; exit 2 ;;
esac
