/* tests/fuzz/fuzz_tftp.c — libFuzzer target for proto/tftp and proto/tftp_send.
 *
 * Every input is used three ways:
 *  1. as one TFTP packet: parsed; requests are normalised, negotiated under several
 *     limits, their OACK encoded and parsed back; every packet kind re-encoded and
 *     compared;
 *  2. as file contents for netascii: encoded in odd-sized blocks, decoded, compared;
 *  3. as a script for the sender state machine: a configuration from the first
 *     bytes, then one event per byte, with the invariants checked after each one.
 * A broken invariant aborts (libFuzzer reports it as a crash).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tftp.h"
#include "proto/tftp_send.h"

#define CHECK(c)                                                                   \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
            abort();                                                               \
        }                                                                          \
    } while (0)

#define ALL_OPTS (TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE | TFTP_OPT_TIMEOUT | TFTP_OPT_WINDOWSIZE)

static void same_options(const struct tftp_options *a, const struct tftp_options *b)
{
    CHECK(a->present == b->present);
    if (a->present & TFTP_OPT_BLKSIZE)
        CHECK(a->blksize == b->blksize);
    if (a->present & TFTP_OPT_TSIZE)
        CHECK(a->tsize == b->tsize);
    if (a->present & TFTP_OPT_TIMEOUT)
        CHECK(a->timeout == b->timeout);
    if (a->present & TFTP_OPT_WINDOWSIZE)
        CHECK(a->windowsize == b->windowsize);
}

static void check_request(const struct tftp_packet *p, const uint8_t *data, size_t size)
{
    const struct tftp_request *rq = &p->rq;
    const char *base = (const char *)data;
    CHECK(rq->filename >= base && rq->filename + rq->filename_len < base + size);
    CHECK(rq->filename_len >= 1 && rq->filename_len <= TFTP_FILENAME_MAX);
    CHECK(rq->filename[rq->filename_len] == 0);
    CHECK((rq->opts.present & ~ALL_OPTS) == 0 && (rq->opts.present & rq->opts.malformed) == 0);

    char norm[TFTP_FILENAME_MAX + 1];
    size_t nl = 0;
    if (tftp_filename_normalize(rq->filename, rq->filename_len, norm, sizeof norm, &nl) == TFTP_OK) {
        CHECK(nl >= 1 && nl <= rq->filename_len && norm[nl] == 0 && strlen(norm) == nl);
        CHECK(norm[0] != '/' && norm[nl - 1] != '/');
        CHECK(strchr(norm, '\\') == NULL && strstr(norm, "//") == NULL);
        CHECK(strcmp(norm, "..") != 0 && strncmp(norm, "../", 3) != 0 && strstr(norm, "/../") == NULL);
        CHECK(nl < 3 || strcmp(norm + nl - 3, "/..") != 0);
        for (size_t i = 0; i < nl; i++)
            CHECK((unsigned char)norm[i] >= 0x20 && norm[i] != 0x7f);
        /* normalising is idempotent */
        char again[TFTP_FILENAME_MAX + 1];
        size_t al;
        CHECK(tftp_filename_normalize(norm, nl, again, sizeof again, &al) == TFTP_OK);
        CHECK(al == nl && memcmp(again, norm, nl) == 0);
    }

    static const struct tftp_limits lims[] = {
        {0, 0, 0}, {1468, 0, 16}, {0, 1468, 64}, {8, 8, 1}, {65464, 9000, 100000}, {512, 0, 4},
    };
    uint64_t fsize = size * 1000003ull;
    for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
        struct tftp_negotiated n;
        CHECK(tftp_negotiate(p->op, rq, &lims[i], fsize, &n) == TFTP_OK);
        /* never an option the client did not ask for (with a usable value) */
        CHECK((n.oack.present & ~rq->opts.present) == 0);
        CHECK(n.blksize >= TFTP_BLKSIZE_MIN && n.blksize <= TFTP_BLKSIZE_MAX);
        if (lims[i].blksize_max && (n.oack.present & TFTP_OPT_BLKSIZE))
            CHECK(n.blksize <= (lims[i].blksize_max < 8 ? 8 : lims[i].blksize_max));
        if (lims[i].blksize_mtu && (n.oack.present & TFTP_OPT_BLKSIZE))
            CHECK(n.blksize <= lims[i].blksize_mtu);
        CHECK(n.windowsize >= 1 && n.windowsize <= TFTP_WINDOWSIZE_MAX);
        CHECK(n.windowsize <= (lims[i].window_max ? lims[i].window_max : 1));
        if (!(n.oack.present & TFTP_OPT_BLKSIZE))
            CHECK(n.blksize == TFTP_BLKSIZE_DEFAULT);
        if (!(n.oack.present & TFTP_OPT_WINDOWSIZE))
            CHECK(n.windowsize == 1);
        if (n.oack.present & TFTP_OPT_TSIZE)
            CHECK(n.oack.tsize == (p->op == TFTP_OP_RRQ ? fsize : rq->opts.tsize));
        if (n.oack.present & TFTP_OPT_TIMEOUT)
            CHECK(n.oack.timeout >= 1 && n.oack.timeout <= 255 && n.timeout_s == n.oack.timeout);
        /* blksize, tsize and windowsize asked with a number are always answered */
        CHECK(((rq->opts.present ^ n.oack.present) & (TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE |
                                                       TFTP_OPT_WINDOWSIZE)) == 0);

        uint8_t out[256];
        size_t ol;
        enum tftp_result r = tftp_encode_oack(out, sizeof out, &n.oack, &ol);
        if (n.oack.present == 0) {
            CHECK(r == TFTP_EINVAL);
            continue;
        }
        CHECK(r == TFTP_OK && ol <= sizeof out);
        struct tftp_packet q;
        CHECK(tftp_parse(out, ol, &q) == TFTP_OK && q.op == TFTP_OP_OACK);
        same_options(&q.oack, &n.oack);
        CHECK(q.oack.unknown == 0 && q.oack.malformed == 0);
    }

    /* re-encode the request and read it back */
    uint8_t buf[600];
    size_t bl;
    CHECK(tftp_encode_request(buf, sizeof buf, p->op, rq->filename, rq->mode, &rq->opts, &bl) == TFTP_OK);
    struct tftp_packet q;
    CHECK(tftp_parse(buf, bl, &q) == TFTP_OK);
    CHECK(q.op == p->op && q.rq.mode == rq->mode && q.rq.filename_len == rq->filename_len);
    CHECK(memcmp(q.rq.filename, rq->filename, rq->filename_len) == 0);
    same_options(&q.rq.opts, &rq->opts);
}

static void check_packet(const uint8_t *data, size_t size)
{
    struct tftp_packet p;
    enum tftp_result r = tftp_parse(data, size, &p);
    CHECK(tftp_result_str(r) != NULL);
    if (r != TFTP_OK)
        return;
    uint8_t buf[64];
    size_t bl;
    struct tftp_packet q;
    switch (p.op) {
    case TFTP_OP_RRQ:
    case TFTP_OP_WRQ:
        check_request(&p, data, size);
        break;
    case TFTP_OP_DATA:
        CHECK(size >= 4 && p.data.data == data + 4 && p.data.len == size - 4);
        CHECK(tftp_encode_data_header(buf, sizeof buf, p.data.block, &bl) == TFTP_OK);
        CHECK(bl == 4 && memcmp(buf, data, 4) == 0);
        break;
    case TFTP_OP_ACK:
        CHECK(tftp_encode_ack(buf, sizeof buf, p.ack.block, &bl) == TFTP_OK);
        CHECK(bl == 4 && memcmp(buf, data, 4) == 0);
        break;
    case TFTP_OP_ERROR: {
        CHECK(p.error.msg == (const char *)data + 4 && p.error.msg_len <= size - 4);
        CHECK(memchr(p.error.msg, 0, p.error.msg_len) == NULL);
        char msg[64];
        size_t ml = p.error.msg_len < sizeof msg - 1 ? p.error.msg_len : sizeof msg - 1;
        memcpy(msg, p.error.msg, ml);
        msg[ml] = 0;
        CHECK(tftp_encode_error(buf, sizeof buf, p.error.code, msg, &bl) == TFTP_OK);
        CHECK(bl <= sizeof buf && buf[bl - 1] == 0);
        CHECK(tftp_parse(buf, bl, &q) == TFTP_OK && q.op == TFTP_OP_ERROR);
        CHECK(q.error.code == p.error.code && q.error.msg_len <= ml);
        CHECK(memcmp(q.error.msg, msg, q.error.msg_len) == 0);
        break;
    }
    case TFTP_OP_OACK: {
        uint8_t out[256];
        size_t ol;
        r = tftp_encode_oack(out, sizeof out, &p.oack, &ol);
        if (p.oack.present == 0) {
            CHECK(r == TFTP_EINVAL);
            break;
        }
        CHECK(r == TFTP_OK);
        CHECK(tftp_parse(out, ol, &q) == TFTP_OK);
        same_options(&q.oack, &p.oack);
        break;
    }
    }
}

static void check_netascii(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    size_t bs = 1 + data[0] % 23;
    uint64_t want = tftp_netascii_size(data, size);
    CHECK(want == tftp_netascii_size(data, size / 2) + tftp_netascii_size(data + size / 2, size - size / 2));
    struct tftp_netascii_enc enc;
    struct tftp_netascii_dec dec;
    tftp_netascii_enc_init(&enc);
    tftp_netascii_dec_init(&dec);
    uint8_t *back = malloc(size + 1), blk[32], dbuf[33];
    size_t blen = 0;
    uint64_t total = 0, blocks = 0;
    for (;;) {
        size_t n = 0;
        while (n < bs && !(enc.in_pos == size && tftp_netascii_enc_idle(&enc))) {
            size_t used, left = size - (size_t)enc.in_pos, give = left < 5 ? left : 5;
            n += tftp_netascii_encode(&enc, data + enc.in_pos, give, blk + n, bs - n, &used);
            CHECK(used <= give);
        }
        blocks++;
        total += n;
        size_t d = tftp_netascii_decode(&dec, blk, n, dbuf);
        CHECK(d <= n + 1 && blen + d <= size);
        memcpy(back + blen, dbuf, d);
        blen += d;
        if (n < bs)
            break;
    }
    blen += tftp_netascii_decode_finish(&dec, back + blen);
    CHECK(total == want && enc.out_pos == want && enc.in_pos == size);
    CHECK(blocks == want / bs + 1);
    CHECK(blen == size && memcmp(back, data, size) == 0);
    free(back);
}

/* ---- sender state machine ---- */

struct model {
    uint64_t acked, sent_hi;
    enum tftp_send_outcome outcome;
    bool dup; /* the event was an ACK repeating the highest acknowledged block */
};

static void check_step(const struct tftp_send *s, const struct tftp_send_actions *a, struct model *m)
{
    CHECK(a->outcome == s->outcome);
    CHECK(s->acked <= s->sent_hi && s->sent_hi <= s->nblocks);
    CHECK(s->acked >= m->acked && s->sent_hi >= m->sent_hi); /* never backwards */
    CHECK(s->sent_hi - s->acked <= s->cfg.window);
    CHECK(s->stale <= s->cfg.window);
    if (m->outcome != TFTP_SEND_RUNNING) { /* terminal stays terminal, silent */
        CHECK(s->outcome == m->outcome && a->count == 0 && !a->send_oack);
        CHECK(a->timer == TFTP_SEND_TIMER_KEEP);
    }
    if (s->outcome == TFTP_SEND_RUNNING) {
        if (s->started && !s->oack_pending && s->sent_hi) {
            uint64_t hi = s->acked + s->cfg.window;
            CHECK(s->sent_hi == (hi < s->nblocks ? hi : s->nblocks));
        }
        CHECK(a->timer != TFTP_SEND_TIMER_STOP);
    } else {
        CHECK(a->count == 0 && !a->send_oack);
        if (m->outcome == TFTP_SEND_RUNNING)
            CHECK(a->timer == TFTP_SEND_TIMER_STOP);
    }
    if (s->outcome == TFTP_SEND_DONE)
        CHECK(s->acked == s->nblocks);
    if (s->outcome == TFTP_SEND_DONE_UNACKED)
        CHECK(s->sent_hi == s->nblocks && s->acked < s->nblocks);
    if (a->send_oack)
        CHECK(s->oack_pending && a->count == 0);
    if (a->count) {
        CHECK(a->first > s->acked && a->first + a->count - 1 <= s->sent_hi);
        CHECK(a->count <= s->cfg.window);
        /* the first 8 and last 8 blocks of the range (windows go up to 32767) */
        for (uint64_t k = a->first; k < a->first + a->count; k = (k - a->first == 7 && a->count > 16) ? a->first + a->count - 8 : k + 1) {
            uint64_t off = tftp_send_block_offset(s, k);
            uint32_t len = tftp_send_block_len(s, k);
            CHECK(off == (k - 1) * s->cfg.blksize && off + len <= s->cfg.size);
            CHECK(k < s->nblocks ? len == s->cfg.blksize : len < s->cfg.blksize);
        }
    }
    if (a->timer == TFTP_SEND_TIMER_ARM)
        CHECK(a->timer_ms >= s->cfg.rto_ms && a->timer_ms <= s->cfg.rto_max_ms);
    if (a->note == TFTP_SEND_NOTE_OLD_ACK || a->note == TFTP_SEND_NOTE_FUTURE_ACK ||
        a->note == TFTP_SEND_NOTE_IGNORED)
        CHECK(a->count == 0 && s->acked == m->acked && a->timer == TFTP_SEND_TIMER_KEEP);
    if (m->dup && (s->cfg.window == 1 || a->note == TFTP_SEND_NOTE_DUP_ACK))
        CHECK(a->count == 0 && s->acked == m->acked); /* lock-step: RFC 1123 §4.2.3.1 */
    if (m->dup && a->count)
        CHECK(a->note == TFTP_SEND_NOTE_GAP && a->first == s->acked + 1 && a->timer == TFTP_SEND_TIMER_KEEP);
    CHECK(tftp_send_outcome_str(s->outcome) != NULL);
    m->acked = s->acked;
    m->sent_hi = s->sent_hi;
    m->outcome = s->outcome;
    m->dup = false;
}

static void ack(struct tftp_send *s, uint16_t n, struct tftp_send_actions *a, struct model *m)
{
    m->dup = s->started && !s->oack_pending && s->outcome == TFTP_SEND_RUNNING &&
             n == tftp_send_block_wire(s->acked);
    tftp_send_on_ack(s, n, a);
}

static uint64_t rd(const uint8_t *d, size_t n, size_t *i, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned b = 0; b < bytes; b++)
        v = (v << 8) | (*i < n ? d[(*i)++] : 0);
    return v;
}

static void run_sender(const uint8_t *d, size_t n)
{
    static const uint32_t bss[] = {8, 512, 1024, 1408, 1432, 1468, 65464, 9};
    static const uint32_t wins[] = {1, 2, 4, 16, 64, 32767, 3, 1};
    size_t i = 0;
    uint64_t sel = rd(d, n, &i, 2), size = rd(d, n, &i, 4);
    struct tftp_send_config cfg = {
        .blksize = bss[sel & 7],
        .window = wins[(sel >> 3) & 7],
        .oack = (sel >> 6) & 1,
        .rto_ms = (sel >> 7) & 1 ? 0 : 1 + ((sel >> 8) & 0xff),
        .retries = (sel >> 12) & 7,
        .client_timeout_s = (sel >> 15) ? 2 : 0,
    };
    /* large sizes with small blocks cross the 16-bit rollover many times */
    cfg.size = (sel >> 14) & 1 ? size << 12 : size % 100000;
    struct tftp_send s;
    if (tftp_send_init(&s, &cfg) != TFTP_OK)
        abort(); /* every configuration above is valid */
    CHECK(s.nblocks == cfg.size / cfg.blksize + 1);
    struct tftp_send_actions a;
    struct model m = {0, 0, TFTP_SEND_RUNNING, false};
    tftp_send_start(&s, &a);
    check_step(&s, &a, &m);
    CHECK(a.send_oack == cfg.oack && a.timer == TFTP_SEND_TIMER_ARM);
    while (i < n) {
        uint8_t b = d[i++];
        uint64_t x;
        switch (b & 7) {
        case 0: /* an ACK at or just past the window */
            x = rd(d, n, &i, 1) % (s.cfg.window + 3);
            ack(&s, tftp_send_block_wire(s.acked + x), &a, &m);
            break;
        case 1:
            ack(&s, (uint16_t)rd(d, n, &i, 2), &a, &m);
            break;
        case 2:
        case 3:
            tftp_send_on_timeout(&s, &a);
            break;
        case 4:
            ack(&s, tftp_send_block_wire(s.sent_hi), &a, &m);
            break;
        case 5:
            ack(&s, tftp_send_block_wire(s.acked), &a, &m);
            break;
        case 6:
            ack(&s, 0, &a, &m);
            break;
        default:
            if (b >> 3 == 0x1f)
                tftp_send_on_error(&s, (uint16_t)rd(d, n, &i, 2), &a);
            else if (b >> 3 == 0x1e)
                tftp_send_start(&s, &a); /* a second start is ignored */
            else
                ack(&s, tftp_send_block_wire(s.acked + 1 + (b >> 3) % s.cfg.window), &a, &m);
            break;
        }
        check_step(&s, &a, &m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_packet(data, size);
    check_netascii(data, size);
    run_sender(data, size);
    return 0;
}
