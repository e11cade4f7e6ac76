/*
 * c_wasi_filter: Fluent Bit WASM filter functions written in C against
 * wasi-libc, built as a WASI reactor (exports _initialize, no _start). It
 * exports the libc malloc and free, so the host allocates the tag and record
 * buffers with the guest allocator (WAMR does the same when a module exports
 * both).
 *
 * Every filter function has the Fluent Bit signature
 *   char *fn(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
 *            char *record, int record_len)
 * i.e. wasm type (i32, i32, i32, i32, i32, i32) -> i32.
 * JSON mode: record is NUL-terminated JSON text, record_len excludes the NUL;
 * the result is a NUL-terminated string (0 or "" drops the record).
 * msgpack mode: record is the raw msgpack body map (no NUL); the result points
 * at one msgpack map.
 *
 * Results are malloc'd and never freed (the host never frees them either):
 * the instance leaks, as the upstream examples do.
 *
 * Build (from internal/wasmhost/wasmtest, see build.sh):
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *     -Wl,--export=malloc -Wl,--export=free \
 *     -Wl,--export=c_add_fields -Wl,--export=c_drop \
 *     -Wl,--export=c_invalid_json -Wl,--export=c_trap -Wl,--export=c_loop \
 *     -Wl,--export=c_memory_bomb -Wl,--export=c_leak \
 *     -Wl,--export=c_msgpack_passthrough -Wl,--export=c_echo \
 *     -Wl,--export=c_printf -Wl,--strip-debug \
 *     -o guests/c_wasi_filter.wasm src/c_wasi_filter/c_wasi_filter.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* copy_json returns a malloc'd NUL-terminated copy of the record_len bytes at
 * record (JSON mode), or NULL when malloc fails. */
static char *copy_json(const char *record, int record_len)
{
    char *out;

    if (record_len < 0) {
        return NULL;
    }
    out = malloc((size_t) record_len + 1);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out, record, (size_t) record_len);
    out[record_len] = '\0';
    return out;
}

/* contains reports whether needle occurs in the record_len bytes at record. */
static int contains(const char *record, int record_len, const char *needle)
{
    size_t n = strlen(needle);
    size_t len;
    size_t i;

    if (record_len < 0) {
        return 0;
    }
    len = (size_t) record_len;
    for (i = 0; i + n <= len; i++) {
        if (memcmp(record + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* c_add_fields (JSON mode) returns the record with "lang":"c" inserted as
 * its first key: {"lang":"c",<rest of the object>; {} becomes {"lang":"c"}.
 * A record that is not an object is returned unchanged. */
char *c_add_fields(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
                   char *record, int record_len)
{
    static const char field[] = "\"lang\":\"c\"";
    const size_t field_len = sizeof(field) - 1;
    size_t len;
    size_t open;
    size_t rest;
    size_t o;
    char *out;

    if (record_len < 0) {
        return NULL;
    }
    len = (size_t) record_len;

    /* leading whitespace, then '{' */
    open = 0;
    while (open < len && (record[open] == ' ' || record[open] == '\t' ||
                          record[open] == '\n' || record[open] == '\r')) {
        open++;
    }
    if (open >= len || record[open] != '{') {
        return copy_json(record, record_len);
    }

    /* first non-blank byte after '{': '}' means an empty object */
    rest = open + 1;
    while (rest < len && (record[rest] == ' ' || record[rest] == '\t' ||
                          record[rest] == '\n' || record[rest] == '\r')) {
        rest++;
    }

    /* '{' + field + ',' + rest + NUL */
    out = malloc(1 + field_len + 1 + (len - rest) + 1);
    if (out == NULL) {
        return NULL;
    }
    o = 0;
    out[o++] = '{';
    memcpy(out + o, field, field_len);
    o += field_len;
    if (rest < len && record[rest] != '}') {
        out[o++] = ',';
    }
    memcpy(out + o, record + rest, len - rest);
    o += len - rest;
    out[o] = '\0';
    return out;
}

/* c_drop returns NULL: every record is dropped. */
char *c_drop(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
             char *record, int record_len)
{
    return NULL;
}

/* c_invalid_json returns a string that is not JSON (the record is dropped
 * with an "invalid JSON format" error). */
char *c_invalid_json(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
                     char *record, int record_len)
{
    static char not_json[] = "not json {";
    return not_json;
}

/* c_trap traps (wasm unreachable) when the record contains "trap", else
 * returns a copy of the record. */
char *c_trap(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
             char *record, int record_len)
{
    if (contains(record, record_len, "trap")) {
        __builtin_trap();
    }
    return copy_json(record, record_len);
}

/* c_loop never returns when the record contains "loop" (the volatile counter
 * keeps the loop from being optimized away), else returns a copy. */
char *c_loop(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
             char *record, int record_len)
{
    volatile uint32_t counter = 0;

    if (contains(record, record_len, "loop")) {
        for (;;) {
            counter++;
        }
    }
    return copy_json(record, record_len);
}

/* c_memory_bomb allocates 1 MiB blocks and writes to every one of them until
 * malloc returns NULL (memory.grow refused by the host's cap), then frees them
 * all and returns a copy of the record. */
char *c_memory_bomb(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
                    char *record, int record_len)
{
    const size_t block = 1024 * 1024;
    void *head = NULL;
    void *p;

    for (;;) {
        p = malloc(block);
        if (p == NULL) {
            break;
        }
        memset(p, 0xAB, block);
        /* chain the blocks through their first word */
        *(void **) p = head;
        head = p;
    }
    while (head != NULL) {
        p = *(void **) head;
        free(head);
        head = p;
    }
    return copy_json(record, record_len);
}

/* leaked holds the last c_leak block: storing it through a volatile keeps
 * the compiler from removing the malloc and memset as dead code. */
static void *volatile leaked;

/* c_leak allocates and fills 64 KiB that it never frees, then returns a
 * malloc'd copy of the record (never freed either). */
char *c_leak(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
             char *record, int record_len)
{
    const size_t size = 64 * 1024;
    void *p = malloc(size);

    if (p != NULL) {
        memset(p, 0x5A, size);
        leaked = p;
    }
    return copy_json(record, record_len);
}

/* c_msgpack_passthrough (msgpack mode) returns a malloc'd copy of the
 * record_len bytes of the record: binary safe, the msgpack may contain 0x00
 * bytes and is not NUL-terminated. */
char *c_msgpack_passthrough(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
                            char *record, int record_len)
{
    char *out;

    if (record_len <= 0) {
        return NULL;
    }
    out = malloc((size_t) record_len);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out, record, (size_t) record_len);
    return out;
}

/* c_echo (JSON mode) returns a malloc'd NUL-terminated copy of the record. */
char *c_echo(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
             char *record, int record_len)
{
    return copy_json(record, record_len);
}

/* c_printf writes "hello from c <tag>\n" to stdout (WASI fd 1, flushed at
 * once: a reactor never exits) and returns a copy of the record. */
char *c_printf(char *tag, int tag_len, uint32_t sec, uint32_t nsec,
               char *record, int record_len)
{
    printf("hello from c %s\n", tag);
    fflush(stdout);
    return copy_json(record, record_len);
}
