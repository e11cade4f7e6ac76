/*
 * c_filter_nostdlib: Fluent Bit's examples/filter_wasm_c/c_filter.c reproduced
 * (function c_filter, JSON mode). Built without a libc: malloc, sprintf and
 * printf are left undefined and become imports from module "env", which
 * Fluent Bit's WAMR libc-builtin (and Floe's wasmhost) supply.
 *
 * Upstream builds it with wasi-sdk clang (default target wasm32-wasi, so the
 * wasi-libc headers are used for declarations only) and -O3; clang then
 * rewrites printf("...\n") into puts(), so the upstream binary imports
 * env.puts. -fno-builtin-printf keeps the call as printf, which gives the
 * import set env.malloc, env.printf, env.sprintf.
 *
 * Build (from internal/wasmhost/wasmtest, see build.sh):
 *   clang --target=wasm32-wasi -O3 -nostdlib -fno-builtin-printf \
 *     -z stack-size=8192 -Wl,--initial-memory=65536 \
 *     -o guests/c_filter_nostdlib.wasm src/c_filter_nostdlib/c_filter.c \
 *     -Wl,--export=__heap_base -Wl,--export=__data_end -Wl,--export=c_filter \
 *     -Wl,--no-entry -Wl,--strip-all -Wl,--allow-undefined
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

char* c_filter(char* tag, int len, uint32_t sec, uint32_t nsec, char* record, int record_len)
{
    char *buf;
    buf = malloc(1024);
    if (!buf) {
        printf("malloc buf failed\n");
        return NULL;
    }

    struct timespec ts;
    ts.tv_sec = sec;
    ts.tv_nsec = nsec;

    sprintf(buf, "{\"tag\":\"%s\",\"time\":\"%lld.%9ld\", \"message\":\"Hello, from C!\", \"original\": %s}",
            tag, (long long)ts.tv_sec, ts.tv_nsec, record);
    return buf;
}
