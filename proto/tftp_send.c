/* proto/tftp_send.c — TFTP read-transfer sender state machine.  Rules in tftp_send.h. */
#include "proto/tftp_send.h"

#include <string.h>

enum tftp_result tftp_send_init(struct tftp_send *s, const struct tftp_send_config *cfg)
{
    memset(s, 0, sizeof *s);
    struct tftp_send_config c = *cfg;
    if (c.rto_ms == 0)
        c.rto_ms = TFTP_SEND_RTO_MS;
    if (c.rto_max_ms == 0)
        c.rto_max_ms = c.rto_ms > TFTP_SEND_RTO_MAX_MS ? c.rto_ms : TFTP_SEND_RTO_MAX_MS;
    if (c.retries == 0)
        c.retries = TFTP_SEND_RETRIES;
    if (c.blksize < TFTP_BLKSIZE_MIN || c.blksize > TFTP_BLKSIZE_MAX || c.window < 1 ||
        c.window > TFTP_WINDOWSIZE_MAX || c.rto_max_ms < c.rto_ms || c.rto_min_ms > c.rto_ms)
        return TFTP_EINVAL;
    s->cfg = c;
    s->nblocks = c.size / c.blksize + 1;
    s->rto_ms = c.rto_ms;
    s->outcome = TFTP_SEND_RUNNING;
    return TFTP_OK;
}

static void reset_act(const struct tftp_send *s, struct tftp_send_actions *act)
{
    memset(act, 0, sizeof *act);
    act->timer = TFTP_SEND_TIMER_KEEP;
    act->outcome = s->outcome;
}

/* While the OACK waits for its ACK 0 the timer is at least
 * TFTP_SEND_OACK_RTO_MS: a client that already answered (its ACK only slowed by
 * a loaded host, or lost) and then sees a second OACK aborts (atftp: "unexpected
 * OACK"); a client that never got it says so by repeating its request. */
static void arm(struct tftp_send *s, struct tftp_send_actions *act)
{
    act->timer = TFTP_SEND_TIMER_ARM;
    act->timer_ms = s->oack_pending && s->rto_ms < TFTP_SEND_OACK_RTO_MS ? TFTP_SEND_OACK_RTO_MS : s->rto_ms;
    s->armed_ms = act->timer_ms;
}

uint32_t tftp_send_base_rto(const struct tftp_send *s)
{
    if (!s->cfg.rto_min_ms || !s->have_rtt)
        return s->cfg.rto_ms;
    /* RFC 6298 §2.3, in ms with a 1 ms clock granularity G */
    uint32_t var4 = s->rttvar_x4 < 1 ? 1 : s->rttvar_x4;
    uint64_t rto = (s->srtt_x8 + 7) / 8 + var4;
    if (rto < s->cfg.rto_min_ms)
        rto = s->cfg.rto_min_ms;
    return rto > s->cfg.rto_ms ? s->cfg.rto_ms : (uint32_t)rto;
}

void tftp_send_seed_rtt(struct tftp_send *s, uint32_t srtt_x8, uint32_t rttvar_x4)
{
    if (!s->cfg.rto_min_ms || s->started)
        return;
    s->have_rtt = true;
    s->srtt_x8 = srtt_x8;
    s->rttvar_x4 = rttvar_x4;
    s->rto_ms = tftp_send_base_rto(s);
}

/* One RTT sample (RFC 6298 §2.2-2.3; alpha 1/8, beta 1/4), fixed point. */
static void rtt_sample(struct tftp_send *s, uint64_t sent_ms)
{
    uint64_t r = s->now_ms > sent_ms ? s->now_ms - sent_ms : 0;
    if (r > 60000)
        r = 60000;
    uint32_t r8 = (uint32_t)r * 8;
    if (!s->have_rtt) {
        s->srtt_x8 = r8;
        s->rttvar_x4 = (uint32_t)r * 2; /* R/2, x4 */
        s->have_rtt = true;
        return;
    }
    uint32_t srtt = s->srtt_x8;
    uint32_t err = r8 > srtt ? r8 - srtt : srtt - r8;            /* |SRTT - R|, x8 */
    s->rttvar_x4 = s->rttvar_x4 - s->rttvar_x4 / 4 + err / 8;      /* 3/4 var + 1/4 err */
    s->srtt_x8 = srtt - srtt / 8 + r8 / 8;                         /* 7/8 srtt + 1/8 R */
}

static void add_stale(struct tftp_send *s, uint32_t n)
{
    uint64_t v = (uint64_t)s->stale + n;
    s->stale = (uint32_t)(v > s->cfg.window ? s->cfg.window : v);
}

/* Uses one unit of the budget: true if this duplicate/gap ACK is explained by a
 * copy we retransmitted. */
static bool explained(struct tftp_send *s)
{
    if (s->stale == 0)
        return false;
    s->stale--;
    return true;
}

static void finish(struct tftp_send *s, enum tftp_send_outcome o, struct tftp_send_actions *act)
{
    s->outcome = o;
    act->outcome = o;
    act->timer = TFTP_SEND_TIMER_STOP;
    act->timer_ms = 0;
}

/* Sends from block `from` up to a full window past `acked`.  Blocks at or below
 * sent_hi are copies: each may come back as one extra ACK, hence the budget. */
static void send_window(struct tftp_send *s, uint64_t from, struct tftp_send_actions *act)
{
    uint64_t hi = s->acked + s->cfg.window;
    if (hi > s->nblocks)
        hi = s->nblocks;
    s->last_copies = 0;
    if (from > hi)
        return;
    act->first = from;
    act->count = hi - from + 1;
    s->blocks_sent += act->count;
    if (from <= s->sent_hi) {
        s->last_copies = (uint32_t)((s->sent_hi < hi ? s->sent_hi : hi) - from + 1);
        s->blocks_resent += s->last_copies;
        add_stale(s, s->last_copies);
        s->rtt_block = 0; /* Karn: an ACK may now answer either copy */
    }
    if (hi > s->sent_hi) {
        if (!s->rtt_block && !s->rtt_oack && !s->last_copies) { /* time the newest block */
            s->rtt_block = hi;
            s->rtt_sent_ms = s->now_ms;
        }
        s->sent_hi = hi;
    }
}

static void progress(struct tftp_send *s)
{
    s->tries = 0;
    s->idle_ms = 0;
    if (s->rto_hold)
        s->rto_hold--; /* the late ACK of what timed out, then the next window's */
    else
        s->rto_ms = tftp_send_base_rto(s);
}

void tftp_send_start(struct tftp_send *s, struct tftp_send_actions *act)
{
    reset_act(s, act);
    if (s->started) {
        act->note = TFTP_SEND_NOTE_IGNORED;
        return;
    }
    s->started = true;
    if (s->cfg.oack) {
        s->oack_pending = true;
        act->send_oack = true;
        s->rtt_oack = true;
        s->rtt_sent_ms = s->oack_sent_ms = s->now_ms;
    } else {
        send_window(s, 1, act);
    }
    arm(s, act);
}

void tftp_send_on_ack(struct tftp_send *s, uint16_t block, struct tftp_send_actions *act)
{
    reset_act(s, act);
    if (!s->started || s->outcome != TFTP_SEND_RUNNING) {
        act->note = TFTP_SEND_NOTE_IGNORED;
        return;
    }
    if (s->oack_pending) {
        if (block != 0) {
            s->dup_acks++;
            act->note = TFTP_SEND_NOTE_FUTURE_ACK; /* no DATA sent yet */
            return;
        }
        s->oack_pending = false;
        /* An OACK's round trip says little about a window's (the client takes
         * longer to take in a window of blocks than one small packet): only
         * lock-step learns from it. */
        if (s->rtt_oack && s->cfg.rto_min_ms && s->cfg.window == 1) {
            rtt_sample(s, s->rtt_sent_ms);
            s->rto_hold = 0;
        }
        s->rtt_oack = false;
        progress(s);
        act->note = TFTP_SEND_NOTE_PROGRESS;
        send_window(s, 1, act);
        arm(s, act);
        return;
    }
    /* Map the 16-bit number to the block at distance d above acked. */
    uint16_t d = (uint16_t)(block - (uint16_t)s->acked);
    uint64_t k = s->acked + d;
    if (d != 0 && k > s->sent_hi) {
        s->dup_acks++;
        bool old = (uint16_t)((uint16_t)s->acked - block) <= 32768;
        act->note = old ? TFTP_SEND_NOTE_OLD_ACK : TFTP_SEND_NOTE_FUTURE_ACK;
        return;
    }
    if (d == 0) {
        s->dup_acks++;
        act->note = TFTP_SEND_NOTE_DUP_ACK;
        if (explained(s) || s->cfg.window == 1 || s->acked == s->sent_hi)
            return; /* lock-step: RFC 1123 §4.2.3.1, never resend on a duplicate */
        /* The client lacks acked+1.  The timer is left running: this is no progress,
         * and a client repeating itself must not keep the transfer alive forever. */
        act->note = TFTP_SEND_NOTE_GAP;
        send_window(s, s->acked + 1, act);
        return;
    }
    bool full = k == s->sent_hi;
    if (full && s->stale > s->last_copies)
        s->stale = s->last_copies; /* older copies have been overtaken */
    bool gap = !full && !explained(s);
    s->acked = k;
    if (s->rtt_block && k >= s->rtt_block) {
        if (s->cfg.rto_min_ms)
            rtt_sample(s, s->rtt_sent_ms);
        s->rtt_block = 0;
        s->rto_hold = 0;
    }
    progress(s);
    if (k == s->nblocks) {
        act->note = TFTP_SEND_NOTE_PROGRESS;
        finish(s, TFTP_SEND_DONE, act);
        return;
    }
    act->note = gap ? TFTP_SEND_NOTE_GAP : TFTP_SEND_NOTE_PROGRESS;
    /* gap: resend from k+1; otherwise only blocks never sent (those between k and
     * sent_hi are still on their way). */
    send_window(s, gap || full ? k + 1 : s->sent_hi + 1, act);
    arm(s, act);
}

void tftp_send_on_timeout(struct tftp_send *s, struct tftp_send_actions *act)
{
    reset_act(s, act);
    if (!s->started || s->outcome != TFTP_SEND_RUNNING) {
        act->note = TFTP_SEND_NOTE_IGNORED;
        return;
    }
    s->timeouts++;
    s->idle_ms += s->armed_ms;
    s->tries++;
    uint64_t min_idle = (uint64_t)s->cfg.client_timeout_s * 2000;
    if (s->tries > s->cfg.retries && s->idle_ms >= min_idle) {
        bool all_sent = !s->oack_pending && s->sent_hi == s->nblocks;
        finish(s, all_sent ? TFTP_SEND_DONE_UNACKED : TFTP_SEND_TIMEOUT, act);
        return;
    }
    act->note = TFTP_SEND_NOTE_RETRANSMIT;
    if (s->oack_pending) {
        act->send_oack = true;
        add_stale(s, 1); /* a second ACK 0 may come back */
        s->rtt_oack = false;
        s->oack_sent_ms = s->now_ms;
    } else
        send_window(s, s->acked + 1, act);
    s->rto_ms = s->rto_ms > s->cfg.rto_max_ms / 2 ? s->cfg.rto_max_ms : s->rto_ms * 2;
    s->rto_hold = s->cfg.rto_min_ms ? 2 : 0; /* adaptive: hold it for a while (tftp_send.h) */
    arm(s, act);
}

void tftp_send_on_request(struct tftp_send *s, struct tftp_send_actions *act)
{
    reset_act(s, act);
    if (!s->started || s->outcome != TFTP_SEND_RUNNING || !s->oack_pending ||
        s->now_ms - s->oack_sent_ms < tftp_send_base_rto(s)) {
        act->note = TFTP_SEND_NOTE_IGNORED;
        return;
    }
    act->note = TFTP_SEND_NOTE_RETRANSMIT;
    act->send_oack = true;
    add_stale(s, 1);
    s->rtt_oack = false;
    s->oack_sent_ms = s->now_ms;
}

void tftp_send_on_error(struct tftp_send *s, uint16_t code, struct tftp_send_actions *act)
{
    reset_act(s, act);
    if (s->outcome != TFTP_SEND_RUNNING) {
        act->note = TFTP_SEND_NOTE_IGNORED;
        return;
    }
    s->error_code = code;
    finish(s, TFTP_SEND_ABORTED, act);
}

uint64_t tftp_send_block_offset(const struct tftp_send *s, uint64_t k)
{
    if (k == 0 || k > s->nblocks)
        return s->cfg.size;
    return (k - 1) * s->cfg.blksize;
}

uint32_t tftp_send_block_len(const struct tftp_send *s, uint64_t k)
{
    uint64_t off = tftp_send_block_offset(s, k);
    uint64_t left = s->cfg.size - off;
    return (uint32_t)(left < s->cfg.blksize ? left : s->cfg.blksize);
}

const char *tftp_send_outcome_str(enum tftp_send_outcome o)
{
    switch (o) {
    case TFTP_SEND_RUNNING: return "running";
    case TFTP_SEND_DONE: return "done";
    case TFTP_SEND_DONE_UNACKED: return "completed, final ACK missing";
    case TFTP_SEND_ABORTED: return "client aborted";
    case TFTP_SEND_TIMEOUT: return "timed out";
    }
    return "?";
}
