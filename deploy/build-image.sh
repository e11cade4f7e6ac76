#!/bin/sh
# Build Floe's container image (deploy/Dockerfile) from a static binary compiled on this host.
#
#   deploy/build-image.sh [IMAGE]          default floe:dev (or $IMAGE)
#
# Environment: GO (go), DOCKER (docker), GOARCH (the Go default), VERSION (sets `floe version`),
# CA_BUNDLE (the CA certificates to ship; default: the first of the usual system paths).
# Nothing is pulled from a registry: the image is FROM scratch.
set -eu

image=${1:-${IMAGE:-floe:dev}}
go=${GO:-go}
docker=${DOCKER:-docker}
root=$(cd "$(dirname "$0")/.." && pwd)

ca=${CA_BUNDLE:-}
if [ -z "$ca" ]; then
	for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
		if [ -r "$f" ]; then
			ca=$f
			break
		fi
	done
fi
if [ -z "$ca" ] || [ ! -r "$ca" ]; then
	echo "build-image: no CA bundle found; set CA_BUNDLE=/path/to/ca-certificates.crt" >&2
	exit 1
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/floe-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
trap 'exit 130' INT TERM

ldflags="-s -w"
if [ -n "${VERSION:-}" ]; then
	ldflags="$ldflags -X github.com/floe-io/floe/internal/app.Version=$VERSION"
fi
(cd "$root" && CGO_ENABLED=0 GOOS=linux "$go" build -trimpath -ldflags "$ldflags" -o "$ctx/floe" ./cmd/floe)
cp "$ca" "$ctx/ca-certificates.crt"
cp "$root/examples/dummy-stdout.conf" "$ctx/floe.conf"
mkdir "$ctx/data"
old=$("$docker" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
"$docker" build --quiet -f "$root/deploy/Dockerfile" -t "$image" "$ctx" >/dev/null
new=$("$docker" image inspect --format '{{.Id}}' "$image")
# The image the tag pointed to before is left untagged: remove it unless a container or another
# tag still uses it (docker refuses then, and it stays).
if [ -n "$old" ] && [ "$old" != "$new" ]; then
	"$docker" image rm "$old" >/dev/null 2>&1 || true
fi
echo "built $image ($new)"
