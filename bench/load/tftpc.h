/* bench/load/tftpc.h — a TFTP read client on bench/load/ev: one transfer per
 * object, hundreds at once.
 *
 * What it does as a PXE ROM would: RRQ in octet mode with the options asked
 * (blksize RFC 2348, tsize RFC 2349, windowsize RFC 7440); accepts an OACK only
 * with options it asked for and values no larger than asked (else ERROR 8, as
 * PXELINUX does), falls back to 512-byte lock-step when the server answers
 * with DATA 1; acknowledges every window (and a short final block); on a gap
 * re-acknowledges the last block received in order so that the sender resumes
 * from there (RFC 7440 §4); re-acknowledges duplicates (our ACK was lost),
 * limited so that a retransmitted window draws one ACK, not one per block
 * (the Sorcerer's Apprentice, RFC 1123 §4.2.3.1); follows the block number
 * through rollover (65535 → 0); answers a datagram from an unknown TID with
 * ERROR 5 and carries on (RFC 1350 §4); retransmits its last packet on
 * silence with a doubling timer; dallies after the final ACK to answer a
 * repeated final block (RFC 1350 §6).
 *
 * Sizes are always checked: bytes received against the OACK's tsize and the
 * local reference's size; with verify, a checksum of the bytes against it. */
#ifndef BOOTSTORM_LOAD_TFTPC_H
#define BOOTSTORM_LOAD_TFTPC_H

#include "bench/load/verify.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tftpc_status {
    TFTPC_OK = 0,
    TFTPC_NOT_FOUND, /* ERROR 1 from the server */
    TFTPC_ERROR,     /* another ERROR from the server */
    TFTPC_TIMEOUT,   /* no answer after every retransmission */
    TFTPC_PROTOCOL,  /* an OACK or DATA a correct server never sends */
    TFTPC_SIZE,      /* bytes received differ from tsize or the local file */
    TFTPC_CHECKSUM,  /* the bytes differ from the local file */
    TFTPC_REFUSED,   /* ICMP port unreachable: nothing listens there */
    TFTPC_SOCKET,    /* a local socket call failed */
};
const char *tftpc_status_name(enum tftpc_status s);

struct tftpc_params {
    struct sockaddr_in server; /* address and request port (69) */
    uint32_t bind_addr;        /* local address, network order; 0: any */
    const char *file;          /* name sent in the RRQ (copied) */
    uint32_t blksize;          /* option value asked; 0: none asked (512) */
    uint32_t windowsize;       /* option value asked; 0 or 1: none asked (lock-step) */
    bool tsize;                /* ask "tsize 0" */
    uint32_t timeout_ms;       /* first retransmission timeout, doubled up to max_timeout_ms */
    uint32_t max_timeout_ms;
    unsigned retries;          /* retransmissions without progress before giving up */
    uint32_t dally_ms;         /* stay to re-ACK a repeated final block; 0: close at once */
    enum verify_kind verify;
    const struct verify_ref *ref; /* local reference (size, digest); NULL: none */
    size_t keep_max;           /* keep up to this many bytes of the file (configs); 0: none */
    bool udp_gro;              /* receive a window sent as one GSO datagram whole (ev.h) */
};

struct tftpc_result {
    enum tftpc_status status;
    uint16_t error_code; /* TFTPC_NOT_FOUND / TFTPC_ERROR: the server's code */
    char reason[160];    /* one line for reports; "" when OK */
    uint64_t bytes;      /* file bytes received in order */
    uint64_t tsize;      /* from the OACK when has_tsize */
    bool has_tsize;
    uint32_t blksize, windowsize; /* in effect */
    uint64_t start_ns, end_ns;
    uint32_t timeouts;    /* our timer expired without progress */
    uint32_t retransmits; /* RRQ/ACK sent again because of that */
    uint32_t dup_blocks;  /* DATA already received (the server resent) */
    uint32_t gaps;        /* DATA beyond the next expected block (a block was lost) */
    uint32_t strays;      /* datagrams from an unknown TID (answered with ERROR 5) */
    uint8_t *kept;        /* keep_max > 0: the first bytes, malloc'd; the callback may take
                             it (and set kept to NULL), else it is freed after the callback */
    size_t kept_len;
};

struct tftpc;
/* Called once, from the event loop, when the transfer ends.  The object stays
 * alive (dallying) after the callback; the owner must forget it then. */
typedef void (*tftpc_done_fn)(void *arg, struct tftpc_result *r);

/* Starts a transfer (socket, RRQ).  Returns NULL when the socket cannot be
 * made (errno; *why gets one line): no callback follows then. */
struct tftpc *tftpc_start(const struct tftpc_params *p, tftpc_done_fn done, void *arg, char *why, size_t whylen);
/* Ends a running transfer at once (no callback); a no-op after the callback. */
void tftpc_abort(struct tftpc *x);
/* Transfers whose objects exist (running or dallying). */
unsigned tftpc_live(void);
/* Bytes received by all transfers so far (for progress lines). */
uint64_t tftpc_total_bytes(void);

#endif
