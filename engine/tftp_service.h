/* engine/tftp_service.h — the TFTP service of one worker: windowed read
 * transfers of boot loaders, menus, kernels and initrds (RFC 1350, 2347-2349,
 * 7440), virtual files from a provider, and optional write requests.
 *
 * One service per worker thread.  Each owns a UDP socket on the request port
 * (SO_REUSEPORT: the kernel hashes a client's address and port to one worker, so
 * a client's retransmitted requests always reach the same one) and, per
 * transfer, a UDP socket of its own (the transfer ID) from cfg.ports_lo-hi or an
 * ephemeral port, bound to the address the request was sent to.
 *
 * Read transfers follow proto/tftp_send's state machine; a window of DATA goes
 * out in UDP GSO sends (else one sendmmsg()) whose iovecs point into a
 * read-only mmap of the file, shared by every transfer of that file in this
 * worker; retransmission timeouts follow the measured round trip (30 ms at
 * least, timeout_ms at most before backoff).  Beyond max_transfers,
 * requests wait in a queue (the client's retransmissions refresh their place)
 * and start as transfers end; ERROR 0 "server busy" is sent only when the queue
 * itself is full or no socket can be had with nothing running to free one.
 *
 * Netascii (tftp-hpa's default mode) is served too: blocks are converted from
 * encoder checkpoints (window capped at 16), tsize is the converted size.
 *
 * Write requests (only with allow_write, else ERROR 2): lock-step (a requested
 * windowsize is answered 1), blksize at most 2048 (a DATA must fit one receive
 * buffer), into a temporary file in the target's directory, renamed over the
 * target when the last block arrives, removed if the transfer fails.
 *
 * Every transfer ends with one log line on stdout (unless quiet), buffered and
 * written by tftp_service_flush_log() from the loop's idle hook:
 *   tftp 10.0.0.5:2070 RRQ "pxelinux.0" bytes=42386 blksize=1408 window=1 ms=12 retransmits=0 done
 * Refused requests log one line too ("... refused: ... (ERROR 2)"). */
#ifndef BOOTSTORM_ENGINE_TFTP_SERVICE_H
#define BOOTSTORM_ENGINE_TFTP_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_loop;
struct tftp_service;
struct vfile_provider;

/* How a transfer (or a refused request) ended, for the done hook. */
enum tftp_done_outcome {
    TFTP_DONE_COMPLETE,        /* every block acknowledged (WRQ: the file is stored) */
    TFTP_DONE_UNACKED,         /* every block sent, the final ACK never came */
    TFTP_DONE_TIMEOUT,         /* given up: the client stopped answering */
    TFTP_DONE_CLIENT_ABORT,    /* the client sent ERROR (error_code is its code) */
    TFTP_DONE_NOT_FOUND,       /* refused with ERROR 1 */
    TFTP_DONE_REFUSED,         /* refused otherwise: access, traversal, bad name, I/O (error_code) */
    TFTP_DONE_FAILED,          /* ended by us: file changed, write error, server stopping */
    TFTP_DONE_SUPERSEDED,      /* replaced by a new request from the same addr:port */
};

struct tftp_done_info {
    uint32_t client_ip;        /* network order */
    uint16_t client_port;      /* host order */
    const char *path;          /* normalised (refusals: the name as sent, made printable) */
    bool write;                /* WRQ */
    enum tftp_done_outcome outcome;
    uint16_t error_code;       /* CLIENT_ABORT: the client's; NOT_FOUND/REFUSED: ours */
    bool oack;                 /* an OACK was sent (options negotiated) */
    uint64_t bytes;            /* file bytes acknowledged (RRQ) or received (WRQ) */
    uint64_t size;             /* RRQ: bytes the whole file is on the wire; else 0 */
    uint32_t blksize, window;
    uint64_t ms;               /* from the start of the transfer */
    const char *reason;        /* the log line's outcome text */
};
/* Called once per transfer end and per refused request, on the worker's
 * thread, after the counters are updated.  Must not block. */
typedef void (*tftp_done_fn)(void *ctx, const struct tftp_done_info *d);

struct tftp_service_config {
    uint32_t listen_addr;      /* network order; 0 = every address */
    uint16_t port;             /* request port (69); 0 = ephemeral (tests: see tftp_service_port) */
    uint16_t ports_lo, ports_hi; /* transfer sockets; both 0 = ephemeral */
    const char *root;          /* served tree; NULL: only virtual files */
    uint32_t blksize_max;      /* RFC 2348 cap; 0 = 65464.  Also capped by the receiving
                                * interface's MTU - 32 */
    uint32_t window_max;       /* RFC 7440 cap; 0 = 1 (lock-step) */
    uint32_t timeout_ms;       /* retransmission timeout until the round trip is measured, and
                                * the most it adapts to (then doubled per timeout); 0 = 200 */
    uint32_t retries;          /* timeouts in a row before a transfer is given up; 0 = 6.  Never
                                * before twice the client's own timeout has passed without
                                * progress (its RFC 2349 timeout, else 5 s) */
    unsigned max_transfers;    /* running at once in this worker; 0 = 4096 */
    unsigned queue_max;        /* requests waiting beyond that; 0 = max(1024, 4 x max_transfers) */
    bool allow_write;          /* WRQ accepted (else ERROR 2) */
    bool quiet;                /* no log lines */
    const struct vfile_provider *vfiles; /* asked first for every RRQ; NULL: none (not copied:
                                          * must outlive the service) */
    tftp_done_fn on_done;      /* NULL: none */
    void *done_ctx;
};

struct tftp_service_stats {
    uint64_t requests;          /* RRQ + WRQ datagrams received (duplicates included) */
    uint64_t duplicate_requests; /* a request from a client addr:port whose transfer runs or waits */
    uint64_t transfers;         /* transfers started (read and write) */
    uint64_t done;              /* final block acknowledged (or, for WRQ, received) */
    uint64_t done_unacked;      /* every block sent, the final ACK never came */
    uint64_t aborted;           /* the client sent ERROR (OVMF's size probe, shim's missing files) */
    uint64_t timeouts;          /* given up: the client stopped answering */
    uint64_t failed;            /* ended by us: file changed under the transfer, write error */
    uint64_t superseded;        /* replaced by a different request from the same addr:port */
    uint64_t bytes;             /* file bytes delivered (acknowledged) or received */
    uint64_t blocks_sent;       /* DATA packets, retransmissions included */
    uint64_t retransmits;       /* DATA blocks sent again (timeouts and gaps) */
    uint64_t queued;            /* requests that had to wait for a free slot */
    uint64_t malformed;         /* datagrams dropped: not TFTP, truncated, broken options */
    uint64_t stray;             /* DATA/ACK/OACK/ERROR sent to the request port: dropped */
    uint64_t vfiles;            /* read requests answered from the virtual-file provider */
    /* ERROR packets sent, by kind */
    uint64_t err_not_found;     /* ERROR 1 */
    uint64_t err_access;        /* ERROR 2: traversal, outside the root, WRQ refused, not a file */
    uint64_t err_traversal;     /* of those: ".." or a symlink out of the root */
    uint64_t err_illegal;       /* ERROR 4: unsupported mode, DATA too long */
    uint64_t err_unknown_tid;   /* ERROR 5: a packet on a transfer socket from another addr:port */
    uint64_t err_busy;          /* ERROR 0 "server busy" */
    uint64_t err_other;         /* ERROR 0/3 for I/O failures */
    /* gauges */
    uint64_t active;            /* transfers running now */
    uint64_t waiting;           /* requests in the queue now */
};

/* Binds the worker's request socket and starts receiving.  Returns 0 or -errno
 * with one line in err. */
int tftp_service_start(struct tftp_service **out, struct io_loop *loop, const struct tftp_service_config *cfg,
                       char *err, size_t errlen);
/* The request port actually bound (useful with cfg.port 0). */
uint16_t tftp_service_port(const struct tftp_service *s);
/* Stops taking requests (and drops the queue); running transfers go on for at
 * most 1.5 s (a client that went away would hold them for its retries), then
 * end as with tftp_service_abort(). */
void tftp_service_drain(struct tftp_service *s);
/* Ends every transfer now (drain included); their sockets close within a turn. */
void tftp_service_abort(struct tftp_service *s);
/* Transfers not yet torn down (a drain is over when this is 0). */
unsigned tftp_service_open_transfers(const struct tftp_service *s);
/* Writes buffered log lines (call from the loop's idle hook). */
void tftp_service_flush_log(struct tftp_service *s);
/* Once per loop turn (the idle hook): answers the requests already waiting on
 * the request socket (a storm's RRQs must not wait behind the ring's DATA and
 * ACK completions), then flushes the log. */
void tftp_service_idle(struct tftp_service *s);
void tftp_service_get_stats(const struct tftp_service *s, struct tftp_service_stats *out);
/* Frees the service.  Call after the loop stopped running; transfers still open
 * are closed without completions. */
void tftp_service_free(struct tftp_service *s);

#endif
