/*
 * wasi_exit_nonzero: a WASI command that writes "partial\n" to stdout and
 * exits with status 3 (WASI proc_exit(3)).
 *
 * Build (from internal/wasmhost/wasmtest, see build.sh):
 *   clang --target=wasm32-wasi -O2 -Wl,--strip-debug \
 *     -o guests/wasi_exit_nonzero.wasm src/wasi_exit_nonzero/wasi_exit_nonzero.c
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    printf("partial\n");
    fflush(stdout);
    exit(3);
}
