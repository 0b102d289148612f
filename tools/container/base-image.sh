#!/bin/sh
# Builds the stand-in for docker.io/library/python:3.11-slim once (skipped when the image exists):
# debootstrap's minimal bookworm -> podman import -> base.Containerfile (Python, the host's CA bundle).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
podman="$here/podman"
base=docker.io/library/python:3.11-slim
if "$podman" image exists "$base"; then
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "debootstrap is not installed: run \`make install-debian\`" >&2; exit 127; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! "$podman" image exists localhost/debian-base:bookworm; then
  debootstrap --variant=minbase bookworm "$work/root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2; echo "debootstrap failed (log above)" >&2; exit 1; }
  # What Debian's slim images leave out, taken out before the import (a later layer cannot make it smaller).
  root="$work/root"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
  tar -C "$work/root" -c . | "$podman" import --quiet - localhost/debian-base:bookworm >/dev/null
  rm -rf "$work/root"
fi
cp "$here/base.Containerfile" "$work/Containerfile"
cp /etc/ssl/certs/ca-certificates.crt "$work/ca-certificates.crt"
"$podman" build --pull=never -t "$base" "$work" >"$work/build.log" 2>&1 || {
  tail -20 "$work/build.log" >&2; echo "building $base failed (log above)" >&2; exit 1; }
echo "built the stand-in $base"
