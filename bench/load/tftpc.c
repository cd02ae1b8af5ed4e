/* bench/load/tftpc.c — the TFTP read client; see tftpc.h. */
#include "bench/load/tftpc.h"

#include "bench/load/ev.h"
#include "proto/tftp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/errqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


enum phase {
    PH_REQUEST, /* RRQ sent, waiting for OACK/DATA/ERROR */
    PH_DATA,    /* receiving */
    PH_DALLY,   /* done; re-ACK a repeated final block */
};

struct tftpc {
    struct ev_dgram d; /* the socket: our TID */
    struct ev_timer timer;
    struct tftpc_params p;
    char *file;
    tftpc_done_fn done;
    void *arg;
    enum phase phase;
    struct sockaddr_in tid; /* the server's transfer address once known */
    bool tid_known;
    uint8_t pkt[600];       /* the last packet we sent (RRQ or ACK): resent on timeout */
    size_t pkt_len;
    uint64_t last;          /* blocks received in order (64-bit: no rollover) */
    uint32_t in_window;     /* blocks received since the last ACK */
    uint64_t progress_ns;   /* last time something new arrived */
    uint64_t rto_ns;
    unsigned tries;         /* retransmissions since the last progress */
    uint64_t reack_last;    /* "last" when we last re-ACKed a gap or duplicate */
    uint64_t reack_ns;
    uint64_t reack_gap_ns;  /* at most one such re-ACK per this interval */
    struct verify_ctx vc;
    bool need_bytes;        /* verify or keep: read the payload, not only its length */
    bool closing;           /* the socket is being closed; freed from its closed() callback */
    struct tftpc_result r;
    size_t kept_cap;
};

static unsigned g_live;
static uint64_t g_bytes;

unsigned tftpc_live(void) { return g_live; }
uint64_t tftpc_total_bytes(void) { return g_bytes; }

const char *tftpc_status_name(enum tftpc_status s)
{
    switch (s) {
    case TFTPC_OK: return "ok";
    case TFTPC_NOT_FOUND: return "not-found";
    case TFTPC_ERROR: return "error";
    case TFTPC_TIMEOUT: return "timeout";
    case TFTPC_PROTOCOL: return "protocol";
    case TFTPC_SIZE: return "size";
    case TFTPC_CHECKSUM: return "checksum";
    case TFTPC_REFUSED: return "refused";
    case TFTPC_SOCKET: return "socket";
    }
    return "?";
}

/* The socket is closed and nothing is in flight on it: free. */
static void on_closed(struct ev_dgram *d)
{
    struct tftpc *x = (struct tftpc *)d;
    ev_timer_cancel(&x->timer);
    free(x->r.kept);
    free(x->file);
    free(x);
    g_live--;
}

static void xfer_close(struct tftpc *x)
{
    if (x->closing)
        return;
    x->closing = true;
    ev_timer_cancel(&x->timer);
    ev_dgram_close(&x->d);
}

static void dally_end(struct ev_timer *t) { xfer_close(t->owner); }

/* Ends the transfer: result to the owner, then dally or free. */
static void finish(struct tftpc *x, enum tftpc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(struct tftpc *x, enum tftpc_status st, const char *fmt, ...)
{
    if (x->phase == PH_DALLY)
        return;
    x->r.status = st;
    x->r.end_ns = ev_refresh();
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->r.reason, sizeof(x->r.reason), fmt, ap);
        va_end(ap);
    }
    x->phase = PH_DALLY;
    tftpc_done_fn done = x->done;
    x->done = NULL;
    if (done)
        done(x->arg, &x->r); /* may take r.kept */
    free(x->r.kept);
    x->r.kept = NULL;
    /* never freed here: callers up the stack still look at x; the socket's
     * closed() callback frees it at the end of the loop turn */
    x->timer.fn = dally_end;
    if (st == TFTPC_OK && x->p.dally_ms && !x->closing) {
        x->d.want_payload = false;
        ev_timer_arm(&x->timer, (uint64_t)x->p.dally_ms * EV_MS);
    } else {
        xfer_close(x);
    }
}

static void send_to(struct tftpc *x, const struct sockaddr_in *to, const void *b, size_t n)
{
    /* A full socket buffer or a transient error is what a lossy network does:
     * the retransmission timer covers it. */
    ev_dgram_sendto(&x->d, to, b, n);
}

static void send_ack(struct tftpc *x, uint64_t block)
{
    size_t n;
    tftp_encode_ack(x->pkt, sizeof(x->pkt), (uint16_t)block, &n);
    x->pkt_len = n;
    send_to(x, &x->tid, x->pkt, n);
}

static void send_error(struct tftpc *x, const struct sockaddr_in *to, uint16_t code, const char *msg)
{
    uint8_t b[128];
    size_t n;
    if (tftp_encode_error(b, sizeof(b), code, msg, &n) == TFTP_OK)
        send_to(x, to, b, n);
}

static void on_timer(struct ev_timer *t)
{
    struct tftpc *x = t->owner;
    uint64_t now = ev_now();
    if (now < x->progress_ns + x->rto_ns) { /* progress since armed: lazy re-arm */
        ev_timer_arm_at(&x->timer, x->progress_ns + x->rto_ns);
        return;
    }
    x->r.timeouts++;
    if (x->tries >= x->p.retries) {
        finish(x, TFTPC_TIMEOUT, "timeout after %u retransmissions (%s, %llu bytes received)", x->tries,
               x->phase == PH_REQUEST ? "no answer to the RRQ" : "no DATA", (unsigned long long)x->r.bytes);
        return;
    }
    x->tries++;
    x->r.retransmits++;
    x->in_window = 0; /* the sender restarts its window from our ACK */
    if (x->phase == PH_REQUEST)
        send_to(x, &x->p.server, x->pkt, x->pkt_len);
    else
        send_to(x, &x->tid, x->pkt, x->pkt_len);
    x->progress_ns = now;
    x->rto_ns *= 2;
    if (x->rto_ns > (uint64_t)x->p.max_timeout_ms * EV_MS)
        x->rto_ns = (uint64_t)x->p.max_timeout_ms * EV_MS;
    ev_timer_arm(&x->timer, x->rto_ns);
}

static void progress(struct tftpc *x)
{
    x->progress_ns = ev_now();
    x->tries = 0;
    x->rto_ns = (uint64_t)x->p.timeout_ms * EV_MS;
}

/* Size and checksum checks once the final block is in. */
static void complete(struct tftpc *x)
{
    const struct verify_ref *ref = x->p.ref;
    if (x->r.has_tsize && x->r.bytes != x->r.tsize) {
        finish(x, TFTPC_SIZE, "received %llu bytes, tsize said %llu", (unsigned long long)x->r.bytes,
               (unsigned long long)x->r.tsize);
        return;
    }
    if (ref && ref->state == VERIFY_REF_OK) {
        if (x->r.bytes != ref->size) {
            finish(x, TFTPC_SIZE, "received %llu bytes, the local file has %llu", (unsigned long long)x->r.bytes,
                   (unsigned long long)ref->size);
            return;
        }
        if (x->p.verify != VERIFY_NONE && ref->kind == x->p.verify) {
            uint8_t d[VERIFY_DIGEST_MAX];
            size_t dl = verify_final(&x->vc, d);
            if (dl != ref->digest_len || memcmp(d, ref->digest, dl) != 0) {
                char a[65], b[65];
                finish(x, TFTPC_CHECKSUM, "%s %s, the local file's is %s", verify_kind_name(x->p.verify),
                       verify_hex(d, dl, a), verify_hex(ref->digest, ref->digest_len, b));
                return;
            }
        }
    }
    finish(x, TFTPC_OK, NULL);
}

static void keep_bytes(struct tftpc *x, const uint8_t *d, size_t n)
{
    if (x->r.kept_len >= x->p.keep_max)
        return;
    if (n > x->p.keep_max - x->r.kept_len)
        n = x->p.keep_max - x->r.kept_len;
    if (x->r.kept_len + n > x->kept_cap) {
        size_t cap = x->kept_cap ? x->kept_cap * 2 : 4096;
        while (cap < x->r.kept_len + n)
            cap *= 2;
        uint8_t *k = realloc(x->r.kept, cap);
        if (!k)
            return;
        x->r.kept = k;
        x->kept_cap = cap;
    }
    memcpy(x->r.kept + x->r.kept_len, d, n);
    x->r.kept_len += n;
}

/* Re-ACK the last in-order block after a gap or a duplicate, at most once per
 * reack_gap_ns for the same block: a retransmitted window draws one ACK. */
static void reack(struct tftpc *x)
{
    uint64_t now = ev_now();
    if (x->reack_last == x->last && now - x->reack_ns < x->reack_gap_ns)
        return;
    x->reack_last = x->last;
    x->reack_ns = now;
    x->in_window = 0;
    send_ack(x, x->last);
}

static void on_data(struct tftpc *x, uint16_t block, const uint8_t *data, size_t len, bool have_bytes)
{
    uint16_t expect = (uint16_t)(x->last + 1);
    int16_t d = (int16_t)(uint16_t)(block - expect);
    if (d < 0) {
        x->r.dup_blocks++;
        reack(x);
        return;
    }
    if (d > 0) {
        x->r.gaps++;
        reack(x);
        return;
    }
    if (len > x->r.blksize) {
        send_error(x, &x->tid, TFTP_ERR_ILLEGAL_OP, "DATA larger than the block size");
        finish(x, TFTPC_PROTOCOL, "DATA block %u carries %zu bytes, blksize is %u", block, len, x->r.blksize);
        return;
    }
    x->last++;
    x->r.bytes += len;
    g_bytes += len;
    if (have_bytes) {
        if (x->p.verify != VERIFY_NONE)
            verify_update(&x->vc, data, len);
        if (x->p.keep_max)
            keep_bytes(x, data, len);
    }
    progress(x);
    if (len < x->r.blksize) { /* the final block (RFC 1350 §6) */
        send_ack(x, x->last);
        complete(x);
        return;
    }
    if (++x->in_window >= x->r.windowsize) {
        x->in_window = 0;
        send_ack(x, x->last);
    }
}

/* RFC 2347: the OACK may carry only options the client asked for, with values
 * it can accept (blksize and windowsize no larger than asked). */
static void on_oack(struct tftpc *x, const struct tftp_options *o)
{
    const struct tftpc_params *p = &x->p;
    unsigned asked = (p->blksize ? TFTP_OPT_BLKSIZE : 0) | (p->tsize ? TFTP_OPT_TSIZE : 0) |
                     (p->windowsize > 1 ? TFTP_OPT_WINDOWSIZE : 0);
    const char *bad = NULL;
    char why[96];
    if (o->unknown || (o->present & ~asked))
        bad = "an option we did not ask for";
    else if (o->malformed)
        bad = "an option value that is not a number";
    else if ((o->present & TFTP_OPT_BLKSIZE) && (o->blksize < TFTP_BLKSIZE_MIN || o->blksize > p->blksize)) {
        snprintf(why, sizeof(why), "blksize %llu (asked %u)", (unsigned long long)o->blksize, p->blksize);
        bad = why;
    } else if ((o->present & TFTP_OPT_WINDOWSIZE) && (o->windowsize < 1 || o->windowsize > p->windowsize)) {
        snprintf(why, sizeof(why), "windowsize %llu (asked %u)", (unsigned long long)o->windowsize, p->windowsize);
        bad = why;
    }
    if (bad) {
        send_error(x, &x->tid, TFTP_ERR_OPTION, "bad OACK");
        finish(x, TFTPC_PROTOCOL, "OACK with %s", bad);
        return;
    }
    x->r.blksize = (o->present & TFTP_OPT_BLKSIZE) ? (uint32_t)o->blksize : TFTP_BLKSIZE_DEFAULT;
    x->r.windowsize = (o->present & TFTP_OPT_WINDOWSIZE) ? (uint32_t)o->windowsize : 1;
    if (o->present & TFTP_OPT_TSIZE) {
        x->r.has_tsize = true;
        x->r.tsize = o->tsize;
        if (x->p.ref && x->p.ref->state == VERIFY_REF_OK && o->tsize != x->p.ref->size) {
            send_error(x, &x->tid, TFTP_ERR_UNDEF, "size mismatch");
            finish(x, TFTPC_SIZE, "tsize %llu, the local file has %llu", (unsigned long long)o->tsize,
                   (unsigned long long)x->p.ref->size);
            return;
        }
    }
    x->phase = PH_DATA;
    x->d.want_payload = x->need_bytes; /* from now on only DATA: its length is enough */
    progress(x);
    send_ack(x, 0); /* RFC 2347: ACK 0 accepts the OACK */
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* One datagram.  pkt holds min(len, cap) bytes: in the data phase without
 * verify/keep only the 4-byte header is read (MSG_TRUNC gives the length). */
static void on_packet(struct tftpc *x, const struct sockaddr_in *from, const uint8_t *pkt, size_t len, size_t cap)
{
    if (len < 4 || (x->tid_known && !same_addr(from, &x->tid)) ||
        from->sin_addr.s_addr != x->p.server.sin_addr.s_addr) {
        /* RFC 1350 §4: a packet from an unknown TID gets ERROR 5; the transfer goes on */
        x->r.strays++;
        if (len >= 4)
            send_error(x, from, TFTP_ERR_UNKNOWN_TID, NULL);
        return;
    }
    uint16_t op = (uint16_t)(pkt[0] << 8 | pkt[1]);
    uint16_t block = (uint16_t)(pkt[2] << 8 | pkt[3]);
    if (x->phase == PH_DALLY) {
        if (!x->closing && op == TFTP_OP_DATA && block == (uint16_t)x->last)
            send_to(x, &x->tid, x->pkt, x->pkt_len); /* our final ACK was lost */
        return;
    }
    if (!x->tid_known) {
        /* The answer to our RRQ is an OACK, an ERROR, or DATA 1 of at most 512
         * bytes (options ignored).  Anything else is a late packet of an older
         * transfer that used our port number: not our server's TID. */
        if (op == TFTP_OP_DATA && (block != 1 || len - 4 > TFTP_BLKSIZE_DEFAULT)) {
            x->r.strays++;
            send_error(x, from, TFTP_ERR_UNKNOWN_TID, NULL);
            return;
        }
        x->tid = *from;
        x->tid_known = true;
    }
    bool whole = len <= cap;
    switch (op) {
    case TFTP_OP_DATA:
        if (x->phase == PH_REQUEST) {
            /* no OACK: the server ignored our options (RFC 2347 allows it) */
            x->phase = PH_DATA;
            x->r.blksize = TFTP_BLKSIZE_DEFAULT;
            x->r.windowsize = 1;
            x->d.want_payload = x->need_bytes;
        }
        on_data(x, block, pkt + 4, len - 4, whole && x->need_bytes);
        return;
    case TFTP_OP_OACK:
        if (x->phase == PH_DATA) {
            if (x->last == 0)
                send_ack(x, 0); /* our ACK 0 was lost: the server resent its OACK */
            return;
        }
        if (!whole) {
            finish(x, TFTPC_PROTOCOL, "OACK of %zu bytes", len);
            return;
        }
        {
            struct tftp_packet tp;
            enum tftp_result rc = tftp_parse(pkt, len, &tp);
            if (rc != TFTP_OK) {
                send_error(x, from, TFTP_ERR_OPTION, "malformed OACK");
                finish(x, TFTPC_PROTOCOL, "malformed OACK (%s)", tftp_result_str(rc));
                return;
            }
            on_oack(x, &tp.oack);
        }
        return;
    case TFTP_OP_ERROR: {
        char msg[100] = "";
        if (whole) {
            struct tftp_packet tp;
            if (tftp_parse(pkt, len, &tp) == TFTP_OK) {
                size_t n = tp.error.msg_len < sizeof(msg) - 1 ? tp.error.msg_len : sizeof(msg) - 1;
                for (size_t i = 0; i < n; i++)
                    msg[i] = tp.error.msg[i] >= 0x20 && tp.error.msg[i] < 0x7f ? tp.error.msg[i] : '?';
                msg[n] = 0;
            }
        }
        x->r.error_code = block;
        finish(x, block == TFTP_ERR_NOT_FOUND ? TFTPC_NOT_FOUND : TFTPC_ERROR, "ERROR %u \"%s\"", block,
               msg[0] ? msg : tftp_error_text(block));
        return;
    }
    default:
        send_error(x, from, TFTP_ERR_ILLEGAL_OP, NULL);
        finish(x, TFTPC_PROTOCOL, "opcode %u from the server", op);
        return;
    }
}

/* ICMP errors (IP_RECVERR): port unreachable means nothing listens. */
static void on_err(struct ev_dgram *d, int err)
{
    struct tftpc *x = (struct tftpc *)d;
    if (err == ECONNREFUSED && x->phase == PH_REQUEST) {
        char a[64];
        inet_ntop(AF_INET, &x->p.server.sin_addr, a, sizeof(a));
        finish(x, TFTPC_REFUSED, "port unreachable: nothing listens on %s:%u", a, ntohs(x->p.server.sin_port));
    }
}

static void on_dgram(struct ev_dgram *d, const struct sockaddr_in *from, const uint8_t *buf, size_t len,
                     size_t full_len)
{
    struct tftpc *x = (struct tftpc *)d;
    if (x->closing)
        return;
    on_packet(x, from, buf, full_len, len);
}

struct tftpc *tftpc_start(const struct tftpc_params *p, tftpc_done_fn done, void *arg, char *why, size_t whylen)
{
    struct tftp_options o = {0};
    if (p->blksize) {
        o.present |= TFTP_OPT_BLKSIZE;
        o.blksize = p->blksize;
    }
    if (p->tsize)
        o.present |= TFTP_OPT_TSIZE; /* tsize 0 in a RRQ (RFC 2349) */
    if (p->windowsize > 1) {
        o.present |= TFTP_OPT_WINDOWSIZE;
        o.windowsize = p->windowsize;
    }
    uint8_t rrq[600];
    size_t rrq_len;
    enum tftp_result rc = tftp_encode_request(rrq, sizeof(rrq), TFTP_OP_RRQ, p->file, TFTP_MODE_OCTET, &o, &rrq_len);
    if (rc != TFTP_OK) {
        snprintf(why, whylen, "cannot encode a RRQ for \"%s\": %s", p->file, tftp_result_str(rc));
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
    uint32_t win = p->windowsize > 1 ? p->windowsize : 1;
    int rcv = (int)((uint64_t)win * ((p->blksize ? p->blksize : 512) + 1024) * 2);
    if (rcv > 256 * 1024 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = p->bind_addr};
    if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
        char a[64];
        inet_ntop(AF_INET, &me.sin_addr, a, sizeof(a));
        snprintf(why, whylen, "bind %s: %s", a, strerror(errno));
        close(fd);
        return NULL;
    }
    struct tftpc *x = calloc(1, sizeof(*x));
    if (!x || !(x->file = strdup(p->file))) {
        free(x);
        close(fd);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    x->p = *p;
    x->p.file = x->file;
    if (!x->p.timeout_ms)
        x->p.timeout_ms = 1000;
    if (x->p.max_timeout_ms < x->p.timeout_ms)
        x->p.max_timeout_ms = x->p.timeout_ms;
    x->done = done;
    x->arg = arg;
    x->timer.fn = on_timer;
    x->timer.owner = x;
    x->need_bytes = p->verify != VERIFY_NONE || p->keep_max > 0;
    verify_init(&x->vc, p->verify);
    x->r.blksize = p->blksize ? p->blksize : TFTP_BLKSIZE_DEFAULT;
    x->r.windowsize = 1;
    x->r.start_ns = ev_refresh();
    memcpy(x->pkt, rrq, rrq_len);
    x->pkt_len = rrq_len;
    uint64_t gap = (uint64_t)x->p.timeout_ms * EV_MS / 4;
    x->reack_gap_ns = gap < 2 * EV_MS ? 2 * EV_MS : gap > 20 * EV_MS ? 20 * EV_MS : gap;
    x->reack_last = UINT64_MAX;
    x->d.fn = on_dgram;
    x->d.err = on_err;
    x->d.closed = on_closed;
    x->d.want_payload = true; /* the answer to the RRQ: OACK, ERROR or DATA 1 */
    x->d.gro = p->udp_gro;
    if (ev_dgram_open(&x->d, fd) != EV_OK) {
        snprintf(why, whylen, "epoll: %s", strerror(errno));
        close(fd);
        free(x->file);
        free(x);
        return NULL;
    }
    g_live++;
    progress(x);
    send_to(x, &x->p.server, x->pkt, x->pkt_len);
    ev_timer_arm(&x->timer, x->rto_ns);
    return x;
}

void tftpc_abort(struct tftpc *x)
{
    if (!x || x->phase == PH_DALLY)
        return;
    x->done = NULL;
    x->phase = PH_DALLY;
    xfer_close(x);
}
