/* proto/dhcp.h: DHCPv4 wire format (RFC 2131, RFC 2132, RFC 3396, RFC 4578).
 *
 * Pure: bytes in, structs out; no I/O, no allocation, no global state.
 *
 * Conventions:
 *  - Every IPv4 address (ciaddr, yiaddr, siaddr, giaddr, option 50/54, ...) is a
 *    uint32_t in NETWORK byte order, exactly as in struct in_addr.s_addr, so it
 *    goes into a sockaddr_in unchanged.  Other numbers (xid, secs, flags, option
 *    57, option 93) are in host order.
 *  - A parsed struct dhcp_msg points into the packet it was parsed from (and into
 *    its own concat[] area), so the packet must outlive every use of the struct,
 *    and the struct must not be used after the packet buffer is recycled.
 *  - Results are DHCP_OK (0) or a negative DHCP_E* reason (dhcp_strerror names it).
 */
#ifndef BOOTSTORM_PROTO_DHCP_H
#define BOOTSTORM_PROTO_DHCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ports (RFC 2131 §4.1) and the PXE boot-server port. */
#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define DHCP_PXE_PORT 4011

/* Layout of the fixed BOOTP header (RFC 2131 §2, figure 1). */
#define DHCP_CHADDR_LEN 16
#define DHCP_SNAME_LEN 64
#define DHCP_FILE_LEN 128
#define DHCP_HEADER_LEN 236 /* up to and including 'file' */
#define DHCP_OPTIONS_OFF 240 /* after the magic cookie */
/* Replies are padded to this size: RFC 1542 §2.1 minimum BOOTP message, and
 * the Linux in-kernel DHCP client (ipconfig) ignores anything shorter. */
#define DHCP_MIN_LEN 300
/* Without option 57 a client need accept no more than a 576-byte IP datagram
 * (RFC 2131 §2): 576 - 20 (IP) - 8 (UDP). */
#define DHCP_DEFAULT_MAX_LEN 548
/* Room for options that appear more than once (RFC 3396 concatenation). */
#define DHCP_CONCAT_SIZE 1024

#define DHCP_BOOTREQUEST 1
#define DHCP_BOOTREPLY 2
#define DHCP_HTYPE_ETHER 1
#define DHCP_FLAG_BROADCAST 0x8000 /* flags, host order (RFC 2131 §2) */

/* Option 53 values (RFC 2132 §9.6, RFC 4388). */
enum dhcp_msg_type {
	DHCP_BOOTP = 0, /* no option 53: a plain BOOTP message */
	DHCP_DISCOVER = 1,
	DHCP_OFFER = 2,
	DHCP_REQUEST = 3,
	DHCP_DECLINE = 4,
	DHCP_ACK = 5,
	DHCP_NAK = 6,
	DHCP_RELEASE = 7,
	DHCP_INFORM = 8,
};

/* Option codes this project reads or writes (RFC 2132 unless noted). */
enum dhcp_option {
	DHCP_OPT_PAD = 0,
	DHCP_OPT_SUBNET_MASK = 1,
	DHCP_OPT_ROUTER = 3,
	DHCP_OPT_DNS = 6,
	DHCP_OPT_HOSTNAME = 12,
	DHCP_OPT_DOMAIN = 15,
	DHCP_OPT_BROADCAST = 28,
	DHCP_OPT_VENDOR = 43,
	DHCP_OPT_REQUESTED_IP = 50,
	DHCP_OPT_LEASE_TIME = 51,
	DHCP_OPT_OVERLOAD = 52,
	DHCP_OPT_MSG_TYPE = 53,
	DHCP_OPT_SERVER_ID = 54,
	DHCP_OPT_PARAM_REQ = 55,
	DHCP_OPT_MESSAGE = 56,
	DHCP_OPT_MAX_MSG_SIZE = 57,
	DHCP_OPT_T1 = 58,
	DHCP_OPT_T2 = 59,
	DHCP_OPT_VENDOR_CLASS = 60,
	DHCP_OPT_CLIENT_ID = 61,
	DHCP_OPT_TFTP_SERVER = 66,
	DHCP_OPT_BOOTFILE = 67,
	DHCP_OPT_USER_CLASS = 77,   /* RFC 3004 */
	DHCP_OPT_RELAY_INFO = 82,   /* RFC 3046 */
	DHCP_OPT_CLIENT_ARCH = 93,  /* RFC 4578 §2.1 */
	DHCP_OPT_CLIENT_NDI = 94,   /* RFC 4578 §2.2 */
	DHCP_OPT_CLIENT_UUID = 97,  /* RFC 4578 §2.3 */
	DHCP_OPT_IPXE_ENCAP = 175,  /* iPXE's private encapsulated options */
	DHCP_OPT_END = 255,
};

/* Sub-options inside option 43 (PXE spec 2.1 §2.4) and option 175 (iPXE). */
#define DHCP_PXE_DISCOVERY_CONTROL 6
#define DHCP_IPXE_NO_PXEDHCP 176 /* value 1: do not wait ~3 s for ProxyDHCP */

/* Results. */
enum dhcp_result {
	DHCP_OK = 0,
	DHCP_ETRUNC = -1,    /* shorter than header + magic cookie */
	DHCP_ETOOBIG = -2,   /* longer than any UDP payload (65535) */
	DHCP_EOP = -3,       /* op not BOOTREQUEST/BOOTREPLY (or not a request) */
	DHCP_EHLEN = -4,     /* hlen > 16: chaddr cannot hold it */
	DHCP_EMAGIC = -5,    /* no 99.130.83.99 magic cookie */
	DHCP_EOPTLEN = -6,   /* option header or body runs past its field */
	DHCP_EOVERLOAD = -7, /* bad option 52: length, value, repeated, or nested */
	DHCP_ECONCAT = -8,   /* repeated options exceed DHCP_CONCAT_SIZE */
	DHCP_EMSGTYPE = -9,  /* option 53 with length != 1 or value 0 */
	DHCP_ENOTYPE = -10,  /* request without option 53 (plain BOOTP) */
	DHCP_EHTYPE = -11,   /* htype/hlen give no usable hardware address */
	DHCP_EOPTVAL = -12,  /* option 50/54/57/61 with an impossible length */
	DHCP_ENOSPACE = -13, /* encoder: buffer or client's max size exhausted */
	DHCP_EARG = -14,     /* encoder: caller misuse (PAD/END code, duplicate 53/82) */
};

/** Static, never NULL; "unknown DHCP error" for values outside the enum. */
const char *dhcp_strerror(int rc);
/** "DISCOVER", "ACK", ...; "BOOTP" for 0; "UNKNOWN" otherwise. Static. */
const char *dhcp_msg_type_name(uint8_t type);

/* Where an option's bytes live; see dhcp_get_option(). */
enum dhcp_opt_where { DHCP_OPT_ABSENT = 0, DHCP_OPT_IN_PACKET, DHCP_OPT_IN_CONCAT };

struct dhcp_opt_ref {
	uint16_t off;   /* into the packet, or into concat[] */
	uint16_t len;   /* total length after RFC 3396 concatenation */
	uint16_t count; /* number of fragments (instances) seen */
	uint8_t where;  /* enum dhcp_opt_where */
};

/** A parsed message.  Filled by dhcp_parse(); points into the packet. */
struct dhcp_msg {
	const uint8_t *pkt;
	size_t len;
	uint8_t op, htype, hlen, hops;
	uint32_t xid;   /* host order */
	uint16_t secs;  /* host order */
	uint16_t flags; /* host order; DHCP_FLAG_BROADCAST */
	uint32_t ciaddr, yiaddr, siaddr, giaddr; /* network order */
	uint8_t chaddr[DHCP_CHADDR_LEN];          /* hlen bytes valid, rest as sent */
	/* sname/file: the raw fields, not necessarily NUL-terminated; *_len is the
	 * length up to the first NUL.  NULL when option 52 says the field carries
	 * options instead (RFC 2132 §9.3). */
	const char *sname;
	const char *file;
	uint8_t sname_len, file_len;
	uint8_t overload;  /* option 52 value: 1 file, 2 sname, 3 both; 0 none */
	uint8_t msg_type;  /* option 53, or DHCP_BOOTP (0) when absent */
	struct dhcp_opt_ref opt[256];
	uint16_t concat_used;
	uint8_t concat[DHCP_CONCAT_SIZE]; /* options seen more than once, joined */
};

/**
 * Decodes a BOOTP/DHCP message (either op) into *m.  Walks the options field,
 * then 'file', then 'sname' when option 52 says so (the order of RFC 3396's
 * aggregate option buffer), indexing
 * every option; an option seen more than once is concatenated into m->concat.
 * A field may end without END (tolerated; the field's end closes it).
 * Returns DHCP_OK or ETRUNC, ETOOBIG, EOP, EHLEN, EMAGIC, EOPTLEN, EOVERLOAD,
 * ECONCAT, EMSGTYPE.  On error *m is partly filled and must not be used.
 */
int dhcp_parse(const uint8_t *pkt, size_t len, struct dhcp_msg *m);

/**
 * What the server side accepts: dhcp_parse() plus op == BOOTREQUEST (EOP),
 * option 53 present (ENOTYPE: plain BOOTP is not served), a hardware address
 * usable as the lease key (EHTYPE: hlen 0, or Ethernet with hlen != 6), and
 * sane lengths for the options the DHCP state machine depends on: 50 and 54
 * (4 bytes), 57 (2 bytes), 61 (at least 2 bytes, RFC 2132 §9.14) (EOPTVAL).
 */
int dhcp_parse_request(const uint8_t *pkt, size_t len, struct dhcp_msg *m);

/* ---- Accessors.  Length-checked: a malformed option reads as absent. ---- */

/** Bytes of option code (joined if repeated) or NULL if absent; *len set. */
const uint8_t *dhcp_get_option(const struct dhcp_msg *m, uint8_t code, size_t *len);
bool dhcp_has_option(const struct dhcp_msg *m, uint8_t code);
/** Option of exactly 1/2/4 bytes as a host-order number. */
bool dhcp_get_u8(const struct dhcp_msg *m, uint8_t code, uint8_t *v);
bool dhcp_get_u16(const struct dhcp_msg *m, uint8_t code, uint16_t *v);
bool dhcp_get_u32(const struct dhcp_msg *m, uint8_t code, uint32_t *v);
/** Option of exactly 4 bytes as a network-order address. */
bool dhcp_get_ip(const struct dhcp_msg *m, uint8_t code, uint32_t *ip);

bool dhcp_get_requested_ip(const struct dhcp_msg *m, uint32_t *ip); /* 50 */
bool dhcp_get_server_id(const struct dhcp_msg *m, uint32_t *ip);    /* 54 */
/** 57, raised to the RFC 2132 §9.10 minimum of 576 when smaller. */
bool dhcp_get_max_msg_size(const struct dhcp_msg *m, uint16_t *v);
/** 93: the first architecture type of the list (RFC 4578 §2.1). */
bool dhcp_get_client_arch(const struct dhcp_msg *m, uint16_t *arch);

struct dhcp_nic_id { uint8_t type, major, minor; }; /* 94: type 1 = UNDI */
bool dhcp_get_nic_id(const struct dhcp_msg *m, struct dhcp_nic_id *id);
/** 97: 17 bytes, type 0 then the 16-byte UUID as sent (RFC 4578 §2.3). */
bool dhcp_get_uuid(const struct dhcp_msg *m, uint8_t uuid[16]);

const uint8_t *dhcp_get_client_id(const struct dhcp_msg *m, size_t *len);    /* 61 */
const uint8_t *dhcp_get_vendor_class(const struct dhcp_msg *m, size_t *len); /* 60 */
const uint8_t *dhcp_get_user_class(const struct dhcp_msg *m, size_t *len);   /* 77, raw */
const uint8_t *dhcp_get_prl(const struct dhcp_msg *m, size_t *len);          /* 55 */
const uint8_t *dhcp_get_hostname(const struct dhcp_msg *m, size_t *len);     /* 12 */
const uint8_t *dhcp_get_relay_info(const struct dhcp_msg *m, size_t *len);   /* 82 */
const uint8_t *dhcp_get_ipxe_encap(const struct dhcp_msg *m, size_t *len);   /* 175 */

/**
 * True if option 77 names this class, in either form clients send: RFC 3004
 * (a list of length-prefixed instances) or a bare string as iPXE sends ("iPXE").
 */
bool dhcp_user_class_has(const struct dhcp_msg *m, const char *name);
bool dhcp_is_pxe_client(const struct dhcp_msg *m);  /* 60 begins "PXEClient" */
bool dhcp_is_http_client(const struct dhcp_msg *m); /* 60 begins "HTTPClient" */
bool dhcp_is_ipxe(const struct dhcp_msg *m);        /* 77 "iPXE" or 175 present */

/**
 * Finds sub-option sub in encapsulated option data (43, 175, 82): code/len/value
 * triples with PAD (0) skipped and END (255) stopping the walk.  Returns the
 * value (in data) and its length, or NULL when absent or malformed before it.
 */
const uint8_t *dhcp_encap_find(const uint8_t *data, size_t len, uint8_t sub, size_t *sublen);

/* ---- Encoder. ---- */

/**
 * Writes one message into a caller buffer.  Errors are sticky: after the first
 * failure every call returns it (and dhcp_reply_finish() too), so nothing is
 * ever truncated silently.  Holds req (if any) until dhcp_reply_finish().
 */
struct dhcp_writer {
	uint8_t *buf;
	size_t end;     /* min(capacity, client's max message size) */
	size_t pos;     /* next option byte */
	size_t reserve; /* kept back for END and the echoed option 82 */
	const struct dhcp_msg *req;
	bool echo_relay_info; /* finish() writes req's option 82 */
	bool type_written;    /* begin() wrote option 53 */
	int err;              /* first error, sticky */
};

/**
 * Begins a reply (op 2) to req: copies xid, flags, giaddr, chaddr, htype, hlen
 * (and ciaddr for ACK and BOOTP replies, RFC 2131 table 3), writes the cookie
 * and, unless msg_type is DHCP_BOOTP, option 53 first.  A NAK through a relay
 * gets the broadcast bit (RFC 2131 §4.3.2).  The usable size is capped by the
 * client's option 57 (or 548 bytes without it).  If req carried option 82 it
 * is echoed last, before END, by dhcp_reply_finish() (RFC 3046 §2.2); room for
 * it is reserved now.  ENOSPACE if cap < DHCP_MIN_LEN.
 */
int dhcp_reply_begin(struct dhcp_writer *w, uint8_t *buf, size_t cap,
		     const struct dhcp_msg *req, uint8_t msg_type);

/**
 * Begins a client message (op 1), as a load generator or test sends: Ethernet
 * htype, the given xid and chaddr (hlen bytes, at most 16), option 53 first.
 */
int dhcp_request_begin(struct dhcp_writer *w, uint8_t *buf, size_t cap, uint8_t msg_type,
		       uint32_t xid, const uint8_t *chaddr, uint8_t hlen);

/** Fixed-header setters; addresses in network order. */
void dhcp_set_yiaddr(struct dhcp_writer *w, uint32_t ip);
void dhcp_set_siaddr(struct dhcp_writer *w, uint32_t ip);
void dhcp_set_ciaddr(struct dhcp_writer *w, uint32_t ip);
void dhcp_set_giaddr(struct dhcp_writer *w, uint32_t ip);
void dhcp_set_flags(struct dhcp_writer *w, uint16_t flags);
void dhcp_set_secs(struct dhcp_writer *w, uint16_t secs);
/** NUL-terminated into the 64/128-byte field: ENOSPACE when longer than 63/127. */
int dhcp_set_sname(struct dhcp_writer *w, const char *s);
int dhcp_set_file(struct dhcp_writer *w, const char *s);

/** Bytes option data of len takes on the wire, split as RFC 3396 does. */
size_t dhcp_option_space(size_t len);
/** Bytes still free for options (after the reserve for END and option 82). */
size_t dhcp_writer_room(const struct dhcp_writer *w);

/**
 * Appends option code; data longer than 255 bytes is split into consecutive
 * instances (RFC 3396 §6).  All or nothing: ENOSPACE leaves the buffer as it
 * was.  EARG for PAD/END, for 53 (begin wrote it), and for 82 when req's is
 * being echoed.
 */
int dhcp_put_option(struct dhcp_writer *w, uint8_t code, const void *data, size_t len);
int dhcp_put_u8(struct dhcp_writer *w, uint8_t code, uint8_t v);
int dhcp_put_u16(struct dhcp_writer *w, uint8_t code, uint16_t v);   /* host order in */
int dhcp_put_u32(struct dhcp_writer *w, uint8_t code, uint32_t v);   /* host order in */
int dhcp_put_ip(struct dhcp_writer *w, uint8_t code, uint32_t ip);   /* network order */
int dhcp_put_ips(struct dhcp_writer *w, uint8_t code, const uint32_t *ips, size_t n);
int dhcp_put_str(struct dhcp_writer *w, uint8_t code, const char *s); /* no NUL sent */

/** One option to send, for dhcp_order_options()/dhcp_put_options(). */
struct dhcp_opt_out {
	uint8_t code;
	const void *data; /* must stay valid until written */
	size_t len;
};

/**
 * Reorders opts in place (stable): 53, 54 first, then the codes the client's
 * parameter request list (55) names, in its order, then the rest as given.
 * Some PXE ROMs stop reading options at the first one they did not expect.
 */
void dhcp_order_options(const struct dhcp_msg *req, struct dhcp_opt_out *opts, size_t n);
/** dhcp_order_options() (req may be NULL: keep order), then dhcp_put_option() each. */
int dhcp_put_options(struct dhcp_writer *w, const struct dhcp_msg *req,
		     struct dhcp_opt_out *opts, size_t n);

/**
 * Builder for encapsulated options (43 PXE vendor options, 175 iPXE): a
 * caller buffer filled with code/len/value sub-options; errors are sticky.
 */
struct dhcp_encap {
	uint8_t *buf;
	size_t cap, len;
	int err;
};
void dhcp_encap_init(struct dhcp_encap *e, uint8_t *buf, size_t cap);
/** Sub-options cannot be split: EOPTLEN when len > 255, ENOSPACE when full. */
int dhcp_encap_put(struct dhcp_encap *e, uint8_t code, const void *data, size_t len);
int dhcp_encap_put_u8(struct dhcp_encap *e, uint8_t code, uint8_t v);
/** Appends the END sub-option (255), as PXE option 43 requires and dnsmasq sends in 175. */
int dhcp_encap_end(struct dhcp_encap *e);
/** Writes e's bytes as option code (e's sticky error, if any, is returned). */
int dhcp_put_encap(struct dhcp_writer *w, uint8_t code, const struct dhcp_encap *e);

/**
 * Writes the echoed option 82 (if any) and END, zero-pads to DHCP_MIN_LEN, and
 * sets *len to the message length.  Returns the sticky error if any call failed.
 */
int dhcp_reply_finish(struct dhcp_writer *w, size_t *len);

/* ---- Where a reply goes (RFC 2131 §4.1), a pure function. ---- */

enum dhcp_dest_kind {
	DHCP_DEST_RELAY,          /* giaddr, port 67 */
	DHCP_DEST_UNICAST_CIADDR, /* ciaddr, port 68 */
	DHCP_DEST_BROADCAST,      /* 255.255.255.255, port 68 */
	DHCP_DEST_UNICAST_YIADDR, /* yiaddr, port 68: needs an ARP entry for chaddr first;
				     fall back to broadcast when one cannot be set */
};

struct dhcp_dest {
	enum dhcp_dest_kind kind;
	uint32_t addr; /* network order */
	uint16_t port; /* host order */
};

/**
 * giaddr set → the relay on port 67; else ciaddr set and not a NAK → ciaddr;
 * else a NAK → broadcast; else the broadcast flag, a yiaddr of 0 or a hardware
 * address one cannot ARP for (hlen 0) → broadcast; else unicast to yiaddr at
 * chaddr.  The caller must set the broadcast bit of a relayed NAK
 * (dhcp_reply_begin() does).
 */
struct dhcp_dest dhcp_reply_destination(const struct dhcp_msg *req, uint8_t reply_type,
					uint32_t yiaddr);

#endif
