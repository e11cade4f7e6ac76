#!/bin/sh
# Build the plugin-capable image (deploy/Dockerfile.plugins): floe (static), floe-plugin-host
# and the example fluent-bit-go plugin compiled here, with the C runtime they link against copied
# from this host (ldd), since the scratch image has none and no image can be pulled.
#
#   deploy/build-image-plugins.sh [IMAGE]     default floe:plugins
set -eu
image=${1:-floe:plugins}
go=${GO:-go}
docker=${DOCKER:-docker}
cc=${CC:-gcc}
root=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d "${TMPDIR:-/tmp}/floe-image-plugins.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
fs=$ctx/rootfs
mkdir -p "$fs/etc/floe" "$fs/etc/ssl/certs" "$ctx/data"

(cd "$root" && CGO_ENABLED=0 "$go" build -trimpath -ldflags "-s -w" -o "$fs/floe" ./cmd/floe)
"$cc" -O2 -Wall -o "$fs/floe-plugin-host" "$root/internal/goplugin/host/floe-plugin-host.c" -ldl -lpthread
(cd "$root/examples/plugins/out_gstdout" && GOWORK=off CGO_ENABLED=1 "$go" build -buildmode=c-shared -o "$fs/etc/floe/out_gstdout.so" .)
rm -f "$fs/etc/floe/out_gstdout.h"

# The loader and every library the helper and the plugin need, at the same paths as here.
for bin in "$fs/floe-plugin-host" "$fs/etc/floe/out_gstdout.so"; do
	ldd "$bin" | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do
	[ -n "$lib" ] || continue
	mkdir -p "$fs$(dirname "$lib")"
	cp -L "$lib" "$fs$lib"
done

for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
	if [ -r "$f" ]; then cp "$f" "$fs/etc/ssl/certs/ca-certificates.crt"; break; fi
done
cp "$root/deploy/compose/plugins.conf" "$fs/etc/floe/floe.conf"
printf '[PLUGINS]\n    Path /etc/floe/out_gstdout.so\n' >"$fs/etc/floe/plugins.conf"
cp "$root/deploy/Dockerfile.plugins" "$ctx/Dockerfile"
"$docker" build -t "$image" "$ctx"
echo "built $image"
