/* tests/unit/engine/test_tftp_service.c — the TFTP service on a real loop, with a
 * raw UDP client on loopback: virtual files (a fixed-table provider), tsize /
 * blksize / window on them, duplicate requests, unknown TIDs, OVMF's ERROR 8,
 * the waiting queue, retransmission after loss, abort, and the counters.
 * Every test runs on both io backends. */
#include "engine/tftp_service.h"
#include "engine/vfile.h"
#include "io/loop.h"
#include "proto/tftp.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- a fixed-table virtual-file provider ------------------------------------------ */

struct vtable_entry {
    const char *path;
    uint32_t client_ip_be; /* 0: any client */
    struct vfile *f;
};

struct vtable {
    struct vtable_entry e[4];
    int n;
    atomic_int asked;
};

static bool vtable_open(void *ctx, const char *path, uint32_t client_ip_be, struct vfile **out)
{
    struct vtable *t = ctx;
    atomic_fetch_add(&t->asked, 1);
    for (int i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].path, path) == 0 && (!t->e[i].client_ip_be || t->e[i].client_ip_be == client_ip_be)) {
            *out = vfile_ref(t->e[i].f);
            return true;
        }
    }
    return false;
}

/* ---- the server under test, in its own thread -------------------------------------- */

struct server {
    struct io_loop *loop;
    struct tftp_service *svc;
    pthread_t th;
    atomic_bool abort_now;
    atomic_bool drain_now;
    char root[64];
    struct vtable vt;
    struct vfile_provider prov;
    enum io_backend be;
    struct tftp_service_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready; /* 1 started, -1 failed */
    char err[200];
};

static void idle(void *arg)
{
    struct server *s = arg;
    if (atomic_exchange(&s->abort_now, false))
        tftp_service_abort(s->svc);
    if (atomic_exchange(&s->drain_now, false))
        tftp_service_drain(s->svc);
}

static void set_ready(struct server *s, int v)
{
    pthread_mutex_lock(&s->mu);
    s->ready = v;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The loop and the service are made on the thread that runs them: an io_uring
 * ring accepts submissions from one thread only (IORING_SETUP_SINGLE_ISSUER). */
static void *run(void *arg)
{
    struct server *s = arg;
    struct io_loop_config lc = {.backend = s->be};
    if (io_loop_new(&s->loop, &lc, s->err, sizeof(s->err)) < 0) {
        set_ready(s, -1);
        return NULL;
    }
    if (tftp_service_start(&s->svc, s->loop, &s->cfg, s->err, sizeof(s->err)) < 0) {
        io_loop_free(s->loop);
        s->loop = NULL;
        set_ready(s, -1);
        return NULL;
    }
    io_loop_set_idle_hook(s->loop, idle, s);
    set_ready(s, 1);
    io_loop_run(s->loop);
    return NULL;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *b = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
    return b;
}

/* Prepares the server: files and virtual files may be added before server_run. */
static void server_start(struct server *s, enum io_backend be, struct tftp_service_config cfg)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->root, sizeof(s->root), "/tmp/tftp-unit.XXXXXX");
    cr_assert(mkdtemp(s->root));
    s->prov.open = vtable_open;
    s->prov.ctx = &s->vt;
    cfg.listen_addr = htonl(INADDR_LOOPBACK);
    cfg.port = 0;
    cfg.root = s->root;
    cfg.vfiles = &s->prov;
    cfg.quiet = true;
    s->cfg = cfg;
    s->be = be;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void server_run(struct server *s)
{
    cr_assert_eq(pthread_create(&s->th, NULL, run, s), 0);
    pthread_mutex_lock(&s->mu);
    while (!s->ready)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    cr_assert_eq(s->ready, 1, "%s", s->err);
}

static void settle(void);

/* Stops the loop once the datagrams in flight are handled (the client's last
 * ACK); the counters may be read afterwards. */
static void server_stop(struct server *s, struct tftp_service_stats *st)
{
    settle();
    io_loop_stop(s->loop);
    pthread_join(s->th, NULL);
    tftp_service_get_stats(s->svc, st);
}

static void server_free(struct server *s)
{
    tftp_service_free(s->svc);
    io_loop_free(s->loop);
    for (int i = 0; i < s->vt.n; i++)
        vfile_unref(s->vt.e[i].f);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", s->root);
    cr_assert_eq(system(cmd), 0);
}

/* ---- a raw client -------------------------------------------------------------------- */

struct client {
    int fd;
    struct sockaddr_in server, tid;
};

static void client_open(struct client *c, const struct server *s)
{
    c->fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert(c->fd >= 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(c->fd, (struct sockaddr *)&any, sizeof(any)), 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    c->server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(tftp_service_port(s->svc)),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static void client_send(struct client *c, const void *p, size_t n, const struct sockaddr_in *to)
{
    cr_assert_eq(sendto(c->fd, p, n, 0, (const struct sockaddr *)to, sizeof(*to)), (ssize_t)n);
}

static void client_rrq(struct client *c, const char *name, enum tftp_mode mode, const struct tftp_options *o)
{
    uint8_t b[600];
    size_t n;
    cr_assert_eq(tftp_encode_request(b, sizeof(b), TFTP_OP_RRQ, name, mode, o, &n), TFTP_OK);
    client_send(c, b, n, &c->server);
}

static void client_ack(struct client *c, uint16_t block)
{
    uint8_t b[4];
    size_t n;
    tftp_encode_ack(b, sizeof(b), block, &n);
    client_send(c, b, n, &c->tid);
}

/* Receives one datagram into buf; returns its length (-1 on timeout) and fills p. */
static ssize_t client_recv(struct client *c, uint8_t *buf, size_t cap, struct tftp_packet *p, struct sockaddr_in *from)
{
    socklen_t l = sizeof(*from);
    ssize_t n = recvfrom(c->fd, buf, cap, 0, (struct sockaddr *)from, &l);
    if (n >= 0)
        cr_assert_eq(tftp_parse(buf, (size_t)n, p), TFTP_OK);
    return n;
}

struct fetched {
    uint8_t *data;
    size_t len;
    struct tftp_options oack;
    bool had_oack;
    uint16_t error;     /* ERROR code received, 0: none */
};

/* Receives a file as an RFC 7440 receiver, the request being sent.  drop_block:
 * a DATA block (by index) the client pretends it never got, once (0: none). */
static void fetch_loop(struct client *c, uint64_t drop_block, struct fetched *out)
{
    memset(out, 0, sizeof(*out));
    static uint8_t buf[70000];
    struct tftp_packet p;
    struct sockaddr_in from;
    uint32_t blksize = 512, window = 1, since = 0;
    uint64_t expected = 1;
    bool first = true, dropped = false;
    size_t cap = 0;
    for (;;) {
        ssize_t n = client_recv(c, buf, sizeof(buf), &p, &from);
        cr_assert(n >= 0, "timed out waiting at block %llu", (unsigned long long)expected);
        if (first) {
            c->tid = from;
            first = false;
        }
        cr_assert_eq(from.sin_port, c->tid.sin_port, "a packet from a second TID");
        if (p.op == TFTP_OP_ERROR) {
            out->error = p.error.code;
            return;
        }
        if (p.op == TFTP_OP_OACK) {
            out->had_oack = true;
            out->oack = p.oack;
            if (p.oack.present & TFTP_OPT_BLKSIZE)
                blksize = (uint32_t)p.oack.blksize;
            if (p.oack.present & TFTP_OPT_WINDOWSIZE)
                window = (uint32_t)p.oack.windowsize;
            client_ack(c, 0);
            continue;
        }
        cr_assert_eq(p.op, TFTP_OP_DATA);
        if (p.data.block != (uint16_t)expected)
            continue; /* the sender resends from the gap on its timer */
        if (expected == drop_block && !dropped) {
            dropped = true;
            continue;
        }
        if (out->len + p.data.len > cap) {
            cap = (out->len + p.data.len) * 2;
            out->data = realloc(out->data, cap);
        }
        memcpy(out->data + out->len, p.data.data, p.data.len);
        out->len += p.data.len;
        expected++;
        if (p.data.len < blksize) {
            client_ack(c, p.data.block);
            return;
        }
        if (++since >= window) {
            client_ack(c, p.data.block);
            since = 0;
        }
    }
}

static void client_fetch(struct client *c, const char *name, enum tftp_mode mode, const struct tftp_options *o,
                         uint64_t drop_block, struct fetched *out)
{
    client_rrq(c, name, mode, o);
    fetch_loop(c, drop_block, out);
}

/* The source of the next datagram, without taking it. */
static struct sockaddr_in peek_source(struct client *c)
{
    uint8_t b[16];
    struct sockaddr_in from;
    socklen_t l = sizeof(from);
    cr_assert(recvfrom(c->fd, b, sizeof(b), MSG_PEEK, (struct sockaddr *)&from, &l) >= 0, "no answer");
    return from;
}

/* True when a datagram waits (after wait_ms). */
static bool pending(struct client *c, int wait_ms)
{
    usleep((useconds_t)wait_ms * 1000);
    uint8_t b[16];
    return recv(c->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) >= 0;
}

static struct tftp_service_config base_cfg(void)
{
    return (struct tftp_service_config){.blksize_max = 8192, .window_max = 64, .timeout_ms = 30, .retries = 4};
}

/* Lets the server thread handle what was sent to it: a sleep far longer than
 * any reaction here (the counters cannot be read while the loop runs). */
static void settle(void) { usleep(100 * 1000); }

#define BOTH_BACKENDS(name)                                                                          \
    static void name(enum io_backend be);                                                             \
    Test(tftp_service, name##_uring) { name(IO_BACKEND_URING); }                                     \
    Test(tftp_service, name##_epoll) { name(IO_BACKEND_EPOLL); }                                     \
    static void name(enum io_backend be)

/* ---- tests ------------------------------------------------------------------------------ */

BOTH_BACKENDS(virtual_file_served_like_a_real_one)
{
    struct server s;
    server_start(&s, be, base_cfg());
    size_t len = 5000; /* 5000 / 1024 → 5 blocks, the last short */
    uint8_t *content = pattern(len, 1);
    s.vt.e[0] = (struct vtable_entry){"pxelinux.cfg/01-52-54-00-77-00-01", 0, vfile_new_copy(content, len)};
    s.vt.n = 1;
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    struct tftp_options o = {.present = TFTP_OPT_TSIZE | TFTP_OPT_BLKSIZE | TFTP_OPT_WINDOWSIZE,
                             .tsize = 0, .blksize = 1024, .windowsize = 4};
    struct fetched f;
    /* the name as PXE sends it: backslashes, leading slash */
    client_fetch(&c, "\\pxelinux.cfg\\01-52-54-00-77-00-01", TFTP_MODE_OCTET, &o, 0, &f);
    cr_assert_eq(f.error, 0);
    cr_assert(f.had_oack);
    cr_assert_eq(f.oack.present, TFTP_OPT_TSIZE | TFTP_OPT_BLKSIZE | TFTP_OPT_WINDOWSIZE);
    cr_assert_eq(f.oack.tsize, len, "tsize is the virtual file's size");
    cr_assert_eq(f.oack.blksize, 1024);
    cr_assert_eq(f.oack.windowsize, 4);
    cr_assert_eq(f.len, len);
    cr_assert_eq(memcmp(f.data, content, len), 0);
    /* netascii on a virtual file: converted like a disk file */
    struct fetched g;
    struct client c2;
    client_open(&c2, &s);
    client_fetch(&c2, "pxelinux.cfg/01-52-54-00-77-00-01", TFTP_MODE_NETASCII, NULL, 0, &g);
    uint64_t want = tftp_netascii_size(content, len);
    cr_assert_eq(g.len, want);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.vfiles, 2);
    cr_assert_eq(st.done, 2);
    cr_assert_eq(st.transfers, 2);
    cr_assert_eq(st.bytes, len + want);
    cr_assert_eq(st.active, 0);
    cr_assert_eq(atomic_load(&s.vt.e[0].f->refs), 1, "every transfer released its reference");
    free(content);
    free(f.data);
    free(g.data);
    close(c.fd);
    close(c2.fd);
    server_free(&s);
}

BOTH_BACKENDS(provider_per_client_then_disk_then_not_found)
{
    struct server s;
    server_start(&s, be, base_cfg());
    const char vtext[] = "virtual menu for 127.0.0.2\n", dtext[] = "menu on disk\n";
    s.vt.e[0] = (struct vtable_entry){"menu.cfg", htonl(0x7f000002), vfile_new_copy(vtext, sizeof(vtext) - 1)};
    s.vt.n = 1;
    write_file(s.root, "menu.cfg", dtext, sizeof(dtext) - 1);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    struct fetched f;
    client_fetch(&c, "menu.cfg", TFTP_MODE_OCTET, NULL, 0, &f); /* we are 127.0.0.1: the disk file */
    cr_assert_eq(f.len, sizeof(dtext) - 1);
    cr_assert_eq(memcmp(f.data, dtext, f.len), 0);
    cr_assert_not(f.had_oack, "no option asked: DATA 1 at once, never an empty OACK");
    free(f.data);
    struct client c2;
    client_open(&c2, &s);
    client_fetch(&c2, "nothing/here", TFTP_MODE_OCTET, NULL, 0, &f);
    cr_assert_eq(f.error, TFTP_ERR_NOT_FOUND);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_geq(atomic_load(&s.vt.asked), 2, "the provider is asked first");
    cr_assert_eq(st.vfiles, 0);
    cr_assert_eq(st.err_not_found, 1);
    close(c.fd);
    close(c2.fd);
    server_free(&s);
}

BOTH_BACKENDS(retransmitted_rrq_is_the_same_transfer)
{
    struct server s;
    server_start(&s, be, base_cfg());
    size_t len = 20000;
    uint8_t *content = pattern(len, 2);
    write_file(s.root, "kernel", content, len);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    struct tftp_options o = {.present = TFTP_OPT_BLKSIZE, .blksize = 1468};
    client_rrq(&c, "kernel", TFTP_MODE_OCTET, &o);
    client_rrq(&c, "kernel", TFTP_MODE_OCTET, &o); /* the client retransmits */
    struct fetched f;
    fetch_loop(&c, 0, &f); /* asserts every packet comes from one TID */
    cr_assert_eq(f.len, len);
    cr_assert_eq(memcmp(f.data, content, len), 0);
    cr_assert_not(pending(&c, 100), "a second transfer answered");
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.transfers, 1);
    cr_assert_eq(st.duplicate_requests, 1);
    cr_assert_eq(st.done, 1);
    free(content);
    free(f.data);
    close(c.fd);
    server_free(&s);
}

BOTH_BACKENDS(unknown_tid_gets_error_5_and_the_transfer_goes_on)
{
    struct server s;
    server_start(&s, be, base_cfg());
    size_t len = 3000;
    uint8_t *content = pattern(len, 3);
    write_file(s.root, "loader", content, len);
    server_run(&s);
    struct client a, b;
    client_open(&a, &s);
    client_open(&b, &s);
    struct tftp_options o = {.present = TFTP_OPT_BLKSIZE, .blksize = 512};
    client_rrq(&a, "loader", TFTP_MODE_OCTET, &o);
    b.tid = peek_source(&a);
    client_ack(&b, 0); /* from the wrong port */
    uint8_t buf[600];
    struct tftp_packet p;
    struct sockaddr_in from;
    cr_assert(client_recv(&b, buf, sizeof(buf), &p, &from) >= 0);
    cr_assert_eq(p.op, TFTP_OP_ERROR);
    cr_assert_eq(p.error.code, TFTP_ERR_UNKNOWN_TID);
    cr_assert_eq(from.sin_port, b.tid.sin_port, "ERROR 5 comes from the transfer's own port");
    struct fetched f;
    fetch_loop(&a, 0, &f);
    cr_assert_eq(f.len, len);
    cr_assert_eq(memcmp(f.data, content, len), 0);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.err_unknown_tid, 1);
    cr_assert_eq(st.done, 1);
    free(content);
    free(f.data);
    close(a.fd);
    close(b.fd);
    server_free(&s);
}

BOTH_BACKENDS(error_8_after_oack_frees_the_transfer_at_once)
{
    struct server s;
    struct tftp_service_config cfg = base_cfg();
    cfg.timeout_ms = 2000; /* a freed transfer must not be waiting for its timer */
    server_start(&s, be, cfg);
    size_t len = 100000;
    uint8_t *content = pattern(len, 4);
    write_file(s.root, "bootx64.efi", content, len);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    struct tftp_options o = {.present = TFTP_OPT_TSIZE | TFTP_OPT_BLKSIZE | TFTP_OPT_WINDOWSIZE,
                             .blksize = 1468, .windowsize = 4};
    client_rrq(&c, "bootx64.efi", TFTP_MODE_OCTET, &o);
    uint8_t buf[600];
    struct tftp_packet p;
    cr_assert(client_recv(&c, buf, sizeof(buf), &p, &c.tid) >= 0);
    cr_assert_eq(p.op, TFTP_OP_OACK);
    cr_assert_eq(p.oack.tsize, len);
    uint8_t e[64];
    size_t n;
    tftp_encode_error(e, sizeof(e), TFTP_ERR_OPTION, "", &n);
    client_send(&c, e, n, &c.tid);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.aborted, 1);
    cr_assert_eq(st.active, 0);
    cr_assert_eq(tftp_service_open_transfers(s.svc), 0, "socket and state gone, no timer left to wait for");
    free(content);
    close(c.fd);
    server_free(&s);
}

BOTH_BACKENDS(beyond_max_transfers_requests_wait_and_are_served)
{
    struct server s;
    struct tftp_service_config cfg = base_cfg();
    cfg.max_transfers = 1;
    server_start(&s, be, cfg);
    size_t len = 4000;
    uint8_t *content = pattern(len, 5);
    write_file(s.root, "f", content, len);
    server_run(&s);
    struct client a, b;
    client_open(&a, &s);
    client_open(&b, &s);
    struct tftp_options o = {.present = TFTP_OPT_BLKSIZE, .blksize = 1024};
    client_rrq(&a, "f", TFTP_MODE_OCTET, &o);
    peek_source(&a); /* a's transfer holds the only slot (OACK sent, not acknowledged) */
    client_rrq(&b, "f", TFTP_MODE_OCTET, &o);
    cr_assert_not(pending(&b, 100), "b must wait, neither refused nor served");
    struct fetched fa, fb;
    fetch_loop(&a, 0, &fa);
    fetch_loop(&b, 0, &fb); /* starts when a's transfer ends */
    cr_assert_eq(fa.len, len);
    cr_assert_eq(fb.len, len);
    cr_assert_eq(memcmp(fb.data, content, len), 0);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.queued, 1);
    cr_assert_eq(st.transfers, 2);
    cr_assert_eq(st.done, 2);
    cr_assert_eq(st.err_busy, 0);
    free(content);
    free(fa.data);
    free(fb.data);
    close(a.fd);
    close(b.fd);
    server_free(&s);
}

BOTH_BACKENDS(lost_block_is_resent_on_the_millisecond_timer)
{
    struct server s;
    server_start(&s, be, base_cfg()); /* 30 ms */
    size_t len = 512 * 20 + 100;
    uint8_t *content = pattern(len, 6);
    write_file(s.root, "initrd", content, len);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    struct tftp_options o = {.present = TFTP_OPT_BLKSIZE | TFTP_OPT_WINDOWSIZE, .blksize = 512, .windowsize = 8};
    struct fetched f;
    client_fetch(&c, "initrd", TFTP_MODE_OCTET, &o, 3, &f);
    cr_assert_eq(f.len, len);
    cr_assert_eq(memcmp(f.data, content, len), 0);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_geq(st.retransmits, 1);
    cr_assert_eq(st.done, 1);
    free(content);
    free(f.data);
    close(c.fd);
    server_free(&s);
}

BOTH_BACKENDS(abort_ends_transfers_with_an_error)
{
    struct server s;
    server_start(&s, be, base_cfg());
    size_t len = 50000;
    uint8_t *content = pattern(len, 7);
    write_file(s.root, "big", content, len);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    client_rrq(&c, "big", TFTP_MODE_OCTET, NULL);
    uint8_t buf[600];
    struct tftp_packet p;
    cr_assert(client_recv(&c, buf, sizeof(buf), &p, &c.tid) >= 0);
    cr_assert_eq(p.op, TFTP_OP_DATA);
    atomic_store(&s.abort_now, true);
    io_loop_wake(s.loop);
    do /* resent DATA 1 may come first */
        cr_assert(client_recv(&c, buf, sizeof(buf), &p, &c.tid) >= 0, "no ERROR after abort");
    while (p.op == TFTP_OP_DATA);
    cr_assert_eq(p.op, TFTP_OP_ERROR);
    cr_assert_eq(p.error.code, TFTP_ERR_UNDEF);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(tftp_service_open_transfers(s.svc), 0);
    free(content);
    close(c.fd);
    server_free(&s);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A drain lets running transfers go on, but not for ever: one whose client went
 * silent ends at the drain's deadline (1.5 s), not after its retries (10 s+). */
BOTH_BACKENDS(drain_ends_abandoned_transfers_at_its_deadline)
{
    struct server s;
    server_start(&s, be, base_cfg());
    size_t len = 50000;
    uint8_t *content = pattern(len, 9);
    write_file(s.root, "big", content, len);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    client_rrq(&c, "big", TFTP_MODE_OCTET, NULL);
    uint8_t buf[600];
    struct tftp_packet p;
    cr_assert(client_recv(&c, buf, sizeof(buf), &p, &c.tid) >= 0);
    cr_assert_eq(p.op, TFTP_OP_DATA); /* and no ACK, ever */
    uint64_t t0 = mono_ms();
    atomic_store(&s.drain_now, true);
    io_loop_wake(s.loop);
    bool resent = false;
    do {
        cr_assert(client_recv(&c, buf, sizeof(buf), &p, &c.tid) >= 0, "no ERROR after the drain's deadline");
        resent |= p.op == TFTP_OP_DATA && p.data.block == 1;
    } while (p.op == TFTP_OP_DATA);
    uint64_t ms = mono_ms() - t0;
    cr_assert(resent, "the transfer went on during the drain");
    cr_assert_eq(p.op, TFTP_OP_ERROR);
    cr_assert_geq(ms, 1300, "ended after %llu ms: before the deadline", (unsigned long long)ms);
    cr_assert_leq(ms, 3500, "ended after %llu ms", (unsigned long long)ms);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(tftp_service_open_transfers(s.svc), 0);
    free(content);
    close(c.fd);
    server_free(&s);
}

BOTH_BACKENDS(malformed_and_stray_datagrams_are_counted_and_dropped)
{
    struct server s;
    server_start(&s, be, base_cfg());
    write_file(s.root, "x", "xyz", 3);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    client_send(&c, "\x00", 1, &c.server);                   /* truncated */
    client_send(&c, "\x00\x09zz", 4, &c.server);             /* opcode 9 */
    client_send(&c, "\x00\x01x\x00octet", 9, &c.server);     /* unterminated */
    client_send(&c, "\x00\x04\x00\x01", 4, &c.server);       /* an ACK to the request port */
    cr_assert_not(pending(&c, 100), "garbage was answered");
    struct fetched f;
    client_fetch(&c, "x", TFTP_MODE_OCTET, NULL, 0, &f);
    cr_assert_eq(f.len, 3);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.malformed, 3);
    cr_assert_eq(st.stray, 1);
    cr_assert_eq(st.requests, 1);
    free(f.data);
    close(c.fd);
    server_free(&s);
}

BOTH_BACKENDS(write_refused_unless_allowed_then_stored_whole)
{
    struct server s;
    struct tftp_service_config cfg = base_cfg();
    server_start(&s, be, cfg);
    server_run(&s);
    struct client c;
    client_open(&c, &s);
    uint8_t b[1100];
    size_t n;
    struct tftp_options o = {.present = TFTP_OPT_BLKSIZE, .blksize = 1024};
    cr_assert_eq(tftp_encode_request(b, sizeof(b), TFTP_OP_WRQ, "up.bin", TFTP_MODE_OCTET, &o, &n), TFTP_OK);
    client_send(&c, b, n, &c.server);
    struct tftp_packet p;
    uint8_t in[600];
    cr_assert(client_recv(&c, in, sizeof(in), &p, &c.tid) >= 0);
    cr_assert_eq(p.op, TFTP_OP_ERROR);
    cr_assert_eq(p.error.code, TFTP_ERR_ACCESS);
    struct tftp_service_stats st;
    server_stop(&s, &st);
    cr_assert_eq(st.err_access, 1);
    close(c.fd);
    server_free(&s);

    cfg.allow_write = true;
    server_start(&s, be, cfg);
    server_run(&s);
    client_open(&c, &s);
    client_send(&c, b, n, &c.server);
    cr_assert(client_recv(&c, in, sizeof(in), &p, &c.tid) >= 0);
    cr_assert_eq(p.op, TFTP_OP_OACK);
    cr_assert_eq(p.oack.blksize, 1024);
    size_t len = 1024 * 3 + 17;
    uint8_t *content = pattern(len, 8);
    for (uint16_t blk = 1; (size_t)(blk - 1) * 1024 <= len; blk++) {
        size_t off = (size_t)(blk - 1) * 1024, part = len - off < 1024 ? len - off : 1024;
        tftp_encode_data_header(b, sizeof(b), blk, &n);
        memcpy(b + 4, content + off, part);
        client_send(&c, b, 4 + part, &c.tid);
        cr_assert(client_recv(&c, in, sizeof(in), &p, &c.tid) >= 0);
        cr_assert_eq(p.op, TFTP_OP_ACK);
        cr_assert_eq(p.ack.block, blk);
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/up.bin", s.root);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "stored under its name when the last ACK goes out");
    cr_assert_eq((size_t)sb.st_size, len);
    server_stop(&s, &st);
    free(content);
    close(c.fd);
    server_free(&s);
}
