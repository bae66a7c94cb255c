#!/usr/bin/env bash
# Release artifacts in dist/: a static x86_64 Linux binary (musl when that
# target installs here, else glibc with crt-static) and a .deb of it.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p dist

target=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  rustup target add "$target" >/dev/null 2>&1 || target=
fi
if [ -n "$target" ] && cargo build --quiet --release --locked --target "$target"; then
  kind=musl
else
  target=x86_64-unknown-linux-gnu
  kind=glibc-static
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked --target "$target"
fi
bin=target/$target/release/guarded-restart
cp "$bin" "dist/guarded-restart-$version-x86_64-linux"
echo "static binary ($kind): dist/guarded-restart-$version-x86_64-linux"
file "$bin" | sed 's/^[^:]*: /  /'

if ! command -v cargo-deb >/dev/null; then
  cargo install --quiet --locked cargo-deb
fi
deb=$(cargo deb --no-build --target "$target" --output dist 2>/dev/null | tail -1)
echo "debian package: $deb"
