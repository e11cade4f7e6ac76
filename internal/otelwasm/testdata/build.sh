#!/bin/sh
# Rebuilds the committed OTelWasm test guests from testdata/src (Go 1.26,
# GOOS=wasip1, -buildmode=c-shared). CI does not run this; commit the .wasm.
set -eu
cd "$(dirname "$0")/.."
GO="${GO:-go}"
for g in attrproc nomarker recvexp recvsig legacy v1prefix; do
	GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -buildvcs=false \
		-ldflags='-s -w' -o testdata/$g.wasm ./testdata/src/$g
done
chmod 644 testdata/*.wasm
ls -l testdata/*.wasm
