#!/bin/sh
# Rebuilds the committed example modules (<name>/<name>.wasm) from their
# sources with the Go toolchain (Go 1.24+, no TinyGo):
#   GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags="-s -w" -o <name>/<name>.wasm ./<name>
set -eu
cd "$(dirname "$0")"
GO="${GO:-go}"
for d in */; do
	n="${d%/}"
	[ -f "$n/main.go" ] || continue
	GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -ldflags="-s -w" -o "$n/$n.wasm" "./$n"
done
