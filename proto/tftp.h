/* proto/tftp.h — TFTP wire format: codec, option negotiation, file names, netascii.
 *
 * Pure: no I/O, no allocation, no globals.  Parsers take the UDP payload and fill
 * a struct whose pointers point INTO that payload (valid while it is); encoders
 * write into a caller buffer.
 *
 * RFC 1350 (TFTP), 2347 (options), 2348 (blksize), 2349 (timeout, tsize),
 * 7440 (windowsize).  The sending state machine is in proto/tftp_send.h.
 */
#ifndef BOOTSTORM_PROTO_TFTP_H
#define BOOTSTORM_PROTO_TFTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tftp_opcode {
    TFTP_OP_RRQ = 1,
    TFTP_OP_WRQ = 2,
    TFTP_OP_DATA = 3,
    TFTP_OP_ACK = 4,
    TFTP_OP_ERROR = 5,
    TFTP_OP_OACK = 6, /* RFC 2347 */
};

/* Error codes carried in an ERROR packet (RFC 1350 §5, RFC 2347 for 8). */
enum tftp_errcode {
    TFTP_ERR_UNDEF = 0,
    TFTP_ERR_NOT_FOUND = 1,
    TFTP_ERR_ACCESS = 2,
    TFTP_ERR_DISK_FULL = 3,
    TFTP_ERR_ILLEGAL_OP = 4,
    TFTP_ERR_UNKNOWN_TID = 5,
    TFTP_ERR_EXISTS = 6,
    TFTP_ERR_NO_USER = 7,
    TFTP_ERR_OPTION = 8, /* option negotiation refused; OVMF uses it to end a size probe */
};

/* Result of every parser, encoder and helper.  TFTP_OK is 0; the rest are reasons. */
enum tftp_result {
    TFTP_OK = 0,
    TFTP_ETRUNC,     /* shorter than its fixed fields, or RRQ/WRQ without a mode string */
    TFTP_EOPCODE,    /* opcode not 1..6 */
    TFTP_ENONUL,     /* RRQ/WRQ/OACK whose last byte is not NUL (unterminated string) */
    TFTP_EMODE,      /* mode neither "octet" nor "netascii" ("mail" is refused) */
    TFTP_EFILENAME,  /* file name empty, over 255 bytes, control byte, NUL, or names a directory */
    TFTP_ETRAVERSAL, /* file name has a ".." segment */
    TFTP_EOPTION,    /* option name without value, empty name inside the list, or empty OACK */
    TFTP_ENOSPACE,   /* encoder: output buffer too small */
    TFTP_EINVAL,     /* encoder/helper: argument out of range */
};

enum tftp_mode {
    TFTP_MODE_OCTET = 0,
    TFTP_MODE_NETASCII = 1,
};

#define TFTP_HDR_LEN 4             /* opcode + block (DATA, ACK) or opcode + code (ERROR) */
#define TFTP_FILENAME_MAX 255      /* longest file name accepted, in bytes */
#define TFTP_BLKSIZE_DEFAULT 512   /* RFC 1350 */
#define TFTP_BLKSIZE_MIN 8         /* RFC 2348 */
#define TFTP_BLKSIZE_MAX 65464     /* RFC 2348: 65535 - 20 (IP) - 8 (UDP) - 4 (TFTP) + 1 */
#define TFTP_TIMEOUT_MIN 1         /* RFC 2349, seconds */
#define TFTP_TIMEOUT_MAX 255
/* RFC 7440 allows 65535; we stop at half the 16-bit block space so that an old
 * ACK can never be mistaken for one inside the window after rollover. */
#define TFTP_WINDOWSIZE_MAX 32767

/* Options (RFC 2347): bit flags for the four we know. */
enum tftp_opt {
    TFTP_OPT_BLKSIZE = 1u << 0,
    TFTP_OPT_TSIZE = 1u << 1,
    TFTP_OPT_TIMEOUT = 1u << 2,
    TFTP_OPT_WINDOWSIZE = 1u << 3,
};

/* Option values as found in a request or OACK.  Names are matched without regard
 * to case; for a duplicated name the first occurrence decides (later ones are
 * ignored even if the first was malformed).  Values must be plain decimal digits
 * (no sign, no blanks); a value too large for 64 bits saturates to UINT64_MAX. */
struct tftp_options {
    unsigned present;   /* TFTP_OPT_* seen with a decimal value */
    unsigned malformed; /* TFTP_OPT_* whose value was not decimal ("-1", "", "1k"): ignored */
    unsigned unknown;   /* number of options with names we do not know: ignored */
    uint64_t blksize;
    uint64_t tsize;
    uint64_t timeout;
    uint64_t windowsize;
};

/* RRQ / WRQ. */
struct tftp_request {
    const char *filename; /* NUL-terminated inside the packet, as sent (not normalised) */
    size_t filename_len;  /* 1..TFTP_FILENAME_MAX */
    enum tftp_mode mode;
    struct tftp_options opts;
};

struct tftp_packet {
    enum tftp_opcode op;
    union {
        struct tftp_request rq; /* RRQ, WRQ */
        struct {
            uint16_t block;
            const uint8_t *data;
            size_t len;
        } data; /* DATA */
        struct {
            uint16_t block;
        } ack; /* ACK */
        struct {
            uint16_t code;
            const char *msg; /* NOT necessarily NUL-terminated: use msg_len */
            size_t msg_len;
        } error;                  /* ERROR */
        struct tftp_options oack; /* OACK */
    };
};

/* Parses one TFTP packet (a UDP payload).
 * RRQ/WRQ: "opcode filename\0 mode\0 [name\0 value\0]*"; the last byte must be NUL.
 *   Trailing NUL padding after the last option is tolerated.
 * DATA: payload may be 0..len-4 bytes (the block size check is the receiver's).
 * ACK: bytes after the block number are ignored.
 * ERROR: accepted even when the message lacks its NUL (a client abort must end the
 *   transfer whatever its text); msg/msg_len stop at the first NUL.
 * OACK: at least one option pair; last byte NUL. */
enum tftp_result tftp_parse(const uint8_t *pkt, size_t len, struct tftp_packet *out);

/* Encoders: write into buf[cap], store the packet length in *len.
 * TFTP_ENOSPACE when cap is too small (nothing useful written). */
enum tftp_result tftp_encode_data_header(uint8_t *buf, size_t cap, uint16_t block, size_t *len);
enum tftp_result tftp_encode_ack(uint8_t *buf, size_t cap, uint16_t block, size_t *len);
/* msg NULL → tftp_error_text(code).  The message is truncated to fit cap.  The
 * caller must never pass a server path: clients print it, and it tells an attacker
 * the layout (the standard texts are safe). */
enum tftp_result tftp_encode_error(uint8_t *buf, size_t cap, uint16_t code, const char *msg,
                                   size_t *len);
/* Writes the options in opts->present (lower-case names, decimal values) in the
 * order blksize, tsize, timeout, windowsize.  An empty set is TFTP_EINVAL: an empty
 * OACK is not a valid packet (answer with DATA 1 / ACK 0 instead). */
enum tftp_result tftp_encode_oack(uint8_t *buf, size_t cap, const struct tftp_options *opts,
                                  size_t *len);
/* RRQ/WRQ with the options in opts->present (opts may be NULL) — for the load
 * generator and tests.  filename must be 1..255 bytes. */
enum tftp_result tftp_encode_request(uint8_t *buf, size_t cap, enum tftp_opcode op,
                                     const char *filename, enum tftp_mode mode,
                                     const struct tftp_options *opts, size_t *len);

/* The RFC 1350 text for an error code ("File not found", ...); never NULL. */
const char *tftp_error_text(uint16_t code);
/* The constant's name for logs ("TFTP_ETRAVERSAL"). */
const char *tftp_result_str(enum tftp_result r);

/* File name as sent → name relative to the TFTP root, into out[cap] (NUL-terminated,
 * *out_len excludes the NUL):
 *   '\' becomes '/' (PXE and Windows clients); leading '/' are stripped (GRUB sends
 *   absolute-looking names that mean the root); repeated '/' and "." segments are
 *   dropped.
 *   TFTP_ETRAVERSAL: a ".." segment anywhere (refused, not resolved).
 *   TFTP_EFILENAME: empty (also after stripping), over TFTP_FILENAME_MAX, a NUL or
 *   control byte (0x01-0x1f, 0x7f: keeps log lines intact), or a trailing '/'.
 *   TFTP_ENOSPACE: out too small (cap >= len + 1 always suffices). */
enum tftp_result tftp_filename_normalize(const char *in, size_t len, char *out, size_t cap,
                                         size_t *out_len);

/* ---- Option negotiation (RFC 2347-2349, 7440) ---- */

struct tftp_limits {
    uint32_t blksize_max; /* --tftp-blksize-max; 0 = TFTP_BLKSIZE_MAX */
    uint32_t blksize_mtu; /* cap from the link MTU (tftp_blksize_for_mtu); 0 = none */
    uint32_t window_max;  /* --tftp-window-max; 0 = 1 (no windowing); capped at TFTP_WINDOWSIZE_MAX */
};

struct tftp_negotiated {
    struct tftp_options oack; /* .present = what goes in the OACK (0: send no OACK) */
    uint32_t blksize;         /* in effect: negotiated, else 512 */
    uint32_t windowsize;      /* in effect: negotiated, else 1 */
    uint32_t timeout_s;       /* client's timeout option if accepted, else 0 */
};

/* Decides the options for one request.  Only options the client asked for can
 * appear in the OACK (PXELINUX aborts on any other), each once.
 *   blksize: clamped to [8, min(65464, blksize_max, blksize_mtu)] (1 → 8).
 *   windowsize: clamped to [1, window_max].
 *   timeout: 1..255 echoed; anything else ignored.
 *   tsize: RRQ → file_size (clients send 0; we always tell the real size);
 *          WRQ → the client's value echoed (RFC 2349).
 *   malformed or unknown options: ignored.
 * file_size is the number of bytes that will go on the wire (for netascii, the
 * converted size: tftp_netascii_size).  If nothing is accepted, oack.present is 0:
 * start with DATA 1 (RRQ) or ACK 0 (WRQ), never an empty OACK.
 * TFTP_EINVAL if rq is not RRQ/WRQ-shaped (op is passed separately). */
enum tftp_result tftp_negotiate(enum tftp_opcode op, const struct tftp_request *rq,
                                const struct tftp_limits *lim, uint64_t file_size,
                                struct tftp_negotiated *out);

/* Largest blksize whose DATA datagram fits an IPv4 link MTU unfragmented
 * (MTU - 20 IP - 8 UDP - 4 TFTP; 1500 → 1468), clamped to [8, 65464]. */
uint32_t tftp_blksize_for_mtu(uint32_t mtu);

/* ---- netascii (RFC 1350 §5 / RFC 764): LF ↔ CR LF, CR ↔ CR NUL ---- */

/* Encoder state: a plain value, copy it to checkpoint a block boundary (needed to
 * resend an old block: netascii blocks do not sit at fixed file offsets). */
struct tftp_netascii_enc {
    uint64_t in_pos;  /* file bytes consumed so far */
    uint64_t out_pos; /* netascii bytes produced so far */
    int16_t pending;  /* second byte of a pair not yet written (-1: none) */
};
void tftp_netascii_enc_init(struct tftp_netascii_enc *st);
/* Converts file bytes in[0..in_len) (the bytes at st->in_pos) into out[0..cap),
 * stopping when out is full or in is used up; a pair split by the end of out is
 * finished at the start of the next call.  Returns bytes written; *consumed is
 * the input used.  Fill a block with cap = blksize until it returns < cap with
 * all input consumed and no pending byte (tftp_netascii_enc_idle). */
size_t tftp_netascii_encode(struct tftp_netascii_enc *st, const uint8_t *in, size_t in_len,
                            uint8_t *out, size_t cap, size_t *consumed);
bool tftp_netascii_enc_idle(const struct tftp_netascii_enc *st);
/* Converted size of in[0..len): len + number of CR + number of LF.  Additive, so a
 * file may be scanned in chunks and the results summed (for tsize). */
uint64_t tftp_netascii_size(const uint8_t *in, size_t len);

/* Decoder (receiving side): CR LF → LF, CR NUL → CR; a CR followed by anything
 * else is kept with that byte (lenient).  A CR ending one block is held over. */
struct tftp_netascii_dec {
    bool cr; /* previous block ended with CR */
};
void tftp_netascii_dec_init(struct tftp_netascii_dec *st);
/* out must hold in_len + 1 bytes (a held CR may be flushed).  Returns bytes written. */
size_t tftp_netascii_decode(struct tftp_netascii_dec *st, const uint8_t *in, size_t in_len,
                            uint8_t *out);
/* End of stream: writes a held CR (out needs 1 byte); returns 0 or 1. */
size_t tftp_netascii_decode_finish(struct tftp_netascii_dec *st, uint8_t *out);

#endif
