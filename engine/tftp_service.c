/* engine/tftp_service.c — TFTP on the io core: wires proto/tftp and
 * proto/tftp_send to io/.  See tftp_service.h for the service's contract.
 *
 * Shape (one service per worker, no locks):
 *  - the request socket: multishot recvmsg with IP_PKTINFO; a request is parsed,
 *    de-duplicated by client addr:port, and started, queued or refused;
 *  - a transfer: its own UDP socket (the TID, RFC 1350 §4) bound to the address
 *    the request was sent to, left unconnected so that a datagram from any other
 *    addr:port still reaches us and gets ERROR 5 while the transfer goes on
 *    (a connected socket would make the kernel answer such strays with ICMP
 *    port-unreachable instead);
 *  - read transfers: proto/tftp_send decides what to send and when; a window
 *    goes out as UDP GSO datagrams (one sendmsg of up to 64 KB, cut by the
 *    kernel into whole DATA packets), else in sendmmsg() calls of up to BATCH
 *    datagrams, each an iovec [4-byte header, pointer into the file's read-only
 *    mmap] — the bytes go from the page cache into the socket buffers, never
 *    into a per-client copy.  Retransmission timers adapt to the measured RTT
 *    (proto/tftp_send), seeded from the worker's earlier transfers, and are lazy:
 *    an ACK moves the deadline, not the timer heap.
 *    A file truncated under the mapping makes the kernel's copy fail with EFAULT
 *    (user-space reads would SIGBUS; we never read the mapping ourselves), which
 *    ends the transfer;
 *  - netascii (RFC 1350 §5; tftp-hpa's default mode) cannot point into the file:
 *    blocks are converted into a per-worker scratch buffer, from checkpoints of
 *    the encoder kept for every block of the window (pread, not the mapping);
 *  - write transfers (only with allow_write): lock-step, into a temporary file
 *    in the target's directory, renamed over the target when complete.
 *
 * Object lifetime: a transfer is ended by xfer_end() (log line, counters, slot
 * freed for the queue) and freed only once its multishot receive has delivered
 * its final completion (or, if none is in flight, from a zero-delay timer), so
 * no callback ever sees a freed transfer. */
#include "engine/tftp_service.h"
#include "engine/logbuf.h"
#include "engine/vfile.h"
#include "io/loop.h"
#include "io/sock.h"
#include "proto/tftp.h"
#include "proto/tftp_send.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64                 /* DATA datagrams per sendmmsg() */
#define NA_SCRATCH (256 * 1024)  /* netascii: converted bytes per batch */
#define NA_WINDOW_MAX 16         /* netascii keeps window + 1 encoder checkpoints */
#define WRQ_BLKSIZE_MAX 2048     /* a DATA we receive must fit one provided buffer (4 KiB) */
#define QUEUE_TTL_MS 10000       /* a waiting request whose client fell silent this long is dropped */
#define DUP_GRACE_MS 1000        /* an identical request this soon after the start is a retransmission */
#define PACE_MS 1                /* socket buffer full: try again this much later */
#define GSO_MAX_BYTES 65000      /* UDP GSO: one datagram of up to this, cut by the kernel */
#define RTO_MIN_MS 2             /* adaptive retransmission timeout floor (RFC 6298 style; a LAN RTT is ~0.1 ms:
                                  * the estimate, SRTT + 4 RTTVAR, sets the real value) */
#define DRAIN_MS 1500            /* stopping: running transfers get this long, then end */
#define DALLY_MS 1000            /* WRQ: re-acknowledge a repeated final DATA this long */
/* A client that did not send RFC 2349's timeout is assumed to retransmit within
 * this (tftp-hpa's and atftp's default).  Two rules follow from clients like
 * atftp, which answer a gap in a window with one ACK and then ignore every
 * block but the one they expect until their own timeout fires:
 *  - we never give a transfer up before two client timeouts passed without
 *    progress, whatever --tftp-timeout/--tftp-retries say;
 *  - the retransmission backoff is capped just above the client's timeout, not
 *    below it: each retransmission restarts such a client's receive timer, so a
 *    cap under its timeout would keep it from ever re-sending the lost ACK. */
#define CLIENT_TIMEOUT_S 5

static uint32_t rto_cap_ms(uint32_t client_timeout_s)
{
    uint32_t cap = client_timeout_s * 1000 + 1000;
    return cap > TFTP_SEND_RTO_MAX_MS ? cap : TFTP_SEND_RTO_MAX_MS;
}
#define RA_STEP (4u << 20)       /* readahead of mapped files, bytes per advice */
#define REQ_DRAIN_MAX 128        /* requests read straight from the request socket per turn */
#define RA_FRESH_MS 2000         /* a range advised this recently is not advised again */
#define MAP_IDLE_MAX 64          /* unreferenced mappings kept for the next request */
#define XBUCKETS 4096u           /* client addr:port hash (transfers and queue) */
#define MBUCKETS 256u            /* mapped-file hash */
#define MTU_SLOTS 8
#define MTU_TTL_MS 10000
#define PKT_MAX 600              /* OACK / ACK / ERROR we build */

/* ---- objects ---------------------------------------------------------------- */

/* A regular file mapped read-only, shared by every transfer of it in this worker.
 * Keyed by path; reused only while dev, inode, size and mtime are unchanged. */
struct tmap {
    struct tmap *hnext;
    struct tmap *inext, *iprev; /* idle list (refs == 0, still in the hash) */
    char *path;
    uint32_t hash;
    bool linked;
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    int fd;                     /* netascii reads and readahead advice */
    const uint8_t *map;         /* NULL when size == 0 */
    uint32_t refs;
    bool na_known;
    uint64_t na_size;           /* netascii size, computed on first netascii request */
    uint64_t ra_hi, ra_ms;      /* readahead: [0, ra_hi) advised since ra_ms */
};

/* What a read transfer sends: a mapped file or a virtual file. */
struct src {
    const uint8_t *data;
    uint64_t size;              /* raw bytes */
    int fd;                     /* -1: read data directly (virtual file) */
    struct tmap *map;
    struct vfile *vf;
};

enum xkind { X_READ, X_WRITE };
enum xstate { XS_RUNNING, XS_DALLY, XS_CLOSING };

struct xfer {
    struct xfer *hnext;          /* peer hash */
    struct xfer *anext, *aprev;  /* every allocated transfer */
    struct tftp_service *svc;
    enum xkind kind;
    enum xstate state;
    bool in_cb;
    int fd;
    struct io_op recv_op;
    struct io_timer timer, pace;
    struct sockaddr_in peer;
    uint64_t key;
    uint32_t sig;                /* hash of the request datagram */
    uint64_t started_ms;
    enum tftp_mode mode;
    uint32_t blksize, window;
    char name[TFTP_FILENAME_MAX + 1];
    /* read */
    struct src src;
    bool virt;
    struct tftp_send tx;
    uint8_t oack[PKT_MAX];
    size_t oack_len;
    uint64_t tx_next, tx_end;    /* blocks still to put on the wire: [tx_next, tx_end) */
    uint64_t due_ms;             /* read: when the retransmission timer is due (lazy timer) */
    uint64_t timer_at;           /* read: when the io timer, if armed, fires */
    bool deferred;               /* read: a timeout was put off for a datagram already queued */
    bool no_gso;                 /* read: UDP GSO refused for this transfer's block size */
    uint64_t ra_next;
    struct tftp_netascii_enc *cp; /* netascii: checkpoint of block k at cp[k % (window + 1)] */
    uint64_t na_hi;              /* highest block whose checkpoint is valid */
    /* write */
    int dirfd, wfd;
    char tmpname[64];
    char base[TFTP_FILENAME_MAX + 1];
    uint64_t expect;             /* next DATA block, 64-bit (wire: low 16 bits) */
    uint64_t wbytes;
    uint32_t rto, tries, retrans;
    uint64_t idle_ms;            /* timer time without progress */
    uint32_t client_timeout_s;
    uint8_t last[PKT_MAX];       /* last ACK/OACK sent, resent on timeout */
    size_t last_len;
    struct tftp_netascii_dec dec;
    struct xfer *next_free;
};

/* A request waiting for a free transfer slot. */
struct qreq {
    struct qreq *hnext, *next;
    struct sockaddr_in peer;
    uint64_t key;
    uint32_t local;              /* network order */
    int ifindex;
    uint64_t last_ms;
    uint8_t *pkt;
    size_t len;
};

struct mtu_slot {
    int ifindex;
    uint32_t mtu;
    uint64_t checked_ms;
};

struct tftp_service {
    struct io_loop *loop;
    struct tftp_service_config cfg;
    int fd, root_fd;
    uint16_t port;
    struct io_op req_op;
    bool draining, pumping;
    bool gso_off;                /* the kernel refused UDP_SEGMENT once: sendmmsg only */
    struct io_timer drain_timer; /* a drain's deadline: what still runs then is ended */
    bool rtt_known;              /* RTT of this worker's finished read transfers (seeds new ones) */
    uint32_t rtt_srtt_x8, rtt_var_x4;
    struct xfer *xh[XBUCKETS];
    struct xfer *all, *free_list;
    unsigned open;               /* allocated, not yet freed */
    struct qreq *qh[XBUCKETS];
    struct qreq *qhead, *qtail;
    unsigned qlen;
    struct tmap *mh[MBUCKETS];
    struct tmap *idle_head, *idle_tail;
    unsigned idle;
    uint16_t port_hint;
    uint32_t wseq;
    struct mtu_slot mtus[MTU_SLOTS];
    unsigned mtu_next;
    /* sendmmsg scratch: used and done with inside one call */
    struct mmsghdr msgs[BATCH];
    struct iovec iov[2 * BATCH];
    uint8_t hdr[BATCH][TFTP_HDR_LEN];
    uint8_t *na_out, *na_in;     /* netascii scratch, allocated on first use */
    struct tftp_service_stats st;
    struct logbuf log;
};

static void xfer_end(struct xfer *x, const char *outcome, uint64_t *counter);
static void read_flush(struct xfer *x);
static void pump_queue(struct tftp_service *s);

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t now_ms(const struct tftp_service *s) { return io_loop_now_ms(s->loop); }

static uint64_t peer_key(const struct sockaddr_in *p)
{
    return (uint64_t)p->sin_addr.s_addr << 16 | p->sin_port;
}

static unsigned key_bucket(uint64_t key) { return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 52) % XBUCKETS; }

static uint32_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* A file name as the client sent it, made safe for a log line. */
static void log_name(char *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = (c < 0x20 || c == 0x7f || c == '"') ? '?' : (char)c;
    }
    out[o] = 0;
}

/* ---- log: buffered per worker, written from the idle hook ----------------------- */

static void log_line(struct tftp_service *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(struct tftp_service *s, const char *fmt, ...)
{
    if (s->cfg.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    logbuf_vprintf(&s->log, fmt, ap);
    va_end(ap);
}

void tftp_service_flush_log(struct tftp_service *s)
{
    logbuf_flush(&s->log);
}

void tftp_service_idle(struct tftp_service *s)
{
    if (!s->draining)
        io_recvmsg_drain(s->loop, &s->req_op, REQ_DRAIN_MAX);
    tftp_service_flush_log(s);
}

/* ---- mapped files --------------------------------------------------------------- */

static void map_destroy(struct tmap *m)
{
    if (m->map)
        munmap((void *)m->map, m->size);
    if (m->fd >= 0)
        close(m->fd);
    free(m->path);
    free(m);
}

static void idle_remove(struct tftp_service *s, struct tmap *m)
{
    if (m->iprev)
        m->iprev->inext = m->inext;
    else
        s->idle_head = m->inext;
    if (m->inext)
        m->inext->iprev = m->iprev;
    else
        s->idle_tail = m->iprev;
    m->inext = m->iprev = NULL;
    s->idle--;
}

static void map_unlink(struct tftp_service *s, struct tmap *m)
{
    struct tmap **pp = &s->mh[m->hash % MBUCKETS];
    while (*pp && *pp != m)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = m->hnext;
    m->hnext = NULL;
    m->linked = false;
}

static void map_release(struct tftp_service *s, struct tmap *m)
{
    if (--m->refs)
        return;
    if (!m->linked) { /* replaced by a newer version of the file */
        map_destroy(m);
        return;
    }
    m->iprev = s->idle_tail; /* keep it for the next request, within a bound */
    m->inext = NULL;
    if (s->idle_tail)
        s->idle_tail->inext = m;
    else
        s->idle_head = m;
    s->idle_tail = m;
    s->idle++;
    while (s->idle > MAP_IDLE_MAX) {
        struct tmap *old = s->idle_head;
        io_flush(s->loop);
        idle_remove(s, old);
        map_unlink(s, old);
        map_destroy(old);
    }
}

/* Takes ownership of fd (an open regular file with stat st).  Returns a
 * referenced mapping or NULL (-errno in *err). */
static struct tmap *map_get(struct tftp_service *s, const char *path, int fd, const struct stat *st, int *err)
{
    uint32_t h = fnv1a(path, strlen(path));
    int64_t mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    for (struct tmap *m = s->mh[h % MBUCKETS]; m; m = m->hnext) {
        if (m->hash != h || strcmp(m->path, path) != 0)
            continue;
        if (m->dev == (uint64_t)st->st_dev && m->ino == (uint64_t)st->st_ino &&
            m->size == (uint64_t)st->st_size && m->mtime_ns == mtime_ns) {
            close(fd);
            if (m->refs++ == 0)
                idle_remove(s, m);
            return m;
        }
        /* the file changed: new requests get the new version, holders keep theirs */
        map_unlink(s, m);
        if (m->refs == 0) {
            idle_remove(s, m);
            map_destroy(m);
        }
        break;
    }
    struct tmap *m = calloc(1, sizeof(*m));
    if (!m || !(m->path = strdup(path))) {
        free(m);
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    m->fd = fd;
    m->hash = h;
    m->dev = (uint64_t)st->st_dev;
    m->ino = (uint64_t)st->st_ino;
    m->size = (uint64_t)st->st_size;
    m->mtime_ns = mtime_ns;
    if (m->size) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            *err = -errno;
            m->map = NULL;
            map_destroy(m);
            return NULL;
        }
        madvise(p, m->size, MADV_SEQUENTIAL);
        m->map = p;
    }
    m->refs = 1;
    m->linked = true;
    m->hnext = s->mh[h % MBUCKETS];
    s->mh[h % MBUCKETS] = m;
    return m;
}

/* Converted (netascii) size of a mapped file, read with pread: computed once. */
static int map_na_size(struct tftp_service *s, struct tmap *m, uint64_t *out)
{
    if (!m->na_known) {
        uint8_t buf[65536];
        uint64_t total = 0;
        for (uint64_t off = 0; off < m->size;) {
            ssize_t n = pread(m->fd, buf, sizeof(buf), (off_t)off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return n < 0 ? -errno : -EIO;
            total += tftp_netascii_size(buf, (size_t)n);
            off += (uint64_t)n;
        }
        m->na_size = total;
        m->na_known = true;
    }
    (void)s;
    *out = m->na_size;
    return 0;
}

static void src_release(struct tftp_service *s, struct src *src)
{
    /* a lock-step DATA queued this turn may point into what is freed here */
    if (src->vf || (src->map && src->map->refs == 1 && !src->map->linked))
        io_flush(s->loop);
    if (src->map)
        map_release(s, src->map);
    vfile_unref(src->vf);
    memset(src, 0, sizeof(*src));
    src->fd = -1;
}

/* ---- interface MTU (blksize cap, RFC 2348 / 7440 practice) -------------------- */

static uint32_t iface_mtu(struct tftp_service *s, int ifindex)
{
    if (ifindex <= 0)
        return 0;
    uint64_t now = now_ms(s);
    for (unsigned i = 0; i < MTU_SLOTS; i++)
        if (s->mtus[i].ifindex == ifindex && now - s->mtus[i].checked_ms < MTU_TTL_MS)
            return s->mtus[i].mtu;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    uint32_t mtu = 0;
    if (if_indextoname((unsigned)ifindex, ifr.ifr_name) && ioctl(s->fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
        mtu = (uint32_t)ifr.ifr_mtu;
    struct mtu_slot *slot = &s->mtus[s->mtu_next++ % MTU_SLOTS];
    *slot = (struct mtu_slot){.ifindex = ifindex, .mtu = mtu, .checked_ms = now};
    return mtu;
}

/* ---- sending single packets --------------------------------------------------- */

/* From the request socket, with the source address the client sent to (a reply
 * from another local address would be dropped by the client). */
static void listener_send(struct tftp_service *s, const struct sockaddr_in *to, uint32_t local, const void *pkt,
                          size_t len)
{
    struct iovec iov = {(void *)pkt, len};
    union {
        char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } cm;
    struct msghdr m = {.msg_name = (void *)to, .msg_namelen = sizeof(*to), .msg_iov = &iov, .msg_iovlen = 1};
    if (local) {
        memset(&cm, 0, sizeof(cm));
        m.msg_control = cm.buf;
        m.msg_controllen = sizeof(cm.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        struct in_pktinfo pi = {.ipi_spec_dst.s_addr = local};
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
    ssize_t n = sendmsg(s->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n; /* a lost reply is a lost datagram: the client retransmits */
}

static void count_error(struct tftp_service *s, uint16_t code)
{
    switch (code) {
    case TFTP_ERR_NOT_FOUND: s->st.err_not_found++; break;
    case TFTP_ERR_ACCESS: s->st.err_access++; break;
    case TFTP_ERR_ILLEGAL_OP: s->st.err_illegal++; break;
    case TFTP_ERR_UNKNOWN_TID: s->st.err_unknown_tid++; break;
    default: s->st.err_other++; break;
    }
}

/* msg NULL: the RFC text.  Never a server path (clients print it). */
static void listener_error(struct tftp_service *s, const struct sockaddr_in *to, uint32_t local, uint16_t code,
                           const char *msg)
{
    uint8_t pkt[PKT_MAX];
    size_t len;
    if (tftp_encode_error(pkt, sizeof(pkt), code, msg, &len) == TFTP_OK)
        listener_send(s, to, local, pkt, len);
}

static void xfer_sendto(struct xfer *x, const struct sockaddr_in *to, const void *pkt, size_t len)
{
    ssize_t n = sendto(x->fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)to, sizeof(*to));
    (void)n; /* lost like any datagram: our timer or the client's repairs it */
}

static void xfer_error(struct xfer *x, const struct sockaddr_in *to, uint16_t code, const char *msg)
{
    uint8_t pkt[PKT_MAX];
    size_t len;
    if (tftp_encode_error(pkt, sizeof(pkt), code, msg, &len) == TFTP_OK)
        xfer_sendto(x, to, pkt, len);
    count_error(x->svc, code);
}

/* ---- transfer lifetime ----------------------------------------------------------- */

static void xhash_insert(struct tftp_service *s, struct xfer *x)
{
    unsigned b = key_bucket(x->key);
    x->hnext = s->xh[b];
    s->xh[b] = x;
}

static void xhash_remove(struct tftp_service *s, struct xfer *x)
{
    struct xfer **pp = &s->xh[key_bucket(x->key)];
    while (*pp && *pp != x)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = x->hnext;
    x->hnext = NULL;
}

static struct xfer *xhash_find(struct tftp_service *s, uint64_t key)
{
    for (struct xfer *x = s->xh[key_bucket(key)]; x; x = x->hnext)
        if (x->key == key)
            return x;
    return NULL;
}

static struct xfer *xfer_alloc(struct tftp_service *s)
{
    struct xfer *x = s->free_list;
    if (x)
        s->free_list = x->next_free;
    else if (!(x = malloc(sizeof(*x))))
        return NULL;
    memset(x, 0, sizeof(*x));
    x->svc = s;
    x->fd = x->dirfd = x->wfd = -1;
    x->src.fd = -1;
    x->recv_op.owner = x->timer.owner = x->pace.owner = x;
    x->anext = s->all;
    if (s->all)
        s->all->aprev = x;
    s->all = x;
    s->open++;
    return x;
}

static void write_cleanup(struct xfer *x)
{
    if (x->wfd >= 0)
        close(x->wfd);
    x->wfd = -1;
    if (x->tmpname[0] && x->dirfd >= 0)
        unlinkat(x->dirfd, x->tmpname, 0); /* not completed: no partial file is left */
    x->tmpname[0] = 0;
    if (x->dirfd >= 0)
        close(x->dirfd);
    x->dirfd = -1;
}

static void xfer_free(struct xfer *x)
{
    struct tftp_service *s = x->svc;
    io_timer_cancel(s->loop, &x->timer);
    io_timer_cancel(s->loop, &x->pace);
    if (x->fd >= 0)
        close(x->fd);
    src_release(s, &x->src);
    write_cleanup(x);
    free(x->cp);
    if (x->aprev)
        x->aprev->anext = x->anext;
    else
        s->all = x->anext;
    if (x->anext)
        x->anext->aprev = x->aprev;
    s->open--;
    x->next_free = s->free_list;
    s->free_list = x;
}

static void on_reap(struct io_timer *t) { xfer_free(t->owner); }

/* The done hook's outcome, from the counter xfer_end was given. */
static enum tftp_done_outcome done_outcome(const struct tftp_service *s, const uint64_t *counter)
{
    if (counter == &s->st.done)
        return TFTP_DONE_COMPLETE;
    if (counter == &s->st.done_unacked)
        return TFTP_DONE_UNACKED;
    if (counter == &s->st.aborted)
        return TFTP_DONE_CLIENT_ABORT;
    if (counter == &s->st.timeouts)
        return TFTP_DONE_TIMEOUT;
    if (counter == &s->st.superseded)
        return TFTP_DONE_SUPERSEDED;
    return TFTP_DONE_FAILED;
}

/* Ends a transfer: log line, counters, its slot goes to the next waiting request.
 * Frees nothing itself (see the file comment), so callers may still look at x. */
static void xfer_end(struct xfer *x, const char *outcome, uint64_t *counter)
{
    struct tftp_service *s = x->svc;
    if (x->state == XS_CLOSING)
        return;
    x->state = XS_CLOSING;
    xhash_remove(s, x);
    io_timer_cancel(s->loop, &x->pace);
    if (counter)
        (*counter)++;
    char a[48];
    sock_addr_str(&x->peer, a, sizeof(a));
    uint64_t ms = now_ms(s) - x->started_ms;
    if (x->kind == X_READ) {
        uint64_t bytes = x->tx.acked >= x->tx.nblocks ? x->tx.cfg.size : x->tx.acked * x->blksize;
        s->st.bytes += bytes;
        s->st.blocks_sent += x->tx.blocks_sent;
        s->st.retransmits += x->tx.blocks_resent;
        log_line(s, "tftp %s RRQ \"%s\"%s bytes=%llu blksize=%u window=%u ms=%llu retransmits=%llu timeouts=%u %s\n",
                 a, x->name, x->virt ? " (virtual)" : "", (unsigned long long)bytes, x->blksize, x->window,
                 (unsigned long long)ms, (unsigned long long)x->tx.blocks_resent, x->tx.timeouts, outcome);
    } else {
        s->st.bytes += x->wbytes;
        s->st.retransmits += x->retrans;
        log_line(s, "tftp %s WRQ \"%s\" bytes=%llu blksize=%u window=1 ms=%llu retransmits=%u %s\n", a, x->name,
                 (unsigned long long)x->wbytes, x->blksize, (unsigned long long)ms, x->retrans, outcome);
    }
    if (s->cfg.on_done) { /* once per transfer: the tracker records failures and bytes */
        struct tftp_done_info d = {
            .client_ip = x->peer.sin_addr.s_addr, .client_port = ntohs(x->peer.sin_port), .path = x->name,
            .write = x->kind == X_WRITE, .outcome = done_outcome(s, counter), .reason = outcome,
            .blksize = x->blksize, .window = x->window, .ms = ms, .bytes = x->wbytes};
        if (x->kind == X_READ) {
            d.bytes = x->tx.acked >= x->tx.nblocks ? x->tx.cfg.size : x->tx.acked * x->blksize;
            d.size = x->tx.cfg.size;
            d.oack = x->tx.cfg.oack;
            d.error_code = x->tx.error_code;
        }
        s->cfg.on_done(s->cfg.done_ctx, &d);
    }
    s->st.active--;
    if (io_op_busy(&x->recv_op)) {
        io_timer_cancel(s->loop, &x->timer);
        io_cancel(s->loop, &x->recv_op); /* freed on its final completion */
    } else if (!x->in_cb) {
        x->timer.fn = on_reap; /* nothing in flight: free on the next turn */
        io_timer_arm(s->loop, &x->timer, 0);
    }
    pump_queue(s);
}

/* ---- read transfers ----------------------------------------------------------------- */

static const char *send_outcome_text(const struct xfer *x, char *buf, size_t cap)
{
    if (x->tx.outcome == TFTP_SEND_ABORTED) {
        snprintf(buf, cap, "client aborted (ERROR %u)", x->tx.error_code);
        return buf;
    }
    return tftp_send_outcome_str(x->tx.outcome);
}

/* Folds a finished transfer's RTT estimate into the worker's (weight 1/4), which
 * seeds the next transfers: a 40 KiB loader is over after two windows, too few
 * samples to learn the path (and the load) on its own. */
static void rtt_fold(struct tftp_service *s, const struct tftp_send *tx)
{
    if (!tx->have_rtt)
        return;
    if (!s->rtt_known) {
        s->rtt_srtt_x8 = tx->srtt_x8;
        s->rtt_var_x4 = tx->rttvar_x4;
        s->rtt_known = true;
        return;
    }
    uint32_t d8 = tx->srtt_x8 > s->rtt_srtt_x8 ? tx->srtt_x8 - s->rtt_srtt_x8 : s->rtt_srtt_x8 - tx->srtt_x8;
    uint32_t v = tx->rttvar_x4 > d8 / 2 ? tx->rttvar_x4 : d8 / 2; /* x4 */
    s->rtt_srtt_x8 = s->rtt_srtt_x8 - s->rtt_srtt_x8 / 4 + tx->srtt_x8 / 4;
    s->rtt_var_x4 = s->rtt_var_x4 - s->rtt_var_x4 / 4 + v / 4;
}

static void read_finished(struct xfer *x)
{
    struct tftp_service *s = x->svc;
    if (x->tx.outcome == TFTP_SEND_DONE)
        rtt_fold(s, &x->tx);
    char buf[48];
    uint64_t *ctr = &s->st.failed;
    switch (x->tx.outcome) {
    case TFTP_SEND_DONE: ctr = &s->st.done; break;
    case TFTP_SEND_DONE_UNACKED: ctr = &s->st.done_unacked; break;
    case TFTP_SEND_ABORTED: ctr = &s->st.aborted; break;
    case TFTP_SEND_TIMEOUT: ctr = &s->st.timeouts; break;
    case TFTP_SEND_RUNNING: break;
    }
    xfer_end(x, send_outcome_text(x, buf, sizeof(buf)), ctr);
}

static void read_fail(struct xfer *x, const char *why)
{
    xfer_error(x, &x->peer, TFTP_ERR_UNDEF, why);
    xfer_end(x, why, &x->svc->st.failed);
}

static void read_apply(struct xfer *x, const struct tftp_send_actions *a)
{
    struct tftp_service *s = x->svc;
    if (a->send_oack) {
        /* with the loop's next submission (copied: x may be reused before it) */
        if (x->oack_len > IO_DGRAM_HEAD_MAX ||
            io_send_datagram(s->loop, x->fd, &x->peer, x->oack, x->oack_len, NULL, 0) < 0)
            xfer_sendto(x, &x->peer, x->oack, x->oack_len);
    }
    if (a->count) {
        /* The new range covers everything still worth sending: blocks below
         * a->first are acknowledged, and a range never shrinks at the top. */
        x->tx_next = a->first;
        x->tx_end = a->first + a->count;
        read_flush(x);
        if (x->state != XS_RUNNING)
            return;
    }
    if (a->timer == TFTP_SEND_TIMER_ARM) {
        /* Lazy: progress in lock-step re-arms on every ACK; only the deadline
         * moves, and the io timer is touched when it fires early (on_xfer_timer)
         * or must fire sooner — not once per packet. */
        x->due_ms = now_ms(s) + a->timer_ms;
        x->deferred = false;
        if (!io_timer_armed(&x->timer) || x->timer_at > x->due_ms) {
            io_timer_arm(s->loop, &x->timer, a->timer_ms);
            x->timer_at = x->due_ms;
        }
    } else if (a->timer == TFTP_SEND_TIMER_STOP) {
        x->due_ms = 0;
        io_timer_cancel(s->loop, &x->timer);
    }
    if (a->outcome != TFTP_SEND_RUNNING)
        read_finished(x);
}

/* Netascii block j into out (blksize bytes of room), from the checkpoint of j;
 * stores the checkpoint of j + 1.  Returns the bytes, or -errno. */
static long na_block(struct xfer *x, uint64_t j, uint8_t *out)
{
    struct tftp_service *s = x->svc;
    uint64_t w1 = (uint64_t)x->window + 1;
    struct tftp_netascii_enc st = x->cp[j % w1];
    uint64_t left = st.in_pos < x->src.size ? x->src.size - st.in_pos : 0;
    size_t want = left < x->blksize ? (size_t)left : x->blksize;
    const uint8_t *in = NULL;
    if (want && x->src.fd < 0) {
        in = x->src.data + st.in_pos;
    } else if (want) {
        ssize_t n;
        do
            n = pread(x->src.fd, s->na_in, want, (off_t)st.in_pos);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return -errno;
        want = (size_t)n;
        in = s->na_in;
    }
    size_t used;
    size_t n = tftp_netascii_encode(&st, in, want, out, x->blksize, &used);
    x->cp[(j + 1) % w1] = st;
    if (j + 1 > x->na_hi)
        x->na_hi = j + 1;
    return (long)n;
}

static void xfer_readahead(struct xfer *x);

/* Fills s->msgs with DATA blocks from x->tx_next; returns how many (0: the file
 * no longer matches what was announced — changed under us). */
static unsigned build_batch(struct xfer *x)
{
    struct tftp_service *s = x->svc;
    unsigned n = 0;
    size_t na_used = 0;
    for (uint64_t k = x->tx_next; k < x->tx_end && n < BATCH; k++, n++) {
        uint32_t len = tftp_send_block_len(&x->tx, k);
        size_t hl;
        tftp_encode_data_header(s->hdr[n], TFTP_HDR_LEN, tftp_send_block_wire(k), &hl);
        struct iovec *iov = &s->iov[2 * n];
        iov[0] = (struct iovec){s->hdr[n], TFTP_HDR_LEN};
        size_t iovlen = 1;
        if (x->mode == TFTP_MODE_NETASCII) {
            if (na_used + x->blksize > NA_SCRATCH)
                break;
            /* a block ahead of the checkpoints (paced sends, a client acknowledging
             * blocks it cannot have) is reached by encoding forward */
            while (x->na_hi < k)
                if (na_block(x, x->na_hi, s->na_out + na_used) < 0)
                    return 0;
            long got = na_block(x, k, s->na_out + na_used);
            if (got < 0 || (uint32_t)got != len)
                return 0;
            if (len) {
                iov[1] = (struct iovec){s->na_out + na_used, len};
                iovlen = 2;
            }
            na_used += len;
        } else if (len) {
            iov[1] = (struct iovec){(void *)(x->src.data + tftp_send_block_offset(&x->tx, k)), len};
            iovlen = 2;
        }
        s->msgs[n].msg_hdr = (struct msghdr){.msg_name = &x->peer, .msg_namelen = sizeof(x->peer),
                                             .msg_iov = iov, .msg_iovlen = iovlen};
        s->msgs[n].msg_len = 0;
    }
    xfer_readahead(x);
    return n;
}

/* keep the page cache ahead of the window, so a send rarely waits for the disk */
static void xfer_readahead(struct xfer *x)
{
    if (x->src.map && x->mode == TFTP_MODE_OCTET && x->ra_next < x->src.size) {
        uint64_t hi = tftp_send_block_offset(&x->tx, x->tx_end) + RA_STEP;
        if (hi > x->ra_next) {
            struct tmap *m = x->src.map;
            uint64_t len = x->src.size - x->ra_next < RA_STEP ? x->src.size - x->ra_next : RA_STEP;
            /* a step another transfer of this mapping advised lately is skipped:
             * 200 clients of one loader make one madvise, not 200 */
            uint64_t now = now_ms(x->svc), end = x->ra_next + len;
            bool fresh = now - m->ra_ms <= RA_FRESH_MS;
            if (!fresh || end > m->ra_hi) {
                madvise((void *)(x->src.data + x->ra_next), len, MADV_WILLNEED);
                if (!fresh) {
                    m->ra_hi = 0;
                    m->ra_ms = now;
                }
                if (end > m->ra_hi)
                    m->ra_hi = end;
            }
            x->ra_next += RA_STEP;
        }
    }
}

/* UDP GSO (UDP_SEGMENT, Linux 4.18): up to GSO_MAX_BYTES of a window in one
 * sendmsg, which the kernel cuts into datagrams of exactly 4 + blksize bytes
 * (the last may be shorter: the file's final block).  The iovec interleaves each
 * block's 4-byte header with its bytes in the mapping, so every segment is a
 * whole DATA packet; the stack is walked once per call instead of once per
 * block.  Octet mode only.  Returns the blocks sent, 0 when GSO does not apply
 * or the kernel refuses it (then not again for this transfer, or for this
 * worker), -1 when the send failed (errno). */
static int gso_flush(struct xfer *x)
{
    struct tftp_service *s = x->svc;
    uint32_t seg = TFTP_HDR_LEN + x->blksize;
    uint64_t n = x->tx_end - x->tx_next, max = GSO_MAX_BYTES / seg;
    if (max > BATCH)
        max = BATCH;
    if (n > max)
        n = max;
    if (s->gso_off || x->no_gso || x->mode != TFTP_MODE_OCTET || !x->src.data || n < 2)
        return 0;
    size_t iovn = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = x->tx_next + i;
        uint32_t len = tftp_send_block_len(&x->tx, k);
        size_t hl;
        tftp_encode_data_header(s->hdr[i], TFTP_HDR_LEN, tftp_send_block_wire(k), &hl);
        s->iov[iovn++] = (struct iovec){s->hdr[i], TFTP_HDR_LEN};
        if (len)
            s->iov[iovn++] = (struct iovec){(void *)(x->src.data + tftp_send_block_offset(&x->tx, k)), len};
        if (len < x->blksize) { /* only the file's last block is short: it ends the datagram */
            n = i + 1;
            break;
        }
    }
    if (n < 2)
        return 0;
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof(cm));
    struct msghdr m = {.msg_name = &x->peer, .msg_namelen = sizeof(x->peer), .msg_iov = s->iov,
                       .msg_iovlen = iovn, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso = (uint16_t)seg;
    memcpy(CMSG_DATA(c), &gso, sizeof(gso));
    xfer_readahead(x);
    ssize_t r = sendmsg(x->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0)
        return (int)n;
    if (errno == EINVAL || errno == EMSGSIZE) { /* segments larger than the route's MTU */
        x->no_gso = true;
        return 0;
    }
    if (errno == EIO || errno == EOPNOTSUPP || errno == ENOPROTOOPT) {
        s->gso_off = true; /* no GSO here (old kernel, xfrm, no checksum offload) */
        return 0;
    }
    return -1;
}

static void on_pace(struct io_timer *t)
{
    struct xfer *x = t->owner;
    if (x->state == XS_RUNNING)
        read_flush(x);
}

/* Sends [tx_next, tx_end) in batches.  A full socket buffer parks the rest for
 * PACE_MS; other send errors count as loss, which the retransmission timer repairs. */
static void read_flush(struct xfer *x)
{
    struct tftp_service *s = x->svc;
    if (io_timer_armed(&x->pace))
        return;
    while (x->tx_next < x->tx_end) {
        int g = gso_flush(x);
        if (g > 0) {
            x->tx_next += (uint64_t)g;
            continue;
        }
        unsigned n = g < 0 ? 0 : build_batch(x);
        if (g == 0 && !n) {
            read_fail(x, "File changed on the server");
            return;
        }
        int sent;
        if (g < 0)
            sent = -1;
        else if (n == 1 && x->mode == TFTP_MODE_OCTET) {
            /* lock-step: one block per ACK, queued for the loop's next submission
             * (no syscall of its own on io_uring).  Octet blocks point into the
             * file's mapping, which outlives the turn; netascii's scratch does not. */
            const struct iovec *iov = s->msgs[0].msg_hdr.msg_iov;
            int rc = io_send_datagram(s->loop, x->fd, &x->peer, iov[0].iov_base, iov[0].iov_len,
                                      s->msgs[0].msg_hdr.msg_iovlen > 1 ? iov[1].iov_base : NULL,
                                      s->msgs[0].msg_hdr.msg_iovlen > 1 ? iov[1].iov_len : 0);
            if (rc < 0)
                errno = -rc;
            sent = rc < 0 ? -1 : 1;
        } else if (n == 1)
            sent = sendmsg(x->fd, &s->msgs[0].msg_hdr, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -1 : 1;
        else
            sent = sendmmsg(x->fd, s->msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == ENOBUFS) {
                io_timer_arm(s->loop, &x->pace, PACE_MS);
                return;
            }
            if (errno == EFAULT) { /* the mapping reaches past a truncated file */
                read_fail(x, "File changed on the server");
                return;
            }
            x->tx_next = x->tx_end;
            return;
        }
        x->tx_next += (uint64_t)sent;
        if ((unsigned)sent < n) {
            io_timer_arm(s->loop, &x->pace, PACE_MS);
            return;
        }
    }
}

static void read_on_packet(struct xfer *x, const struct tftp_packet *p)
{
    struct tftp_send_actions a;
    tftp_send_set_now(&x->tx, now_ms(x->svc));
    if (p->op == TFTP_OP_ACK)
        tftp_send_on_ack(&x->tx, p->ack.block, &a);
    else if (p->op == TFTP_OP_ERROR)
        tftp_send_on_error(&x->tx, p->error.code, &a);
    else {
        x->svc->st.stray++;
        return;
    }
    read_apply(x, &a);
}

/* ---- write transfers ----------------------------------------------------------------- */

static void write_send_last(struct xfer *x) { xfer_sendto(x, &x->peer, x->last, x->last_len); }

static void write_fail(struct xfer *x, uint16_t code, const char *msg, const char *outcome)
{
    xfer_error(x, &x->peer, code, msg);
    write_cleanup(x);
    xfer_end(x, outcome, &x->svc->st.failed);
}

static bool write_bytes(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void write_on_data(struct xfer *x, const struct tftp_packet *p)
{
    struct tftp_service *s = x->svc;
    uint16_t want = (uint16_t)x->expect;
    if (p->data.block != want) {
        if (p->data.block == (uint16_t)(want - 1)) { /* our ACK was lost: say it again */
            x->retrans++;
            write_send_last(x);
        }
        return;
    }
    if (x->state == XS_DALLY)
        return;
    if (p->data.len > x->blksize) {
        write_fail(x, TFTP_ERR_ILLEGAL_OP, "Block larger than negotiated", "failed: block too large");
        return;
    }
    bool ok;
    if (x->mode == TFTP_MODE_NETASCII) {
        uint8_t out[WRQ_BLKSIZE_MAX + 2];
        size_t n = tftp_netascii_decode(&x->dec, p->data.data, p->data.len, out);
        if (p->data.len < x->blksize)
            n += tftp_netascii_decode_finish(&x->dec, out + n);
        ok = write_bytes(x->wfd, out, n);
    } else {
        ok = write_bytes(x->wfd, p->data.data, p->data.len);
    }
    if (!ok) {
        bool full = errno == ENOSPC || errno == EDQUOT;
        write_fail(x, full ? TFTP_ERR_DISK_FULL : TFTP_ERR_UNDEF, full ? NULL : "Write error",
                   full ? "failed: disk full" : "failed: write error");
        return;
    }
    x->wbytes += p->data.len;
    bool last = p->data.len < x->blksize;
    if (last) {
        /* complete: the file appears under its name only now, whole */
        int rc = close(x->wfd);
        x->wfd = -1;
        if (rc < 0 || renameat(x->dirfd, x->tmpname, x->dirfd, x->base) < 0) {
            write_fail(x, TFTP_ERR_UNDEF, "Write error", "failed: cannot store the file");
            return;
        }
        x->tmpname[0] = 0;
    }
    size_t len;
    tftp_encode_ack(x->last, sizeof(x->last), p->data.block, &len);
    x->last_len = len;
    write_send_last(x);
    x->expect++;
    x->tries = 0;
    x->idle_ms = 0;
    x->rto = s->cfg.timeout_ms;
    if (last) {
        /* dally (RFC 1350 §6): our final ACK may be lost; answer a repeated last DATA */
        x->state = XS_DALLY;
        io_timer_arm(s->loop, &x->timer, DALLY_MS);
        return;
    }
    io_timer_arm(s->loop, &x->timer, x->rto);
}

static void write_on_packet(struct xfer *x, const struct tftp_packet *p)
{
    if (p->op == TFTP_OP_DATA) {
        write_on_data(x, p);
    } else if (p->op == TFTP_OP_ERROR) {
        char buf[48];
        snprintf(buf, sizeof(buf), "client aborted (ERROR %u)", p->error.code);
        if (x->state == XS_DALLY) { /* the file is stored already */
            xfer_end(x, "done", &x->svc->st.done);
            return;
        }
        write_cleanup(x);
        xfer_end(x, buf, &x->svc->st.aborted);
    } else {
        x->svc->st.stray++;
    }
}

/* ---- per-transfer callbacks -------------------------------------------------------------- */

static void on_xfer_timer(struct io_timer *t)
{
    struct xfer *x = t->owner;
    struct tftp_service *s = x->svc;
    if (x->state == XS_CLOSING)
        return;
    if (x->kind == X_READ) {
        uint64_t now = now_ms(s);
        if (x->due_ms > now) { /* progress since it was armed: wait for the real deadline */
            io_timer_arm(s->loop, &x->timer, x->due_ms - now);
            x->timer_at = x->due_ms;
            return;
        }
        /* Timers run before a turn's completions: on a busy worker the ACK may
         * be waiting in the socket already.  Look once (one syscall per real
         * expiry, none per packet) and let the receive path take it rather
         * than resend a window the client has. */
        uint8_t peek[4];
        if (!x->deferred && recv(x->fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0) {
            x->deferred = true;
            x->due_ms = now + 1;
            x->timer_at = x->due_ms;
            io_timer_arm(s->loop, &x->timer, 1);
            return;
        }
        x->deferred = false;
        struct tftp_send_actions a;
        tftp_send_set_now(&x->tx, now);
        tftp_send_on_timeout(&x->tx, &a);
        read_apply(x, &a);
        return;
    }
    if (x->state == XS_DALLY) {
        xfer_end(x, "done", &s->st.done);
        return;
    }
    x->idle_ms += x->rto;
    if (++x->tries > s->cfg.retries && x->idle_ms >= (uint64_t)x->client_timeout_s * 2000) {
        write_cleanup(x);
        xfer_end(x, "timed out", &s->st.timeouts);
        return;
    }
    x->retrans++;
    write_send_last(x);
    uint32_t cap = rto_cap_ms(x->client_timeout_s);
    x->rto = x->rto > cap / 2 ? (x->rto > cap ? x->rto : cap) : x->rto * 2;
    io_timer_arm(s->loop, &x->timer, x->rto);
}

static void xfer_on_datagram(struct xfer *x, const struct io_completion *c)
{
    struct tftp_service *s = x->svc;
    if (!c->peer || c->peer->ss_family != AF_INET || c->truncated) {
        s->st.malformed++;
        return;
    }
    const struct sockaddr_in *from = (const struct sockaddr_in *)c->peer;
    struct tftp_packet p;
    enum tftp_result r = tftp_parse(c->buf, c->len, &p);
    if (from->sin_addr.s_addr != x->peer.sin_addr.s_addr || from->sin_port != x->peer.sin_port) {
        /* RFC 1350 §4: a packet for this TID from someone else gets ERROR 5 and
         * the transfer goes on.  Never answer an ERROR (no error loops). */
        if (r == TFTP_OK && p.op != TFTP_OP_ERROR)
            xfer_error(x, from, TFTP_ERR_UNKNOWN_TID, NULL);
        else
            s->st.stray++;
        return;
    }
    if (r != TFTP_OK) {
        s->st.malformed++;
        return;
    }
    if (x->kind == X_READ)
        read_on_packet(x, &p);
    else
        write_on_packet(x, &p);
}

static void on_xfer_recv(struct io_op *op, const struct io_completion *c)
{
    struct xfer *x = op->owner;
    x->in_cb = true;
    if (x->state != XS_CLOSING && c->res > 0 && c->buf)
        xfer_on_datagram(x, c);
    x->in_cb = false;
    if (c->more)
        return;
    if (x->state == XS_CLOSING) { /* the final completion: nothing refers to x any more */
        xfer_free(x);
        return;
    }
    /* the receive ended on its own (an error): start it again */
    if (io_recvmsg(x->svc->loop, &x->recv_op, x->fd) < 0)
        xfer_end(x, "failed: receive error", &x->svc->st.failed);
}

/* ---- starting transfers -------------------------------------------------------------------- */

/* What became of a request. */
enum start_result {
    START_OK,        /* a transfer runs */
    START_REFUSED,   /* answered with ERROR (or dropped as malformed) */
    START_NO_ROOM,   /* no socket or memory now: queue it or say busy */
};

struct request {
    struct sockaddr_in peer;
    uint32_t local;      /* network order: the address the client sent to */
    int ifindex;
    const uint8_t *pkt;
    size_t len;
};

static void refuse(struct tftp_service *s, const struct request *rq, const char *op, const char *name, size_t nlen,
                   uint16_t code, const char *why)
{
    listener_error(s, &rq->peer, rq->local, code, NULL);
    count_error(s, code);
    char a[48], n[TFTP_FILENAME_MAX + 1];
    sock_addr_str(&rq->peer, a, sizeof(a));
    log_name(n, sizeof(n), name, nlen);
    log_line(s, "tftp %s %s \"%s\" refused: %s (ERROR %u)\n", a, op, n, why, code);
    if (s->cfg.on_done) {
        struct tftp_done_info d = {.client_ip = rq->peer.sin_addr.s_addr, .client_port = ntohs(rq->peer.sin_port),
                                   .path = n, .write = op[0] == 'W', .error_code = code, .reason = why,
                                   .outcome = code == TFTP_ERR_NOT_FOUND ? TFTP_DONE_NOT_FOUND : TFTP_DONE_REFUSED};
        s->cfg.on_done(s->cfg.done_ctx, &d);
    }
}

static int open_beneath(int dirfd, const char *rel, uint64_t flags)
{
    struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

/* Why an open below the root failed, as a TFTP error. */
static uint16_t open_error(struct tftp_service *s, int err, const char **why)
{
    switch (err) {
    case -ENOENT:
    case -ENOTDIR:
        *why = "file not found";
        return TFTP_ERR_NOT_FOUND;
    case -EXDEV:
    case -ELOOP:
        s->st.err_traversal++;
        *why = "leaves the root";
        return TFTP_ERR_ACCESS;
    case -EACCES:
    case -EPERM:
        *why = "permission denied";
        return TFTP_ERR_ACCESS;
    default:
        *why = "cannot open";
        return TFTP_ERR_UNDEF;
    }
}

static bool no_room_errno(int e)
{
    return e == -EMFILE || e == -ENFILE || e == -ENOMEM || e == -ENOBUFS || e == -EADDRINUSE;
}

/* The transfer socket: from the port range, on the address the request came to. */
static int xfer_socket(struct tftp_service *s, const struct request *rq, int sndbuf)
{
    char err[160];
    /* DATA never exceeds the interface MTU (blksize is capped to it) */
    struct sock_udp_opts so = {.sndbuf = sndbuf, .pmtu_discover = true};
    uint32_t addr = rq->local ? rq->local : s->cfg.listen_addr;
    return sock_udp_bind_range(addr, s->cfg.ports_lo, s->cfg.ports_hi, &s->port_hint, &so, err, sizeof(err));
}

static int xfer_begin(struct tftp_service *s, struct xfer *x, const struct request *rq, uint32_t sig, int sndbuf)
{
    int fd = xfer_socket(s, rq, sndbuf);
    if (fd < 0)
        return fd;
    x->fd = fd;
    x->peer = rq->peer;
    x->key = peer_key(&rq->peer);
    x->sig = sig;
    x->started_ms = now_ms(s);
    x->state = XS_RUNNING;
    x->recv_op.fn = on_xfer_recv;
    x->timer.fn = on_xfer_timer;
    x->pace.fn = on_pace;
    int rc = io_recvmsg(s->loop, &x->recv_op, fd);
    if (rc < 0)
        return rc;
    xhash_insert(s, x);
    s->st.transfers++;
    s->st.active++;
    return 0;
}

/* Finds the content for a normalised path: the provider first, then the disk. */
static int open_source(struct tftp_service *s, const char *path, uint32_t client_ip, struct src *out, bool *virt)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    *virt = false;
    struct vfile *vf = NULL;
    if (s->cfg.vfiles && s->cfg.vfiles->open && s->cfg.vfiles->open(s->cfg.vfiles->ctx, path, client_ip, &vf) && vf) {
        out->vf = vf;
        out->data = vf->data;
        out->size = vf->size;
        *virt = true;
        s->st.vfiles++;
        return 0;
    }
    if (s->root_fd < 0)
        return -ENOENT;
    /* O_NONBLOCK: a FIFO planted in the tree must not hang the worker in open() */
    int fd = open_beneath(s->root_fd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -EACCES;
    }
    int err = 0;
    struct tmap *m = map_get(s, path, fd, &st, &err);
    if (!m)
        return err;
    out->map = m;
    out->data = m->map;
    out->size = m->size;
    out->fd = m->fd;
    return 0;
}

static enum start_result start_read(struct tftp_service *s, const struct request *rq, const struct tftp_packet *p,
                                    uint32_t sig)
{
    const struct tftp_request *r = &p->rq;
    char path[TFTP_FILENAME_MAX + 1];
    size_t plen;
    enum tftp_result nr = tftp_filename_normalize(r->filename, r->filename_len, path, sizeof(path), &plen);
    if (nr == TFTP_ETRAVERSAL) {
        s->st.err_traversal++;
        refuse(s, rq, "RRQ", r->filename, r->filename_len, TFTP_ERR_ACCESS, "traversal");
        return START_REFUSED;
    }
    if (nr != TFTP_OK) {
        refuse(s, rq, "RRQ", r->filename, r->filename_len, TFTP_ERR_NOT_FOUND, "not a file name");
        return START_REFUSED;
    }
    struct src src;
    bool virt;
    int rc = open_source(s, path, rq->peer.sin_addr.s_addr, &src, &virt);
    if (rc < 0) {
        if (no_room_errno(rc))
            return START_NO_ROOM;
        const char *why = "a directory";
        uint16_t code = TFTP_ERR_ACCESS; /* a directory: an ERROR, never an empty DATA */
        if (rc != -EISDIR)
            code = open_error(s, rc, &why);
        if (rc == -EACCES)
            why = "not a regular file or not readable";
        refuse(s, rq, "RRQ", path, plen, code, why);
        return START_REFUSED;
    }
    uint64_t size = src.size;
    if (r->mode == TFTP_MODE_NETASCII) {
        if (src.map) {
            rc = map_na_size(s, src.map, &size);
        } else {
            size = tftp_netascii_size(src.data, src.size);
            rc = 0;
        }
        if (rc == 0 && (!s->na_out || !s->na_in)) {
            free(s->na_out);
            free(s->na_in);
            s->na_out = malloc(NA_SCRATCH);
            s->na_in = malloc(TFTP_BLKSIZE_MAX);
            if (!s->na_out || !s->na_in)
                rc = -ENOMEM;
        }
        if (rc < 0) {
            src_release(s, &src);
            if (no_room_errno(rc))
                return START_NO_ROOM;
            refuse(s, rq, "RRQ", path, plen, TFTP_ERR_UNDEF, "read error");
            return START_REFUSED;
        }
    }
    struct tftp_limits lim = {
        .blksize_max = s->cfg.blksize_max,
        .blksize_mtu = 0,
        .window_max = r->mode == TFTP_MODE_NETASCII && s->cfg.window_max > NA_WINDOW_MAX ? NA_WINDOW_MAX
                                                                                       : s->cfg.window_max,
    };
    uint32_t mtu = iface_mtu(s, rq->ifindex);
    if (mtu)
        lim.blksize_mtu = tftp_blksize_for_mtu(mtu);
    struct tftp_negotiated neg;
    tftp_negotiate(TFTP_OP_RRQ, r, &lim, size, &neg);

    struct xfer *x = xfer_alloc(s);
    if (!x) {
        src_release(s, &src);
        return START_NO_ROOM;
    }
    x->kind = X_READ;
    x->mode = r->mode;
    x->src = src;
    x->virt = virt;
    x->blksize = neg.blksize;
    x->window = neg.windowsize;
    x->ra_next = 0;
    memcpy(x->name, path, plen + 1);
    struct tftp_send_config sc = {.size = size, .blksize = neg.blksize, .window = neg.windowsize,
                                  .oack = neg.oack.present != 0, .rto_ms = s->cfg.timeout_ms,
                                  .retries = s->cfg.retries,
                                  .client_timeout_s = neg.timeout_s ? neg.timeout_s : CLIENT_TIMEOUT_S,
                                  .rto_min_ms = s->cfg.timeout_ms < RTO_MIN_MS ? s->cfg.timeout_ms : RTO_MIN_MS};
    sc.rto_max_ms = rto_cap_ms(sc.client_timeout_s);
    if (sc.rto_max_ms < sc.rto_ms)
        sc.rto_max_ms = sc.rto_ms;
    bool ok = tftp_send_init(&x->tx, &sc) == TFTP_OK;
    if (ok && s->rtt_known)
        tftp_send_seed_rtt(&x->tx, s->rtt_srtt_x8, s->rtt_var_x4);
    if (ok && sc.oack)
        ok = tftp_encode_oack(x->oack, sizeof(x->oack), &neg.oack, &x->oack_len) == TFTP_OK;
    if (ok && r->mode == TFTP_MODE_NETASCII) {
        x->cp = calloc((size_t)x->window + 1, sizeof(*x->cp));
        if (!x->cp) {
            xfer_free(x);
            return START_NO_ROOM;
        }
        tftp_netascii_enc_init(&x->cp[1 % (x->window + 1)]);
        x->na_hi = 1;
    }
    if (!ok) { /* cannot happen with negotiated values; never send a broken packet */
        xfer_free(x);
        listener_error(s, &rq->peer, rq->local, TFTP_ERR_UNDEF, NULL);
        s->st.err_other++;
        return START_REFUSED;
    }
    /* room for a whole window in the socket buffer, so it goes out in one call */
    uint64_t want = (uint64_t)x->window * (x->blksize + 64) * 2;
    int sndbuf = want < 65536 ? 0 : want > (4u << 20) ? (4 << 20) : (int)want;
    rc = xfer_begin(s, x, rq, sig, sndbuf);
    if (rc < 0) {
        xfer_free(x);
        if (no_room_errno(rc))
            return START_NO_ROOM;
        refuse(s, rq, "RRQ", path, plen, TFTP_ERR_UNDEF, "no transfer socket");
        return START_REFUSED;
    }
    struct tftp_send_actions a;
    tftp_send_set_now(&x->tx, now_ms(s));
    tftp_send_start(&x->tx, &a);
    read_apply(x, &a);
    return START_OK;
}

static enum start_result start_write(struct tftp_service *s, const struct request *rq, const struct tftp_packet *p,
                                     uint32_t sig)
{
    const struct tftp_request *r = &p->rq;
    if (!s->cfg.allow_write || s->root_fd < 0) {
        refuse(s, rq, "WRQ", r->filename, r->filename_len, TFTP_ERR_ACCESS, "read-only server");
        return START_REFUSED;
    }
    char path[TFTP_FILENAME_MAX + 1];
    size_t plen;
    enum tftp_result nr = tftp_filename_normalize(r->filename, r->filename_len, path, sizeof(path), &plen);
    if (nr != TFTP_OK) {
        if (nr == TFTP_ETRAVERSAL)
            s->st.err_traversal++;
        refuse(s, rq, "WRQ", r->filename, r->filename_len, TFTP_ERR_ACCESS,
               nr == TFTP_ETRAVERSAL ? "traversal" : "not a file name");
        return START_REFUSED;
    }
    char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[TFTP_FILENAME_MAX + 1] = ".";
    if (slash)
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    int dirfd = open_beneath(s->root_fd, dir, O_PATH | O_DIRECTORY);
    if (dirfd < 0) {
        if (no_room_errno(dirfd))
            return START_NO_ROOM;
        const char *why;
        uint16_t code = open_error(s, dirfd, &why);
        refuse(s, rq, "WRQ", path, plen, code == TFTP_ERR_NOT_FOUND ? TFTP_ERR_ACCESS : code,
               code == TFTP_ERR_NOT_FOUND ? "no such directory" : why);
        return START_REFUSED;
    }
    struct stat st;
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
        close(dirfd);
        refuse(s, rq, "WRQ", path, plen, TFTP_ERR_ACCESS, "not a regular file");
        return START_REFUSED;
    }
    struct xfer *x = xfer_alloc(s);
    if (!x) {
        close(dirfd);
        return START_NO_ROOM;
    }
    x->kind = X_WRITE;
    x->dirfd = dirfd;
    snprintf(x->base, sizeof(x->base), "%s", base);
    snprintf(x->tmpname, sizeof(x->tmpname), ".tftp-upload.%d.%u.%u", (int)getpid(), s->wseq++,
             (unsigned)(uintptr_t)x & 0xffffu);
    x->wfd = openat(dirfd, x->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (x->wfd < 0) {
        int e = errno;
        x->tmpname[0] = 0;
        xfer_free(x);
        if (no_room_errno(-e))
            return START_NO_ROOM;
        bool full = e == ENOSPC || e == EDQUOT;
        refuse(s, rq, "WRQ", path, plen, full ? TFTP_ERR_DISK_FULL : TFTP_ERR_ACCESS,
               full ? "disk full" : "cannot create");
        return START_REFUSED;
    }
    struct tftp_limits lim = {.blksize_max = s->cfg.blksize_max && s->cfg.blksize_max < WRQ_BLKSIZE_MAX
                                                 ? s->cfg.blksize_max
                                                 : WRQ_BLKSIZE_MAX,
                              .window_max = 1};
    uint32_t mtu = iface_mtu(s, rq->ifindex);
    if (mtu)
        lim.blksize_mtu = tftp_blksize_for_mtu(mtu);
    struct tftp_negotiated neg;
    tftp_negotiate(TFTP_OP_WRQ, r, &lim, 0, &neg);
    x->mode = r->mode;
    tftp_netascii_dec_init(&x->dec);
    x->blksize = neg.blksize;
    x->window = 1;
    x->expect = 1;
    x->client_timeout_s = neg.timeout_s ? neg.timeout_s : CLIENT_TIMEOUT_S;
    x->rto = s->cfg.timeout_ms;
    memcpy(x->name, path, plen + 1);
    bool ok = neg.oack.present ? tftp_encode_oack(x->last, sizeof(x->last), &neg.oack, &x->last_len) == TFTP_OK
                               : tftp_encode_ack(x->last, sizeof(x->last), 0, &x->last_len) == TFTP_OK;
    int rc = ok ? xfer_begin(s, x, rq, sig, 0) : -EINVAL;
    if (rc < 0) {
        xfer_free(x);
        if (no_room_errno(rc))
            return START_NO_ROOM;
        refuse(s, rq, "WRQ", path, plen, TFTP_ERR_UNDEF, "no transfer socket");
        return START_REFUSED;
    }
    write_send_last(x); /* OACK, or ACK 0 (RFC 1350 §4) */
    io_timer_arm(s->loop, &x->timer, x->rto);
    return START_OK;
}

static enum start_result start_request(struct tftp_service *s, const struct request *rq)
{
    struct tftp_packet p;
    enum tftp_result r = tftp_parse(rq->pkt, rq->len, &p);
    uint32_t sig = fnv1a(rq->pkt, rq->len);
    const char *op = p.op == TFTP_OP_WRQ ? "WRQ" : "RRQ";
    if (r == TFTP_EMODE) { /* "mail" and unknown modes: RFC 1350 */
        refuse(s, rq, op, p.rq.filename, p.rq.filename_len, TFTP_ERR_ILLEGAL_OP, "unsupported mode");
        return START_REFUSED;
    }
    if (r == TFTP_EFILENAME) { /* empty or over-long: an ERROR, never an empty DATA */
        refuse(s, rq, op, p.rq.filename, p.rq.filename_len, TFTP_ERR_NOT_FOUND, "not a file name");
        return START_REFUSED;
    }
    if (r != TFTP_OK) {
        s->st.malformed++;
        return START_REFUSED;
    }
    return p.op == TFTP_OP_WRQ ? start_write(s, rq, &p, sig) : start_read(s, rq, &p, sig);
}

/* ERROR 0 only when truly out of resources (see the header). */
static void busy(struct tftp_service *s, const struct request *rq)
{
    s->st.err_busy++;
    listener_error(s, &rq->peer, rq->local, TFTP_ERR_UNDEF, "Server busy, try again");
}

/* ---- the waiting queue ----------------------------------------------------------------- */

static struct qreq *queue_find(struct tftp_service *s, uint64_t key)
{
    for (struct qreq *q = s->qh[key_bucket(key)]; q; q = q->hnext)
        if (q->key == key)
            return q;
    return NULL;
}

static void queue_unhash(struct tftp_service *s, struct qreq *q)
{
    struct qreq **pp = &s->qh[key_bucket(q->key)];
    while (*pp && *pp != q)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = q->hnext;
}

static void qreq_free(struct qreq *q)
{
    free(q->pkt);
    free(q);
}

/* Drops waiting requests whose clients fell silent (they gave up long ago). */
static void queue_expire(struct tftp_service *s)
{
    uint64_t now = now_ms(s);
    struct qreq **pp = &s->qhead, *prev = NULL;
    while (*pp) {
        struct qreq *q = *pp;
        if (now - q->last_ms > QUEUE_TTL_MS) {
            *pp = q->next;
            queue_unhash(s, q);
            qreq_free(q);
            s->qlen--;
            continue;
        }
        prev = q;
        pp = &q->next;
    }
    s->qtail = prev;
    s->st.waiting = s->qlen;
}

static bool queue_add(struct tftp_service *s, const struct request *rq)
{
    if (s->qlen >= s->cfg.queue_max)
        queue_expire(s);
    if (s->qlen >= s->cfg.queue_max)
        return false;
    struct qreq *q = calloc(1, sizeof(*q));
    uint8_t *pkt = q ? malloc(rq->len) : NULL;
    if (!pkt) {
        free(q);
        return false;
    }
    memcpy(pkt, rq->pkt, rq->len);
    q->pkt = pkt;
    q->len = rq->len;
    q->peer = rq->peer;
    q->key = peer_key(&rq->peer);
    q->local = rq->local;
    q->ifindex = rq->ifindex;
    q->last_ms = now_ms(s);
    unsigned b = key_bucket(q->key);
    q->hnext = s->qh[b];
    s->qh[b] = q;
    if (s->qtail)
        s->qtail->next = q;
    else
        s->qhead = q;
    s->qtail = q;
    s->qlen++;
    s->st.queued++;
    s->st.waiting = s->qlen;
    return true;
}

/* A retransmission of a waiting request refreshes it (and its content, if the
 * client changed its mind) without losing its place. */
static void queue_refresh(struct tftp_service *s, struct qreq *q, const struct request *rq)
{
    q->last_ms = now_ms(s);
    q->local = rq->local;
    q->ifindex = rq->ifindex;
    if (q->len == rq->len && memcmp(q->pkt, rq->pkt, rq->len) == 0)
        return;
    uint8_t *pkt = malloc(rq->len);
    if (!pkt)
        return;
    memcpy(pkt, rq->pkt, rq->len);
    free(q->pkt);
    q->pkt = pkt;
    q->len = rq->len;
}

static void pump_queue(struct tftp_service *s)
{
    if (s->pumping)
        return;
    s->pumping = true;
    uint64_t now = now_ms(s);
    while (s->qhead && s->st.active < s->cfg.max_transfers && !s->draining) {
        struct qreq *q = s->qhead;
        s->qhead = q->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->qlen--;
        s->st.waiting = s->qlen;
        queue_unhash(s, q);
        if (now - q->last_ms > QUEUE_TTL_MS) {
            qreq_free(q);
            continue;
        }
        struct request rq = {.peer = q->peer, .local = q->local, .ifindex = q->ifindex, .pkt = q->pkt, .len = q->len};
        if (start_request(s, &rq) != START_NO_ROOM) {
            qreq_free(q);
            continue;
        }
        if (s->st.active == 0) { /* nothing running whose end could make room */
            busy(s, &rq);
            qreq_free(q);
            continue;
        }
        /* still no room: back to the head, to be tried when the next transfer ends */
        q->next = s->qhead;
        s->qhead = q;
        if (!s->qtail)
            s->qtail = q;
        unsigned b = key_bucket(q->key);
        q->hnext = s->qh[b];
        s->qh[b] = q;
        s->qlen++;
        s->st.waiting = s->qlen;
        break;
    }
    s->pumping = false;
}

/* ---- the request socket ------------------------------------------------------------------ */

static void handle_request(struct tftp_service *s, const struct request *rq)
{
    uint64_t key = peer_key(&rq->peer);
    uint32_t sig = fnv1a(rq->pkt, rq->len);
    struct xfer *x = xhash_find(s, key);
    if (x) {
        /* The same request again from the same addr:port is the client
         * retransmitting before our answer reached it: one transfer, not two
         * (our own timer resends the OACK or window).  A different request
         * from there means the client moved on (OVMF asks again without tsize
         * after its size probe, perhaps before its ERROR 8 is read). */
        bool all_sent = x->kind == X_READ && x->tx.sent_hi >= x->tx.nblocks;
        if (x->sig == sig && (!all_sent || now_ms(s) - x->started_ms < DUP_GRACE_MS) && x->state == XS_RUNNING) {
            s->st.duplicate_requests++;
            if (x->kind == X_READ) { /* the OACK was lost: resent now, not after its long timer */
                struct tftp_send_actions a;
                tftp_send_set_now(&x->tx, now_ms(s));
                tftp_send_on_request(&x->tx, &a);
                read_apply(x, &a);
            }
            return;
        }
        if (x->kind == X_WRITE)
            write_cleanup(x);
        xfer_end(x, "superseded by a new request", &s->st.superseded);
    }
    struct qreq *q = queue_find(s, key);
    if (q) {
        s->st.duplicate_requests++;
        queue_refresh(s, q, rq);
        return;
    }
    if (s->qhead && s->st.active < s->cfg.max_transfers)
        pump_queue(s);
    if (s->st.active >= s->cfg.max_transfers || s->qhead) { /* first come, first served */
        if (!queue_add(s, rq))
            busy(s, rq);
        return;
    }
    if (start_request(s, rq) == START_NO_ROOM) {
        /* sockets or memory exhausted: wait for a running transfer to end if
         * there is one; with nothing running there is nothing to wait for */
        if (s->st.active == 0 || !queue_add(s, rq))
            busy(s, rq);
    }
}

static void on_request(struct io_op *op, const struct io_completion *c)
{
    struct tftp_service *s = op->owner;
    if (!c->more && s->draining && s->fd >= 0) {
        /* close the request socket as soon as nothing refers to it: with
         * SO_REUSEPORT the kernel would go on steering requests to it, lost
         * while a new server (a restart) already listens on the same port */
        close(s->fd);
        s->fd = -1;
        return;
    }
    if (!c->more && !s->draining && c->res != -ECANCELED) {
        int rc = io_recvmsg(s->loop, &s->req_op, s->fd);
        if (rc < 0)
            fprintf(stderr, "tftp: cannot receive requests: %s\n", strerror(-rc));
    }
    if (c->res < 0 || !c->buf || s->draining)
        return;
    if (c->truncated || !c->peer || c->peer->ss_family != AF_INET || c->peer_len < sizeof(struct sockaddr_in)) {
        s->st.malformed++;
        return;
    }
    struct request rq;
    memcpy(&rq.peer, c->peer, sizeof(rq.peer));
    if (rq.peer.sin_port == 0) {
        s->st.malformed++;
        return;
    }
    rq.local = c->local.s_addr;
    rq.ifindex = c->ifindex;
    rq.pkt = c->buf;
    rq.len = c->len;
    struct tftp_packet p;
    enum tftp_result r = tftp_parse(rq.pkt, rq.len, &p);
    if (r == TFTP_ETRUNC || r == TFTP_EOPCODE || r == TFTP_ENONUL || r == TFTP_EOPTION) {
        s->st.malformed++; /* not a request we can answer: no reply, we are no reflector */
        return;
    }
    if (p.op != TFTP_OP_RRQ && p.op != TFTP_OP_WRQ) {
        s->st.stray++;
        return;
    }
    s->st.requests++;
    handle_request(s, &rq);
}

/* ---- public API ------------------------------------------------------------------------ */

int tftp_service_start(struct tftp_service **out, struct io_loop *loop, const struct tftp_service_config *cfg,
                       char *err, size_t errlen)
{
    struct tftp_service *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "tftp: out of memory");
        return -ENOMEM;
    }
    s->loop = loop;
    s->cfg = *cfg;
    logbuf_init(&s->log, STDOUT_FILENO, "tftp", 0);
    if (!s->cfg.timeout_ms)
        s->cfg.timeout_ms = TFTP_SEND_RTO_MS;
    if (!s->cfg.retries)
        s->cfg.retries = TFTP_SEND_RETRIES;
    if (!s->cfg.max_transfers)
        s->cfg.max_transfers = 4096;
    if (!s->cfg.queue_max)
        s->cfg.queue_max = s->cfg.max_transfers * 4 > 1024 ? s->cfg.max_transfers * 4 : 1024;
    if (s->cfg.window_max > TFTP_WINDOWSIZE_MAX)
        s->cfg.window_max = TFTP_WINDOWSIZE_MAX;
    s->fd = s->root_fd = -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s->port_hint = (uint16_t)((uint64_t)ts.tv_nsec ^ (uintptr_t)s); /* workers start apart in the range */
    if (cfg->root) {
        s->root_fd = open(cfg->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0) {
            int e = errno;
            snprintf(err, errlen, "--tftp-root %s: %s", cfg->root, strerror(e));
            free(s);
            return -e;
        }
    }
    struct sock_udp_opts so = {.reuseport = true, .pktinfo = true, .rcvbuf = 4 << 20};
    s->fd = sock_udp_bind(cfg->listen_addr, cfg->port, &so, err, errlen);
    if (s->fd < 0) {
        int e = s->fd;
        if (s->root_fd >= 0)
            close(s->root_fd);
        free(s);
        return e;
    }
    int p = sock_local_port(s->fd);
    s->port = p > 0 ? (uint16_t)p : cfg->port;
    s->req_op.fn = on_request;
    s->req_op.owner = s;
    int rc = io_recvmsg(loop, &s->req_op, s->fd);
    if (rc < 0) {
        snprintf(err, errlen, "tftp: receive: %s", strerror(-rc));
        close(s->fd);
        if (s->root_fd >= 0)
            close(s->root_fd);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

uint16_t tftp_service_port(const struct tftp_service *s) { return s->port; }

static void on_drain_deadline(struct io_timer *t) { tftp_service_abort(t->owner); }

void tftp_service_drain(struct tftp_service *s)
{
    if (s->draining)
        return;
    s->draining = true;
    /* Bounded: a transfer whose client went away would otherwise hold the stop
     * until its retries run out (10 s and more); a live one gets DRAIN_MS to end. */
    if (s->open) {
        s->drain_timer.fn = on_drain_deadline;
        s->drain_timer.owner = s;
        io_timer_arm(s->loop, &s->drain_timer, DRAIN_MS);
    }
    io_cancel(s->loop, &s->req_op);
    while (s->qhead) {
        struct qreq *q = s->qhead;
        s->qhead = q->next;
        qreq_free(q);
    }
    s->qtail = NULL;
    s->qlen = 0;
    s->st.waiting = 0;
    memset(s->qh, 0, sizeof(s->qh));
}

void tftp_service_abort(struct tftp_service *s)
{
    tftp_service_drain(s);
    io_timer_cancel(s->loop, &s->drain_timer);
    for (struct xfer *x = s->all, *next; x; x = next) {
        next = x->anext;
        if (x->state == XS_CLOSING)
            continue;
        if (x->kind == X_WRITE && x->state != XS_DALLY) {
            write_cleanup(x);
        }
        xfer_error(x, &x->peer, TFTP_ERR_UNDEF, "Server shutting down");
        xfer_end(x, "server stopping", &s->st.failed);
    }
}

unsigned tftp_service_open_transfers(const struct tftp_service *s) { return s->open; }

void tftp_service_get_stats(const struct tftp_service *s, struct tftp_service_stats *out) { *out = s->st; }

void tftp_service_free(struct tftp_service *s)
{
    if (!s)
        return;
    tftp_service_flush_log(s);
    io_flush(s->loop); /* before the mappings queued DATA may point into go */
    io_timer_cancel(s->loop, &s->drain_timer);
    while (s->all)
        xfer_free(s->all); /* the loop no longer runs: no completion will come */
    while (s->free_list) {
        struct xfer *x = s->free_list;
        s->free_list = x->next_free;
        free(x);
    }
    tftp_service_drain(s);
    for (unsigned i = 0; i < MBUCKETS; i++) {
        for (struct tmap *m = s->mh[i], *n; m; m = n) {
            n = m->hnext;
            map_destroy(m);
        }
    }
    if (s->fd >= 0)
        close(s->fd);
    if (s->root_fd >= 0)
        close(s->root_fd);
    free(s->na_out);
    free(s->na_in);
    logbuf_free(&s->log);
    free(s);
}
