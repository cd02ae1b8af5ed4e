/* proto/tftp.c — TFTP codec, option negotiation, file names, netascii.  See tftp.h. */
#include "proto/tftp.h"

#include <string.h>

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

/* Case-insensitive compare of s[0..n) with the lower-case C string lit. */
static bool eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (lit[i] == '\0' || lower((unsigned char)s[i]) != lit[i])
            return false;
    return lit[i] == '\0';
}

/* Strict decimal: 1+ digits, nothing else.  Saturates at UINT64_MAX. */
static bool parse_dec(const char *s, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        x = (x > (UINT64_MAX - d) / 10) ? UINT64_MAX : x * 10 + d;
    }
    *v = x;
    return true;
}

/* Next NUL-terminated string in p[*off..end); the caller guarantees p[end-1] == 0,
 * so every string found is terminated inside the buffer. */
static const char *next_str(const uint8_t *p, size_t end, size_t *off, size_t *slen)
{
    const char *s = (const char *)p + *off;
    size_t n = strnlen(s, end - *off);
    *slen = n;
    *off += n + 1;
    return s;
}

static bool all_zero(const uint8_t *p, size_t from, size_t end)
{
    for (size_t i = from; i < end; i++)
        if (p[i])
            return false;
    return true;
}

/* Option pairs from p[off..end), p[end-1] == 0 (RFC 2347). */
static enum tftp_result parse_options(const uint8_t *p, size_t off, size_t end,
                                      struct tftp_options *o)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"blksize", TFTP_OPT_BLKSIZE},
        {"tsize", TFTP_OPT_TSIZE},
        {"timeout", TFTP_OPT_TIMEOUT},
        {"windowsize", TFTP_OPT_WINDOWSIZE},
    };
    memset(o, 0, sizeof *o);
    while (off < end) {
        size_t nlen, vlen, at = off;
        const char *name = next_str(p, end, &off, &nlen);
        if (nlen == 0) {
            /* Some stacks pad requests with NULs: fine at the end, not in the middle. */
            if (all_zero(p, at, end))
                return TFTP_OK;
            return TFTP_EOPTION;
        }
        if (off >= end)
            return TFTP_EOPTION; /* name without value */
        const char *val = next_str(p, end, &off, &vlen);
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (eq_nocase(name, nlen, known[i].name))
                bit = known[i].bit;
        if (bit == 0) {
            o->unknown++;
            continue;
        }
        if ((o->present | o->malformed) & bit)
            continue; /* duplicate: the first one stands */
        uint64_t v;
        if (!parse_dec(val, vlen, &v)) {
            o->malformed |= bit;
            continue;
        }
        o->present |= bit;
        switch (bit) {
        case TFTP_OPT_BLKSIZE: o->blksize = v; break;
        case TFTP_OPT_TSIZE: o->tsize = v; break;
        case TFTP_OPT_TIMEOUT: o->timeout = v; break;
        default: o->windowsize = v; break;
        }
    }
    return TFTP_OK;
}

static enum tftp_result parse_request(const uint8_t *p, size_t len, struct tftp_request *rq)
{
    if (len == 2)
        return TFTP_ETRUNC;
    if (p[len - 1] != 0)
        return TFTP_ENONUL;
    size_t off = 2, mlen;
    rq->filename = next_str(p, len, &off, &rq->filename_len);
    if (off >= len)
        return TFTP_ETRUNC; /* no mode string */
    const char *mode = next_str(p, len, &off, &mlen);
    if (rq->filename_len == 0 || rq->filename_len > TFTP_FILENAME_MAX)
        return TFTP_EFILENAME;
    if (eq_nocase(mode, mlen, "octet"))
        rq->mode = TFTP_MODE_OCTET;
    else if (eq_nocase(mode, mlen, "netascii"))
        rq->mode = TFTP_MODE_NETASCII;
    else
        return TFTP_EMODE; /* "mail" (obsolete, RFC 1350 §1) and anything else */
    return parse_options(p, off, len, &rq->opts);
}

enum tftp_result tftp_parse(const uint8_t *pkt, size_t len, struct tftp_packet *out)
{
    memset(out, 0, sizeof *out);
    if (pkt == NULL || len < 2)
        return TFTP_ETRUNC;
    uint16_t op = get16(pkt);
    if (op < TFTP_OP_RRQ || op > TFTP_OP_OACK)
        return TFTP_EOPCODE;
    out->op = (enum tftp_opcode)op;
    switch (out->op) {
    case TFTP_OP_RRQ:
    case TFTP_OP_WRQ:
        return parse_request(pkt, len, &out->rq);
    case TFTP_OP_DATA:
        if (len < TFTP_HDR_LEN)
            return TFTP_ETRUNC;
        out->data.block = get16(pkt + 2);
        out->data.data = pkt + TFTP_HDR_LEN;
        out->data.len = len - TFTP_HDR_LEN;
        return TFTP_OK;
    case TFTP_OP_ACK:
        if (len < TFTP_HDR_LEN)
            return TFTP_ETRUNC;
        out->ack.block = get16(pkt + 2);
        return TFTP_OK;
    case TFTP_OP_ERROR:
        if (len < TFTP_HDR_LEN)
            return TFTP_ETRUNC;
        out->error.code = get16(pkt + 2);
        out->error.msg = (const char *)pkt + TFTP_HDR_LEN;
        out->error.msg_len = strnlen(out->error.msg, len - TFTP_HDR_LEN);
        return TFTP_OK;
    case TFTP_OP_OACK:
        if (len == 2)
            return TFTP_EOPTION; /* an empty OACK is not a valid packet */
        if (pkt[len - 1] != 0)
            return TFTP_ENONUL;
        return parse_options(pkt, 2, len, &out->oack);
    }
    return TFTP_EOPCODE;
}

/* ---- encoders ---- */

enum tftp_result tftp_encode_data_header(uint8_t *buf, size_t cap, uint16_t block, size_t *len)
{
    if (cap < TFTP_HDR_LEN)
        return TFTP_ENOSPACE;
    put16(buf, TFTP_OP_DATA);
    put16(buf + 2, block);
    *len = TFTP_HDR_LEN;
    return TFTP_OK;
}

enum tftp_result tftp_encode_ack(uint8_t *buf, size_t cap, uint16_t block, size_t *len)
{
    if (cap < TFTP_HDR_LEN)
        return TFTP_ENOSPACE;
    put16(buf, TFTP_OP_ACK);
    put16(buf + 2, block);
    *len = TFTP_HDR_LEN;
    return TFTP_OK;
}

enum tftp_result tftp_encode_error(uint8_t *buf, size_t cap, uint16_t code, const char *msg,
                                   size_t *len)
{
    if (cap < TFTP_HDR_LEN + 1)
        return TFTP_ENOSPACE;
    if (msg == NULL)
        msg = tftp_error_text(code);
    size_t n = strnlen(msg, cap - TFTP_HDR_LEN - 1);
    put16(buf, TFTP_OP_ERROR);
    put16(buf + 2, code);
    memcpy(buf + TFTP_HDR_LEN, msg, n);
    buf[TFTP_HDR_LEN + n] = 0;
    *len = TFTP_HDR_LEN + n + 1;
    return TFTP_OK;
}

/* Appends "s\0" at *off; false if it does not fit. */
static bool put_str(uint8_t *buf, size_t cap, size_t *off, const char *s, size_t n)
{
    if (cap - *off < n + 1)
        return false;
    memcpy(buf + *off, s, n);
    buf[*off + n] = 0;
    *off += n + 1;
    return true;
}

static bool put_dec(uint8_t *buf, size_t cap, size_t *off, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put_str(buf, cap, off, tmp + sizeof tmp - n, n);
}

static bool put_options(uint8_t *buf, size_t cap, size_t *off, const struct tftp_options *o)
{
    static const char *const names[] = {"blksize", "tsize", "timeout", "windowsize"};
    const uint64_t vals[] = {o->blksize, o->tsize, o->timeout, o->windowsize};
    for (unsigned i = 0; i < 4; i++) {
        if (!(o->present & (1u << i)))
            continue;
        if (!put_str(buf, cap, off, names[i], strlen(names[i])) || !put_dec(buf, cap, off, vals[i]))
            return false;
    }
    return true;
}

#define TFTP_OPT_ALL (TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE | TFTP_OPT_TIMEOUT | TFTP_OPT_WINDOWSIZE)

enum tftp_result tftp_encode_oack(uint8_t *buf, size_t cap, const struct tftp_options *opts,
                                  size_t *len)
{
    if ((opts->present & TFTP_OPT_ALL) == 0)
        return TFTP_EINVAL;
    if (cap < 2)
        return TFTP_ENOSPACE;
    size_t off = 2;
    put16(buf, TFTP_OP_OACK);
    if (!put_options(buf, cap, &off, opts))
        return TFTP_ENOSPACE;
    *len = off;
    return TFTP_OK;
}

enum tftp_result tftp_encode_request(uint8_t *buf, size_t cap, enum tftp_opcode op,
                                     const char *filename, enum tftp_mode mode,
                                     const struct tftp_options *opts, size_t *len)
{
    if (op != TFTP_OP_RRQ && op != TFTP_OP_WRQ)
        return TFTP_EINVAL;
    size_t fl = strnlen(filename, TFTP_FILENAME_MAX + 1);
    if (fl == 0 || fl > TFTP_FILENAME_MAX)
        return TFTP_EFILENAME;
    const char *m = mode == TFTP_MODE_NETASCII ? "netascii" : "octet";
    size_t off = 2;
    if (cap < 2)
        return TFTP_ENOSPACE;
    put16(buf, (uint16_t)op);
    if (!put_str(buf, cap, &off, filename, fl) || !put_str(buf, cap, &off, m, strlen(m)))
        return TFTP_ENOSPACE;
    if (opts && !put_options(buf, cap, &off, opts))
        return TFTP_ENOSPACE;
    *len = off;
    return TFTP_OK;
}

const char *tftp_error_text(uint16_t code)
{
    switch (code) {
    case TFTP_ERR_NOT_FOUND: return "File not found";
    case TFTP_ERR_ACCESS: return "Access violation";
    case TFTP_ERR_DISK_FULL: return "Disk full or allocation exceeded";
    case TFTP_ERR_ILLEGAL_OP: return "Illegal TFTP operation";
    case TFTP_ERR_UNKNOWN_TID: return "Unknown transfer ID";
    case TFTP_ERR_EXISTS: return "File already exists";
    case TFTP_ERR_NO_USER: return "No such user";
    case TFTP_ERR_OPTION: return "Option negotiation failed";
    default: return "Undefined error";
    }
}

const char *tftp_result_str(enum tftp_result r)
{
    switch (r) {
    case TFTP_OK: return "TFTP_OK";
    case TFTP_ETRUNC: return "TFTP_ETRUNC";
    case TFTP_EOPCODE: return "TFTP_EOPCODE";
    case TFTP_ENONUL: return "TFTP_ENONUL";
    case TFTP_EMODE: return "TFTP_EMODE";
    case TFTP_EFILENAME: return "TFTP_EFILENAME";
    case TFTP_ETRAVERSAL: return "TFTP_ETRAVERSAL";
    case TFTP_EOPTION: return "TFTP_EOPTION";
    case TFTP_ENOSPACE: return "TFTP_ENOSPACE";
    case TFTP_EINVAL: return "TFTP_EINVAL";
    }
    return "TFTP_E?";
}

/* ---- file names ---- */

enum tftp_result tftp_filename_normalize(const char *in, size_t len, char *out, size_t cap,
                                         size_t *out_len)
{
    if (len == 0 || len > TFTP_FILENAME_MAX)
        return TFTP_EFILENAME;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f)
            return TFTP_EFILENAME;
    }
    if (in[len - 1] == '/' || in[len - 1] == '\\')
        return TFTP_EFILENAME; /* names a directory */
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (in[i] == '/' || in[i] == '\\'))
            i++;
        size_t s = i;
        while (i < len && in[i] != '/' && in[i] != '\\')
            i++;
        size_t n = i - s;
        if (n == 0 || (n == 1 && in[s] == '.'))
            continue;
        if (n == 2 && in[s] == '.' && in[s + 1] == '.')
            return TFTP_ETRAVERSAL;
        if (o + (o > 0) + n + 1 > cap)
            return TFTP_ENOSPACE;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, in + s, n);
        o += n;
    }
    if (o == 0)
        return TFTP_EFILENAME; /* "/", "./." ... */
    out[o] = 0;
    *out_len = o;
    return TFTP_OK;
}

/* ---- negotiation ---- */

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

uint32_t tftp_blksize_for_mtu(uint32_t mtu)
{
    uint64_t b = mtu > 32 ? (uint64_t)mtu - 32 : 0;
    return (uint32_t)clamp(b, TFTP_BLKSIZE_MIN, TFTP_BLKSIZE_MAX);
}

enum tftp_result tftp_negotiate(enum tftp_opcode op, const struct tftp_request *rq,
                                const struct tftp_limits *lim, uint64_t file_size,
                                struct tftp_negotiated *out)
{
    memset(out, 0, sizeof *out);
    out->blksize = TFTP_BLKSIZE_DEFAULT;
    out->windowsize = 1;
    if (op != TFTP_OP_RRQ && op != TFTP_OP_WRQ)
        return TFTP_EINVAL;
    const struct tftp_options *in = &rq->opts;
    struct tftp_options *acc = &out->oack;

    if (in->present & TFTP_OPT_BLKSIZE) {
        uint64_t hi = TFTP_BLKSIZE_MAX;
        if (lim->blksize_max && lim->blksize_max < hi)
            hi = lim->blksize_max;
        if (lim->blksize_mtu && lim->blksize_mtu < hi)
            hi = lim->blksize_mtu;
        if (hi < TFTP_BLKSIZE_MIN)
            hi = TFTP_BLKSIZE_MIN;
        /* RFC 2348 says 8..65464; "1" is clamped up rather than refused, as asked
         * in the issue: a refusal would leave such a client at 512 anyway. */
        acc->blksize = clamp(in->blksize, TFTP_BLKSIZE_MIN, hi);
        acc->present |= TFTP_OPT_BLKSIZE;
        out->blksize = (uint32_t)acc->blksize;
    }
    if (in->present & TFTP_OPT_WINDOWSIZE) {
        uint64_t hi = lim->window_max ? lim->window_max : 1;
        if (hi > TFTP_WINDOWSIZE_MAX)
            hi = TFTP_WINDOWSIZE_MAX;
        acc->windowsize = clamp(in->windowsize, 1, hi);
        acc->present |= TFTP_OPT_WINDOWSIZE;
        out->windowsize = (uint32_t)acc->windowsize;
    }
    if ((in->present & TFTP_OPT_TIMEOUT) && in->timeout >= TFTP_TIMEOUT_MIN &&
        in->timeout <= TFTP_TIMEOUT_MAX) {
        acc->timeout = in->timeout; /* RFC 2349: the reply must carry the same value */
        acc->present |= TFTP_OPT_TIMEOUT;
        out->timeout_s = (uint32_t)in->timeout;
    }
    if (in->present & TFTP_OPT_TSIZE) {
        acc->tsize = op == TFTP_OP_RRQ ? file_size : in->tsize;
        acc->present |= TFTP_OPT_TSIZE;
    }
    return TFTP_OK;
}

/* ---- netascii ---- */

void tftp_netascii_enc_init(struct tftp_netascii_enc *st)
{
    st->in_pos = 0;
    st->out_pos = 0;
    st->pending = -1;
}

bool tftp_netascii_enc_idle(const struct tftp_netascii_enc *st) { return st->pending < 0; }

size_t tftp_netascii_encode(struct tftp_netascii_enc *st, const uint8_t *in, size_t in_len,
                            uint8_t *out, size_t cap, size_t *consumed)
{
    size_t i = 0, o = 0;
    if (st->pending >= 0 && o < cap) {
        out[o++] = (uint8_t)st->pending;
        st->pending = -1;
    }
    while (i < in_len && o < cap) {
        uint8_t c = in[i++];
        if (c == '\n' || c == '\r') {
            out[o++] = '\r';
            uint8_t second = c == '\n' ? '\n' : '\0';
            if (o < cap)
                out[o++] = second;
            else
                st->pending = second; /* the pair straddles the block end */
        } else {
            out[o++] = c;
        }
    }
    st->in_pos += i;
    st->out_pos += o;
    *consumed = i;
    return o;
}

uint64_t tftp_netascii_size(const uint8_t *in, size_t len)
{
    uint64_t n = len;
    for (size_t i = 0; i < len; i++)
        n += (in[i] == '\n' || in[i] == '\r');
    return n;
}

void tftp_netascii_dec_init(struct tftp_netascii_dec *st) { st->cr = false; }

size_t tftp_netascii_decode(struct tftp_netascii_dec *st, const uint8_t *in, size_t in_len,
                            uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        uint8_t c = in[i];
        if (st->cr) {
            st->cr = false;
            if (c == '\n') {
                out[o++] = '\n';
                continue;
            }
            out[o++] = '\r';
            if (c == '\0')
                continue;
            /* bare CR: keep it and handle c normally */
        }
        if (c == '\r')
            st->cr = true;
        else
            out[o++] = c;
    }
    return o;
}

size_t tftp_netascii_decode_finish(struct tftp_netascii_dec *st, uint8_t *out)
{
    if (!st->cr)
        return 0;
    st->cr = false;
    out[0] = '\r';
    return 1;
}
