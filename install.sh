#!/usr/bin/env sh
# Builds Basalt from this checkout and installs the binary to ${PREFIX:-$HOME/.local}/bin.
set -eu
cd "$(dirname "$0")"
PREFIX="${PREFIX:-$HOME/.local}"
cargo build --release --locked --bin basalt
mkdir -p "$PREFIX/bin"
install -m 0755 "${CARGO_TARGET_DIR:-target}/release/basalt" "$PREFIX/bin/basalt"
echo "installed $PREFIX/bin/basalt"
