/*
 * wasi_trap: a WASI command that writes "before trap\n" to stdout, flushes
 * it, then traps (wasm unreachable).
 *
 * Build (from internal/wasmhost/wasmtest, see build.sh):
 *   clang --target=wasm32-wasi -O2 -Wl,--strip-debug \
 *     -o guests/wasi_trap.wasm src/wasi_trap/wasi_trap.c
 */
#include <stdio.h>

int main(void)
{
    printf("before trap\n");
    fflush(stdout);
    __builtin_trap();
}
