/*
 * floe-plugin-host: runs one fluent-bit-go output plugin (a Go c-shared .so)
 * for Floe. A Go process cannot dlopen another Go runtime, so Floe starts this
 * small C program, which loads the .so and gives it the C API Fluent Bit's Go
 * proxy gives it (src/proxy/go/go.c, flb_plugin_proxy.h, flb_api.h: see
 * spec/fluentbit.md §3), for any number of output instances.
 *
 * Floe talks to it over two inherited descriptors: requests on fd 3, replies
 * on fd 4. stdout and stderr stay the plugin's own (a plugin that prints
 * records prints them where Fluent Bit would). Every frame is
 *
 *     u32 length (of what follows) | u8 type | u32 id | payload
 *
 * big endian; strings and byte blobs are u32 length + bytes. Frames:
 *
 *   host → floe  'H' 0   hello: i32 type, i32 proxy, i32 event_type,
 *                        u32 symbol mask, str name, str description
 *   host → floe  'E' 0   fatal load error: str message (then exit 1)
 *   floe → host  'I' r   init: u32 instance, u32 nprops, (str key, str value)...,
 *                        u32 nreserved, str key...
 *   host → floe  'i' r   i32 rc, u32 nhits, str reserved key read...
 *   floe → host  'F' r   flush request r: u32 instance, str tag, blob data
 *   host → floe  'f' r   i32 rc (FLB_OK 1, FLB_RETRY 2, FLB_ERROR 0)
 *   floe → host  'X' r   exit: u32 instance
 *   host → floe  'x' r   i32 rc
 *
 * Flushes run on their own threads so an output's workers flush in parallel,
 * as Fluent Bit's output thread pool does. Init and exit run one at a time on
 * the main thread, as Fluent Bit initialises instances sequentially (the
 * per-plugin struct handed to FLBPluginInit is reused for each instance).
 * End of input on fd 3 unregisters the plugin and exits.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define IN_FD 3
#define OUT_FD 4
#define MAX_FRAME (1u << 30)

#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG 11

/* Symbol mask bits reported in the hello frame. */
#define SYM_INIT 1u
#define SYM_FLUSH 2u
#define SYM_FLUSH_CTX 4u
#define SYM_EXIT 8u
#define SYM_EXIT_CTX 16u
#define SYM_PRE_REGISTER 32u
#define SYM_PRE_RUN 64u
#define SYM_PRE_EXIT 128u
#define SYM_UNREGISTER 256u

/* include/fluent-bit/flb_plugin_proxy.h (host layout; fluent-bit-go mirrors a prefix). */
struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map;
};

/* include/fluent-bit/flb_api.h, in host order. */
struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};

struct flb_plugin_proxy_context {
    void *remote_context;
    void *proxy;
};

/* src/proxy/go/go.h: one per loaded .so. */
struct flbgo_output_plugin {
    char *name;
    struct flb_api *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
    int (*cb_init)(void *);
    int (*cb_flush)(const void *, size_t, const char *);
    int (*cb_flush_ctx)(void *, const void *, size_t, char *);
    int (*cb_exit)(void);
    int (*cb_exit_ctx)(void *);
};

/* What output_get_property gets as its instance: one per [OUTPUT] section. */
struct instance {
    uint32_t id;
    uint32_t nprops;
    char **keys;
    char **vals;
    uint32_t nreserved;
    char **reserved;
    uint32_t nhits;
    char **hits; /* reserved keys the plugin asked for */
    struct flb_plugin_proxy_context ctx;
};

static struct flbgo_output_plugin plugin;
static struct flb_api api;
static struct flb_plugin_proxy_def def;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t inst_mu = PTHREAD_MUTEX_INITIALIZER;
static struct instance **instances;
static uint32_t ninstances;
static int pre_run_done;

static void die(const char *fmt, ...);

/* ---- framing ---- */

static int read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

static int write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

struct buf {
    char *data;
    size_t len, cap;
};

static void buf_grow(struct buf *b, size_t n) {
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n)
        cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data)
        die("out of memory");
    b->cap = cap;
}

static void put_u32(struct buf *b, uint32_t v) {
    buf_grow(b, 4);
    unsigned char *p = (unsigned char *)b->data + b->len;
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
    b->len += 4;
}

static void put_bytes(struct buf *b, const char *s, size_t n) {
    put_u32(b, (uint32_t)n);
    buf_grow(b, n);
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void put_str(struct buf *b, const char *s) { put_bytes(b, s ? s : "", s ? strlen(s) : 0); }

/* frame_start reserves the length word; frame_send fills it and writes. */
static void frame_start(struct buf *b, char type, uint32_t id) {
    b->len = 0;
    put_u32(b, 0);
    buf_grow(b, 1);
    b->data[b->len++] = type;
    put_u32(b, id);
}

static void frame_send(struct buf *b) {
    uint32_t n = (uint32_t)(b->len - 4);
    unsigned char *p = (unsigned char *)b->data;
    p[0] = n >> 24;
    p[1] = n >> 16;
    p[2] = n >> 8;
    p[3] = n;
    pthread_mutex_lock(&out_mu);
    int err = write_full(OUT_FD, b->data, b->len);
    pthread_mutex_unlock(&out_mu);
    if (err) {
        /* Floe is gone: nothing left to serve. */
        _exit(3);
    }
}

struct reader {
    const unsigned char *p;
    size_t n;
    int bad;
};

static uint32_t get_u32(struct reader *r) {
    if (r->n < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) | r->p[3];
    r->p += 4;
    r->n -= 4;
    return v;
}

/* get_bytes returns a fresh NUL-terminated copy. */
static char *get_bytes(struct reader *r, size_t *len) {
    uint32_t n = get_u32(r);
    if (r->bad || r->n < n) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s)
        die("out of memory");
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n;
    r->n -= n;
    if (len)
        *len = n;
    return s;
}

static void die(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct buf b = {0};
    frame_start(&b, 'E', 0);
    put_str(&b, msg);
    frame_send(&b);
    fprintf(stderr, "floe-plugin-host: %s\n", msg);
    exit(1);
}

/* ---- the C API given to the plugin ---- */

static const char *output_get_property(const char *key, void *o_ins) {
    struct instance *in = o_ins;
    if (!in || !key)
        return NULL;
    for (uint32_t i = 0; i < in->nreserved; i++) {
        if (strcasecmp(key, in->reserved[i]) == 0) {
            /* Fluent Bit keeps these in the core; remember that the plugin
             * wanted one so Floe can refuse it with the key's name. */
            in->hits = realloc(in->hits, sizeof(char *) * (in->nhits + 1));
            in->hits[in->nhits++] = strdup(in->reserved[i]);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < in->nprops; i++) {
        if (strcasecmp(key, in->keys[i]) == 0)
            return in->vals[i];
    }
    return NULL;
}

static const char *no_property(const char *key, void *ins) {
    (void)key;
    (void)ins;
    return NULL;
}

static void *no_cmt(void *ins) {
    (void)ins;
    return NULL;
}

static void log_print(int level, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[plugin level=%d %s:%d] ", level, file ? file : "?", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int log_check(void *ins, int level) {
    (void)ins;
    return level <= 3; /* error, warn, info */
}

/* ---- requests ---- */

static struct instance *lookup(uint32_t id) {
    struct instance *in = NULL;
    pthread_mutex_lock(&inst_mu);
    if (id < ninstances)
        in = instances[id];
    pthread_mutex_unlock(&inst_mu);
    return in;
}

static void do_init(uint32_t req, struct reader *r) {
    struct instance *in = calloc(1, sizeof *in);
    if (!in)
        die("out of memory");
    uint32_t id = get_u32(r);
    in->id = id;
    in->nprops = get_u32(r);
    if (r->bad || in->nprops > r->n)
        die("bad init frame");
    in->keys = calloc(in->nprops + 1, sizeof(char *));
    in->vals = calloc(in->nprops + 1, sizeof(char *));
    for (uint32_t i = 0; i < in->nprops; i++) {
        in->keys[i] = get_bytes(r, NULL);
        in->vals[i] = get_bytes(r, NULL);
    }
    in->nreserved = get_u32(r);
    if (r->bad || in->nreserved > r->n)
        die("bad init frame");
    in->reserved = calloc(in->nreserved + 1, sizeof(char *));
    for (uint32_t i = 0; i < in->nreserved; i++)
        in->reserved[i] = get_bytes(r, NULL);
    if (r->bad)
        die("bad init frame");

    pthread_mutex_lock(&inst_mu);
    if (id >= ninstances) {
        instances = realloc(instances, sizeof(*instances) * (id + 1));
        for (uint32_t i = ninstances; i <= id; i++)
            instances[i] = NULL;
        ninstances = id + 1;
    }
    instances[id] = in;
    pthread_mutex_unlock(&inst_mu);

    /* proxy_go_output_init: the instance being initialised and its context. */
    plugin.o_ins = in;
    plugin.context = &in->ctx;
    int rc = plugin.cb_init(&plugin);
    if (rc > 0 && !pre_run_done)
        pre_run_done = 1; /* main calls FLBPluginOutputPreRun once */

    struct buf b = {0};
    frame_start(&b, 'i', req);
    put_u32(&b, (uint32_t)rc);
    put_u32(&b, in->nhits);
    for (uint32_t i = 0; i < in->nhits; i++)
        put_str(&b, in->hits[i]);
    frame_send(&b);
    free(b.data);
}

struct job {
    uint32_t req;
    struct instance *in;
    char *tag;
    char *data;
    size_t size;
};

static void *flush_thread(void *arg) {
    struct job *j = arg;
    int rc;
    /* Fluent Bit prefers FlushCtx whenever it is exported, even with a NULL context. */
    if (plugin.cb_flush_ctx)
        rc = plugin.cb_flush_ctx(j->in->ctx.remote_context, j->data, j->size, j->tag);
    else
        rc = plugin.cb_flush(j->data, j->size, j->tag);
    struct buf b = {0};
    frame_start(&b, 'f', j->req);
    put_u32(&b, (uint32_t)rc);
    frame_send(&b);
    free(b.data);
    free(j->tag);
    free(j->data);
    free(j);
    return NULL;
}

static void do_flush(uint32_t req, struct reader *r) {
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        die("out of memory");
    j->req = req;
    uint32_t id = get_u32(r);
    j->tag = get_bytes(r, NULL);
    j->data = get_bytes(r, &j->size);
    if (r->bad)
        die("bad flush frame");
    j->in = lookup(id);
    if (!j->in)
        die("flush for unknown instance %u", id);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &attr, flush_thread, j) != 0)
        die("cannot start a flush thread: %s", strerror(errno));
    pthread_attr_destroy(&attr);
}

static void do_exit(uint32_t req, struct reader *r) {
    uint32_t id = get_u32(r);
    struct instance *in = lookup(id);
    int rc = FLB_OK;
    if (in) {
        if (plugin.cb_exit_ctx)
            rc = plugin.cb_exit_ctx(in->ctx.remote_context);
        else if (plugin.cb_exit)
            rc = plugin.cb_exit();
    }
    struct buf b = {0};
    frame_start(&b, 'x', req);
    put_u32(&b, (uint32_t)rc);
    frame_send(&b);
    free(b.data);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc != 2) {
        fprintf(stderr, "usage: floe-plugin-host PLUGIN.so (started by floe with fds 3 and 4)\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_LAZY);
    if (!h)
        die("dlopen %s: %s", argv[1], dlerror());

    int (*reg)(void *) = (int (*)(void *))dlsym(h, "FLBPluginRegister");
    int (*init)(void *) = (int (*)(void *))dlsym(h, "FLBPluginInit");
    if (!reg)
        die("missing symbol FLBPluginRegister in %s", argv[1]);
    if (!init)
        die("missing symbol FLBPluginInit in %s", argv[1]);
    uint32_t mask = SYM_INIT;
    plugin.cb_init = init;
    plugin.cb_flush = (int (*)(const void *, size_t, const char *))dlsym(h, "FLBPluginFlush");
    plugin.cb_flush_ctx = (int (*)(void *, const void *, size_t, char *))dlsym(h, "FLBPluginFlushCtx");
    plugin.cb_exit = (int (*)(void))dlsym(h, "FLBPluginExit");
    plugin.cb_exit_ctx = (int (*)(void *))dlsym(h, "FLBPluginExitCtx");
    int (*pre_register)(int) = (int (*)(int))dlsym(h, "FLBPluginPreRegister");
    int (*pre_run)(int) = (int (*)(int))dlsym(h, "FLBPluginOutputPreRun");
    int (*pre_exit)(int) = (int (*)(int))dlsym(h, "FLBPluginOutputPreExit");
    int (*unreg)(void *) = (int (*)(void *))dlsym(h, "FLBPluginUnregister");
    if (plugin.cb_flush)
        mask |= SYM_FLUSH;
    if (plugin.cb_flush_ctx)
        mask |= SYM_FLUSH_CTX;
    if (plugin.cb_exit)
        mask |= SYM_EXIT;
    if (plugin.cb_exit_ctx)
        mask |= SYM_EXIT_CTX;
    if (pre_register)
        mask |= SYM_PRE_REGISTER;
    if (pre_run)
        mask |= SYM_PRE_RUN;
    if (pre_exit)
        mask |= SYM_PRE_EXIT;
    if (unreg)
        mask |= SYM_UNREGISTER;
    if (!plugin.cb_flush && !plugin.cb_flush_ctx)
        die("missing symbol FLBPluginFlush (nor FLBPluginFlushCtx) in %s", argv[1]);

    if (pre_register && pre_register(0) == -1)
        die("FLBPluginPreRegister of %s failed", argv[1]);
    if (reg(&def) == -1)
        die("FLBPluginRegister of %s failed", argv[1]);
    if (!def.name || !*def.name)
        die("%s registered no name", argv[1]);

    api.output_get_property = output_get_property;
    api.input_get_property = no_property;
    api.output_get_cmt_instance = no_cmt;
    api.input_get_cmt_instance = no_cmt;
    api.log_print = log_print;
    api.input_log_check = log_check;
    api.output_log_check = log_check;
    api.custom_get_property = no_property;
    api.custom_log_check = log_check;
    plugin.name = def.name;
    plugin.api = &api;

    struct buf b = {0};
    frame_start(&b, 'H', 0);
    put_u32(&b, (uint32_t)def.type);
    put_u32(&b, (uint32_t)def.proxy);
    /* fluent-bit-go's def stops before event_type: the host's calloc leaves it 0 (logs). */
    put_u32(&b, (uint32_t)def.event_type);
    put_u32(&b, mask);
    put_str(&b, def.name);
    put_str(&b, def.description);
    frame_send(&b);

    for (;;) {
        unsigned char hdr[9];
        int r = read_full(IN_FD, hdr, 4);
        if (r <= 0)
            break;
        uint32_t n = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
        if (n < 5 || n > MAX_FRAME)
            die("bad frame length %u", n);
        char *frame = malloc(n);
        if (!frame)
            die("out of memory");
        if (read_full(IN_FD, frame, n) <= 0)
            break;
        struct reader rd = {(unsigned char *)frame + 5, n - 5, 0};
        unsigned char *f = (unsigned char *)frame;
        uint32_t id = ((uint32_t)f[1] << 24) | ((uint32_t)f[2] << 16) | ((uint32_t)f[3] << 8) | f[4];
        switch (frame[0]) {
        case 'I':
            do_init(id, &rd);
            if (pre_run && pre_run_done == 1) {
                pre_run(0);
                pre_run_done = 2;
            }
            break;
        case 'F':
            do_flush(id, &rd);
            break;
        case 'X':
            if (pre_exit)
                pre_exit(0);
            do_exit(id, &rd);
            break;
        default:
            die("unknown frame type %d", frame[0]);
        }
        free(frame);
    }
    if (unreg)
        unreg(&def);
    return 0;
}
