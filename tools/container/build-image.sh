#!/bin/sh
# `make image`: the stand-in base (once), then the project image exactly as production builds it from the
# Dockerfile (wrangler deploy builds the same file with the same context), tagged ${IMAGE:-dlt-dagster}.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
"$here/base-image.sh"
exec "$here/podman" build --pull=never --platform linux/amd64 -t "${IMAGE:-dlt-dagster}" -f "$root/Dockerfile" "$root"
