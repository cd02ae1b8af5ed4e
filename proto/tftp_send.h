/* proto/tftp_send.h — the sending side of one TFTP read transfer as a pure state
 * machine: events in (start, ACK, timeout, ERROR), actions out (send OACK, send
 * DATA blocks first..first+count-1, arm/stop the timer, outcome).  No I/O, no clock:
 * the caller owns the socket and the timer and builds DATA packets from
 * tftp_send_block_offset/len.
 *
 * Blocks are numbered internally from 1 as 64-bit indices; on the wire block k is
 * (uint16_t)k, so block 65536 goes out as 0 (the rollover clients expect).  The
 * transfer has size / blksize + 1 blocks: the last one is short, and is empty when
 * the size is an exact multiple of blksize (RFC 1350 §6), so a 0-byte file is one
 * empty DATA 1.
 *
 * Rules:
 * - Window (RFC 7440): at most `window` blocks beyond the highest acknowledged one
 *   are outstanding: sent_hi == min(acked + window, nblocks) while sending.
 * - A new ACK k (acked < k <= sent_hi) slides the window to k+1 and fills it again.
 *   When k < sent_hi the ACK shows a gap (the client lost or got block k+1 out of
 *   order, and RFC 7440 receivers drop what follows a gap): blocks k+1.. are resent
 *   at once instead of after a timeout (RFC 7440 §4) — unless the ACK is explained
 *   by our own retransmissions (below).
 * - Explained ACKs.  EDK2/OVMF (Mtftp4RrqHandleData) ACKs every out-of-order or
 *   duplicate DATA with its current position at once.  Each copy we retransmit of a block the client may
 *   already hold can therefore come back as one extra ACK, and answering those with
 *   more resends feeds on itself (a simulation with 1% reordering and window 16 sent
 *   5-15x the file).  So every retransmitted block adds one to a budget (`stale`,
 *   capped at the window), and a duplicate or gap ACK that finds the budget non-zero
 *   uses one unit and triggers no resend (a gap ACK still slides the window and new
 *   blocks go out).  Once the client has acknowledged everything sent, only copies
 *   from the latest send can still be in flight, so the budget is cut to that count.
 * - A duplicate ACK (same as the highest acknowledged) triggers nothing in lock-step
 *   (window 1): answering it is the sorcerer's apprentice bug (RFC 1123 §4.2.3.1);
 *   loss is repaired by our timer.  With a window, an unexplained duplicate means
 *   block acked+1 is missing (the first block of a window was lost and the client
 *   reports every later one): the window is resent from acked+1 once; the copies
 *   that resend creates are covered by the budget, so this cannot snowball.
 * - An old ACK, or one beyond anything sent, is ignored.  16-bit ACK numbers are
 *   mapped to the block at distance (n - acked) mod 65536 above `acked`; window <=
 *   32767 keeps that unambiguous across rollover.
 * - While an OACK is outstanding only ACK 0 moves on (RFC 2347).
 * - Timeout: resend the OACK or the whole outstanding window from the oldest
 *   unacknowledged block; the timeout doubles up to rto_max_ms.  Any progress resets
 *   the count and the timeout.
 * - Timers are milliseconds (200 ms by default, not the 1-5 s of other servers: a
 *   lost block on a LAN should cost a fraction of a second).  With cfg.rto_min_ms
 *   set the timeout adapts to the path (RFC 6298 §2, Karn's rule §3): every ACK of
 *   a block (or in lock-step ACK 0 of the OACK) sent once and never again gives an RTT
 *   sample, RTO = SRTT + max(1 ms, 4 RTTVAR) kept within [rto_min_ms, rto_ms]; before
 *   the first sample it is rto_ms.  The caller then tells the time with
 *   tftp_send_set_now() before every event.  A timeout's backed-off RTO is kept
 *   through the next two progress events unless a block sent once gives a new
 *   sample first (RFC 6298 §5.7 with Karn's rule): a client slower to ACK than the
 *   RTO otherwise times out every window, every resend clears the sample, the RTO
 *   never learns, and the copies slow the client further (1000 clients on one
 *   core: as many duplicate blocks as file blocks).  Only two: on a lossy,
 *   reordering path gap resends clear most samples, and a hold until the next
 *   sample let the RTO climb to its cap and stay there (atftp gave up).
 * - The OACK's timer is at least TFTP_SEND_OACK_RTO_MS, whatever the RTO: a
 *   client that got the OACK and answered it (its ACK 0 lost or late) may abort on
 *   a second one (atftp: "unexpected OACK", in any state).  A client that never got
 *   it retransmits its RRQ: the caller answers that with tftp_send_on_request(),
 *   which resends the OACK at once.
 * - The client's RFC 2349 timeout option (whole seconds) does NOT delay our first
 *   resend — an early resend costs a duplicate the client ignores, a late one
 *   stalls the boot; it only raises the give-up time: we keep trying until
 *   `retries` timeouts have passed AND at least 2 x client_timeout_s without
 *   progress, so the client has had the chance to retransmit its ACK at least once.
 * - ERROR from the client ends the transfer at once (TFTP_SEND_ABORTED, not a
 *   failure): OVMF sends ERROR 8 right after the OACK when it only wanted tsize.
 * - The final ACK may be lost and the client gone (RFC 1350 leaves it to dally).
 *   When retries run out after the final block has been sent, the outcome is
 *   TFTP_SEND_DONE_UNACKED ("completed, final ACK missing"), distinct from both
 *   success and failure: tolerated like dnsmasq does, but visible in the logs.  With
 *   a window the client may also have died inside the final window; `acked` tells
 *   how far it was confirmed.
 */
#ifndef BOOTSTORM_PROTO_TFTP_SEND_H
#define BOOTSTORM_PROTO_TFTP_SEND_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/tftp.h"

#define TFTP_SEND_RTO_MS 200      /* default first retransmission timeout */
#define TFTP_SEND_RTO_MAX_MS 3200 /* default backoff cap */
#define TFTP_SEND_RETRIES 6       /* default timeouts in a row before giving up */
#define TFTP_SEND_OACK_RTO_MS 1000 /* least wait before an OACK is resent on timeout */

enum tftp_send_outcome {
    TFTP_SEND_RUNNING = 0,
    TFTP_SEND_DONE,         /* the final block was acknowledged */
    TFTP_SEND_DONE_UNACKED, /* all blocks sent, final ACK never came: completed, unconfirmed */
    TFTP_SEND_ABORTED,      /* the client sent ERROR (error_code): ended, not a failure */
    TFTP_SEND_TIMEOUT,      /* failed: retries ran out before the final block was sent */
};

enum tftp_send_timer {
    TFTP_SEND_TIMER_KEEP = 0, /* leave the running timer as it is */
    TFTP_SEND_TIMER_ARM,      /* (re)arm it to fire in timer_ms */
    TFTP_SEND_TIMER_STOP,     /* the transfer is over */
};

/* What the event was, for counters and tests. */
enum tftp_send_note {
    TFTP_SEND_NOTE_NONE = 0,
    TFTP_SEND_NOTE_PROGRESS,   /* new ACK, window slid (or OACK acknowledged) */
    TFTP_SEND_NOTE_GAP,        /* ACK shows missing blocks: resent from the gap now */
    TFTP_SEND_NOTE_DUP_ACK,    /* ACK of the highest acknowledged block again: nothing sent */
    TFTP_SEND_NOTE_OLD_ACK,    /* ACK below that: ignored */
    TFTP_SEND_NOTE_FUTURE_ACK, /* ACK of a block never sent: ignored */
    TFTP_SEND_NOTE_RETRANSMIT, /* timeout: resent */
    TFTP_SEND_NOTE_IGNORED,    /* event before start or after the end */
};

struct tftp_send_config {
    uint64_t size;             /* bytes to send (netascii: the converted size) */
    uint32_t blksize;          /* TFTP_BLKSIZE_MIN..TFTP_BLKSIZE_MAX */
    uint32_t window;           /* 1..TFTP_WINDOWSIZE_MAX */
    bool oack;                 /* start with an OACK, acknowledged by ACK 0 */
    uint32_t rto_ms;           /* first retransmission timeout; 0 = TFTP_SEND_RTO_MS */
    uint32_t rto_max_ms;       /* backoff cap; 0 = TFTP_SEND_RTO_MAX_MS */
    uint32_t retries;          /* retransmissions before giving up; 0 = TFTP_SEND_RETRIES */
    uint32_t client_timeout_s; /* negotiated RFC 2349 timeout, 0 if none */
    uint32_t rto_min_ms;       /* adaptive RTO floor; 0: no adaptation (always rto_ms) */
};

struct tftp_send_actions {
    bool send_oack;
    uint64_t first; /* send DATA blocks first .. first + count - 1, in order */
    uint64_t count; /* 0: no DATA */
    enum tftp_send_timer timer;
    uint32_t timer_ms;
    enum tftp_send_outcome outcome; /* the transfer's outcome after this event */
    enum tftp_send_note note;
};

/* Transfer state.  Read the fields freely; change them only through the functions. */
struct tftp_send {
    struct tftp_send_config cfg; /* with defaults filled in */
    uint64_t nblocks;            /* size / blksize + 1 */
    uint64_t acked;              /* highest block acknowledged (0: none) */
    uint64_t sent_hi;            /* highest block sent (0: none) */
    bool started;
    bool oack_pending;
    enum tftp_send_outcome outcome;
    uint16_t error_code;  /* the client's code when ABORTED */
    uint32_t rto_ms;      /* current retransmission timeout */
    uint32_t tries;       /* timeouts since the last progress */
    uint64_t idle_ms;     /* timer time since the last progress */
    uint32_t stale;       /* ACKs our retransmitted copies may still cause (see Rules) */
    uint32_t last_copies; /* blocks re-sent by the latest send */
    /* RTT estimate (cfg.rto_min_ms > 0) */
    uint64_t now_ms;      /* the caller's clock, from tftp_send_set_now() */
    uint32_t armed_ms;    /* duration of the timer last armed */
    bool have_rtt;
    uint8_t rto_hold;     /* backed off by a timeout: progress events it is kept for (or a sample) */
    uint32_t srtt_x8;     /* smoothed RTT, ms x 8 */
    uint32_t rttvar_x4;   /* RTT variation, ms x 4 */
    uint64_t rtt_block;   /* block whose ACK ends the running sample (0: none) */
    bool rtt_oack;        /* the running sample times the OACK */
    uint64_t rtt_sent_ms;
    uint64_t oack_sent_ms;
    /* counters for the transfer's log line */
    uint64_t blocks_sent; /* DATA packets requested, retransmissions included */
    uint64_t blocks_resent;
    uint32_t timeouts;
    uint32_t dup_acks; /* duplicate, old and future ACKs received */
};

/* TFTP_EINVAL if blksize or window is out of range or rto_max_ms < rto_ms. */
enum tftp_result tftp_send_init(struct tftp_send *s, const struct tftp_send_config *cfg);
/* First event: sends the OACK, or the first window of DATA. */
void tftp_send_start(struct tftp_send *s, struct tftp_send_actions *act);
void tftp_send_on_ack(struct tftp_send *s, uint16_t block, struct tftp_send_actions *act);
void tftp_send_on_timeout(struct tftp_send *s, struct tftp_send_actions *act);
void tftp_send_on_error(struct tftp_send *s, uint16_t code, struct tftp_send_actions *act);
/* The client sent its request again.  While the OACK waits for ACK 0 that means
 * the OACK was lost: it is resent now (at most once per current RTO); otherwise
 * nothing happens (the timers repair the rest). */
void tftp_send_on_request(struct tftp_send *s, struct tftp_send_actions *act);
/* The time, in the caller's milliseconds, before an event (adaptive RTO only). */
static inline void tftp_send_set_now(struct tftp_send *s, uint64_t now_ms) { s->now_ms = now_ms; }
/* Starts the estimate from what other transfers on the same path measured (like
 * TCP's per-route metrics), before tftp_send_start(): a short transfer gets
 * too few samples of its own.  Ignored without cfg.rto_min_ms. */
void tftp_send_seed_rtt(struct tftp_send *s, uint32_t srtt_x8, uint32_t rttvar_x4);
/* The retransmission timeout after progress: the RTT estimate, or cfg.rto_ms. */
uint32_t tftp_send_base_rto(const struct tftp_send *s);

/* Block k (1..nblocks) covers bytes [offset, offset + len) of the stream. */
uint64_t tftp_send_block_offset(const struct tftp_send *s, uint64_t k);
uint32_t tftp_send_block_len(const struct tftp_send *s, uint64_t k);
static inline uint16_t tftp_send_block_wire(uint64_t k) { return (uint16_t)k; }

const char *tftp_send_outcome_str(enum tftp_send_outcome o);

#endif
