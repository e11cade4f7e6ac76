/*
 * Test guests with imports Floe refuses (Fluent Bit filter signature).
 *
 * unknown_import.wasm imports env.floe_no_such_function:
 *   clang --target=wasm32 -nostdlib -O2 -DUNKNOWN -Wl,--no-entry -Wl,--allow-undefined \
 *     -Wl,--export=filter -Wl,--strip-debug -o unknown_import.wasm bad_imports.c
 * wrong_sig_import.wasm imports env.strlen with type (i32,i32)->i32:
 *   clang --target=wasm32 -nostdlib -O2 -DWRONGSIG -Wl,--no-entry -Wl,--allow-undefined \
 *     -Wl,--export=filter -Wl,--strip-debug -o wrong_sig_import.wasm bad_imports.c
 */
#ifdef UNKNOWN
extern int floe_no_such_function(const char *s);
#define CALL(s) floe_no_such_function(s)
#endif
#ifdef WRONGSIG
extern int strlen(const char *s, int extra);
#define CALL(s) strlen(s, 1)
#endif

char *filter(char *tag, int tag_len, unsigned sec, unsigned nsec, char *record, int record_len)
{
    if (CALL(record) < 0) {
        return 0;
    }
    return record;
}
