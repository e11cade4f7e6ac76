#!/bin/sh
# Rebuilds the committed test guest from testdata/src (Go 1.26, GOOS=wasip1,
# -buildmode=c-shared). CI does not run this; commit the .wasm.
set -eu
cd "$(dirname "$0")/.."
GO="${GO:-go}"
GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -buildvcs=false \
	-ldflags='-s -w' -o testdata/seqexp.wasm ./testdata/src/seqexp
chmod 644 testdata/seqexp.wasm
ls -l testdata/seqexp.wasm
