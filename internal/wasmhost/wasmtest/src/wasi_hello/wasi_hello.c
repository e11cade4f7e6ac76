/*
 * wasi_hello: a WASI command (exports _start) for the exec_wasi input. It
 * writes to stdout the lines "line 1", "line 2", "line 3", one line of 10,000
 * 'x' characters, and a final "last" without a newline, then exits 0.
 *
 * Build (from internal/wasmhost/wasmtest, see build.sh):
 *   clang --target=wasm32-wasi -O2 -Wl,--strip-debug \
 *     -o guests/wasi_hello.wasm src/wasi_hello/wasi_hello.c
 */
#include <stdio.h>
#include <string.h>

static char xs[10000 + 1];

int main(void)
{
    printf("line 1\n");
    printf("line 2\n");
    printf("line 3\n");
    memset(xs, 'x', sizeof(xs) - 1);
    xs[sizeof(xs) - 1] = '\0';
    printf("%s\n", xs);
    printf("last");
    fflush(stdout);
    return 0;
}
