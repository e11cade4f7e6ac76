#!/bin/sh
# Rebuilds the committed WASM test guests in guests/ from the sources in src/.
# CI does not run this (it has no clang): the .wasm files are committed and
# embedded by package wasmtest. Run it after changing a source, then commit the
# .wasm files with the source.
#
# Toolchain used for the committed files:
#   Debian clang 14.0.6 + wasm-ld 14 (lld), wasi-libc 0.0~git20220510.9886d3d
#   (headers /usr/include/wasm32-wasi, libs /usr/lib/wasm32-wasi),
#   libclang-rt-14-dev-wasm32 (libclang_rt.builtins-wasm32.a), Go 1.26.
# Override the tools with CLANG=... GO=... if needed.
set -eu

cd "$(dirname "$0")"
CLANG="${CLANG:-clang}"
GO="${GO:-go}"
mkdir -p guests

# 1. c_filter_nostdlib: upstream examples/filter_wasm_c, no libc, imports
#    env.malloc / env.printf / env.sprintf (flags of the upstream Makefile,
#    plus -fno-builtin-printf so printf is not turned into puts).
"$CLANG" --target=wasm32-wasi -O3 -nostdlib -fno-builtin-printf \
	-z stack-size=8192 -Wl,--initial-memory=65536 \
	-o guests/c_filter_nostdlib.wasm src/c_filter_nostdlib/c_filter.c \
	-Wl,--export=__heap_base -Wl,--export=__data_end -Wl,--export=c_filter \
	-Wl,--no-entry -Wl,--strip-all -Wl,--allow-undefined

# 2. c_wasi_filter: wasi-libc reactor exporting malloc/free and the c_* filters.
"$CLANG" --target=wasm32-wasi -O2 -mexec-model=reactor \
	-Wl,--export=malloc -Wl,--export=free \
	-Wl,--export=c_add_fields -Wl,--export=c_drop \
	-Wl,--export=c_invalid_json -Wl,--export=c_trap -Wl,--export=c_loop \
	-Wl,--export=c_memory_bomb -Wl,--export=c_leak \
	-Wl,--export=c_msgpack_passthrough -Wl,--export=c_echo \
	-Wl,--export=c_printf -Wl,--strip-debug \
	-o guests/c_wasi_filter.wasm src/c_wasi_filter/c_wasi_filter.c

# 3. go_filter: Go wasip1 reactor (-buildmode=c-shared, //go:wasmexport).
GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -buildvcs=false \
	-ldflags='-s -w' -o guests/go_filter.wasm ./src/go_filter

# 4. wasi_hello: WASI command (_start) for exec_wasi.
"$CLANG" --target=wasm32-wasi -O2 -Wl,--strip-debug \
	-o guests/wasi_hello.wasm src/wasi_hello/wasi_hello.c

# 5. wasi_json: Go wasip1 command, like upstream examples/wasi_serde_json.
GOOS=wasip1 GOARCH=wasm "$GO" build -trimpath -buildvcs=false \
	-ldflags='-s -w' -o guests/wasi_json.wasm ./src/wasi_json

# 6. wasi_exit_nonzero, wasi_trap: WASI commands that exit 3 / trap.
"$CLANG" --target=wasm32-wasi -O2 -Wl,--strip-debug \
	-o guests/wasi_exit_nonzero.wasm src/wasi_exit_nonzero/wasi_exit_nonzero.c
"$CLANG" --target=wasm32-wasi -O2 -Wl,--strip-debug \
	-o guests/wasi_trap.wasm src/wasi_trap/wasi_trap.c

# 7. not_wasm: not a WASM module at all.
printf 'this is not wasm\n' > guests/not_wasm.wasm

chmod 644 guests/*.wasm
ls -l guests
