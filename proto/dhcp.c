/* proto/dhcp.c: DHCPv4 decoder, encoder and reply routing (see proto/dhcp.h). */
#include "proto/dhcp.h"

#include <string.h>

/* Offsets in the fixed header (RFC 2131 §2, figure 1). */
enum {
	OFF_OP = 0, OFF_HTYPE = 1, OFF_HLEN = 2, OFF_HOPS = 3, OFF_XID = 4,
	OFF_SECS = 8, OFF_FLAGS = 10, OFF_CIADDR = 12, OFF_YIADDR = 16,
	OFF_SIADDR = 20, OFF_GIADDR = 24, OFF_CHADDR = 28, OFF_SNAME = 44,
	OFF_FILE = 108, OFF_COOKIE = 236,
};

/* Option 52 bits (RFC 2132 §9.3). */
enum { OVERLOAD_FILE = 1, OVERLOAD_SNAME = 2 };

#define IP_UDP_HEADERS 28 /* option 57 counts the IP and UDP headers too */
#define MIN_MAX_MSG_SIZE 576 /* RFC 2132 §9.10 */

static const uint8_t cookie[4] = { 99, 130, 83, 99 };

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
/* Addresses stay in network order: copy the bytes, never swap. */
static uint32_t rdip(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void wrip(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

const char *dhcp_strerror(int rc)
{
	switch (rc) {
	case DHCP_OK: return "ok";
	case DHCP_ETRUNC: return "shorter than the BOOTP header and magic cookie";
	case DHCP_ETOOBIG: return "longer than a UDP payload";
	case DHCP_EOP: return "unexpected op (not a BOOTREQUEST)";
	case DHCP_EHLEN: return "hlen larger than chaddr";
	case DHCP_EMAGIC: return "missing DHCP magic cookie";
	case DHCP_EOPTLEN: return "option runs past the end of its field";
	case DHCP_EOVERLOAD: return "bad option overload (52)";
	case DHCP_ECONCAT: return "repeated options too long to concatenate";
	case DHCP_EMSGTYPE: return "bad message type option (53)";
	case DHCP_ENOTYPE: return "no message type option (53): plain BOOTP";
	case DHCP_EHTYPE: return "no usable hardware address (htype/hlen)";
	case DHCP_EOPTVAL: return "option with an impossible length (50/54/57/61)";
	case DHCP_ENOSPACE: return "reply does not fit";
	case DHCP_EARG: return "invalid argument";
	}
	return "unknown DHCP error";
}

const char *dhcp_msg_type_name(uint8_t type)
{
	static const char *const names[] = {
		"BOOTP", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM",
	};
	return type < sizeof names / sizeof names[0] ? names[type] : "UNKNOWN";
}

/* ---- Decoder ---- */

/*
 * Walks the options of one field [p, end).  Like dnsmasq's option_find1, it
 * checks that the length byte exists before reading it and that the body fits
 * before indexing it.  Pass 1 (fill == NULL) indexes and sums the lengths;
 * pass 2 copies the fragments of repeated options to their concat[] slots.
 */
static int walk_field(struct dhcp_msg *m, size_t p, size_t end, bool main_field, uint16_t *fill)
{
	const uint8_t *pkt = m->pkt;

	while (p < end) {
		uint8_t code = pkt[p];
		if (code == DHCP_OPT_PAD) {
			p++;
			continue;
		}
		if (code == DHCP_OPT_END)
			return DHCP_OK;
		if (end - p < 2)
			return DHCP_EOPTLEN;
		size_t olen = pkt[p + 1];
		if (olen > end - p - 2)
			return DHCP_EOPTLEN;
		/* Overload is only honoured from the options field; one inside
		 * file/sname would point at itself (a loop), so reject it. */
		if (code == DHCP_OPT_OVERLOAD && !main_field)
			return DHCP_EOVERLOAD;

		struct dhcp_opt_ref *r = &m->opt[code];
		if (!fill) {
			if (r->count == 0) {
				r->off = (uint16_t)(p + 2);
				r->len = (uint16_t)olen;
				r->where = DHCP_OPT_IN_PACKET;
			} else {
				/* Cannot overflow: the sum of all option bodies is
				 * below the packet length, itself <= 65535. */
				r->len = (uint16_t)(r->len + olen);
			}
			r->count++;
		} else if (r->where == DHCP_OPT_IN_CONCAT) {
			memcpy(m->concat + fill[code], pkt + p + 2, olen);
			fill[code] = (uint16_t)(fill[code] + olen);
		}
		p += 2 + olen;
	}
	return DHCP_OK;
}

/* Options field, then file, then sname: RFC 3396's aggregate option buffer. */
static int walk_all(struct dhcp_msg *m, uint16_t *fill)
{
	int rc = walk_field(m, DHCP_OPTIONS_OFF, m->len, true, fill);
	if (rc != DHCP_OK)
		return rc;
	if (!fill) {
		/* Option 52 has to be settled before the other fields are read. */
		const struct dhcp_opt_ref *o = &m->opt[DHCP_OPT_OVERLOAD];
		if (o->where != DHCP_OPT_ABSENT) {
			if (o->count != 1 || o->len != 1)
				return DHCP_EOVERLOAD;
			uint8_t v = m->pkt[o->off];
			if (v < 1 || v > 3)
				return DHCP_EOVERLOAD;
			m->overload = v;
		}
	}
	if (m->overload & OVERLOAD_FILE) {
		rc = walk_field(m, OFF_FILE, OFF_FILE + DHCP_FILE_LEN, false, fill);
		if (rc != DHCP_OK)
			return rc;
	}
	if (m->overload & OVERLOAD_SNAME)
		rc = walk_field(m, OFF_SNAME, OFF_SNAME + DHCP_SNAME_LEN, false, fill);
	return rc;
}

/* RFC 3396 §7: every instance of a repeated option is one option, joined in order. */
static int concatenate(struct dhcp_msg *m)
{
	uint16_t fill[256];
	bool any = false;

	for (int c = 0; c < 256; c++) {
		struct dhcp_opt_ref *r = &m->opt[c];
		if (r->count < 2)
			continue;
		if (r->len > DHCP_CONCAT_SIZE - m->concat_used)
			return DHCP_ECONCAT;
		r->off = m->concat_used;
		r->where = DHCP_OPT_IN_CONCAT;
		fill[c] = r->off;
		m->concat_used = (uint16_t)(m->concat_used + r->len);
		any = true;
	}
	return any ? walk_all(m, fill) : DHCP_OK;
}

int dhcp_parse(const uint8_t *pkt, size_t len, struct dhcp_msg *m)
{
	memset(m, 0, offsetof(struct dhcp_msg, concat));
	if (len < DHCP_OPTIONS_OFF)
		return DHCP_ETRUNC;
	/* Offsets are 16-bit; no UDP payload is longer. */
	if (len > UINT16_MAX)
		return DHCP_ETOOBIG;
	m->pkt = pkt;
	m->len = len;
	m->op = pkt[OFF_OP];
	if (m->op != DHCP_BOOTREQUEST && m->op != DHCP_BOOTREPLY)
		return DHCP_EOP;
	m->htype = pkt[OFF_HTYPE];
	m->hlen = pkt[OFF_HLEN];
	if (m->hlen > DHCP_CHADDR_LEN)
		return DHCP_EHLEN;
	m->hops = pkt[OFF_HOPS];
	m->xid = rd32(pkt + OFF_XID);
	m->secs = rd16(pkt + OFF_SECS);
	m->flags = rd16(pkt + OFF_FLAGS);
	m->ciaddr = rdip(pkt + OFF_CIADDR);
	m->yiaddr = rdip(pkt + OFF_YIADDR);
	m->siaddr = rdip(pkt + OFF_SIADDR);
	m->giaddr = rdip(pkt + OFF_GIADDR);
	memcpy(m->chaddr, pkt + OFF_CHADDR, DHCP_CHADDR_LEN);
	if (memcmp(pkt + OFF_COOKIE, cookie, sizeof cookie) != 0)
		return DHCP_EMAGIC;

	int rc = walk_all(m, NULL);
	if (rc == DHCP_OK)
		rc = concatenate(m);
	if (rc != DHCP_OK)
		return rc;

	if (!(m->overload & OVERLOAD_SNAME)) {
		m->sname = (const char *)pkt + OFF_SNAME;
		m->sname_len = (uint8_t)strnlen(m->sname, DHCP_SNAME_LEN);
	}
	if (!(m->overload & OVERLOAD_FILE)) {
		m->file = (const char *)pkt + OFF_FILE;
		m->file_len = (uint8_t)strnlen(m->file, DHCP_FILE_LEN);
	}

	size_t tlen;
	const uint8_t *t = dhcp_get_option(m, DHCP_OPT_MSG_TYPE, &tlen);
	if (t) {
		if (tlen != 1 || t[0] == 0)
			return DHCP_EMSGTYPE;
		m->msg_type = t[0];
	}
	return DHCP_OK;
}

static bool len_is(const struct dhcp_msg *m, uint8_t code, size_t want)
{
	return m->opt[code].where == DHCP_OPT_ABSENT || m->opt[code].len == want;
}

int dhcp_parse_request(const uint8_t *pkt, size_t len, struct dhcp_msg *m)
{
	int rc = dhcp_parse(pkt, len, m);
	if (rc != DHCP_OK)
		return rc;
	if (m->op != DHCP_BOOTREQUEST)
		return DHCP_EOP;
	if (m->msg_type == DHCP_BOOTP)
		return DHCP_ENOTYPE;
	/* Leases are keyed on chaddr: without one there is no client to serve. */
	if (m->hlen == 0 || (m->htype == DHCP_HTYPE_ETHER && m->hlen != 6))
		return DHCP_EHTYPE;
	if (!len_is(m, DHCP_OPT_REQUESTED_IP, 4) || !len_is(m, DHCP_OPT_SERVER_ID, 4) ||
	    !len_is(m, DHCP_OPT_MAX_MSG_SIZE, 2))
		return DHCP_EOPTVAL;
	if (m->opt[DHCP_OPT_CLIENT_ID].where != DHCP_OPT_ABSENT && m->opt[DHCP_OPT_CLIENT_ID].len < 2)
		return DHCP_EOPTVAL;
	return DHCP_OK;
}

/* ---- Accessors ---- */

const uint8_t *dhcp_get_option(const struct dhcp_msg *m, uint8_t code, size_t *len)
{
	const struct dhcp_opt_ref *r = &m->opt[code];
	*len = r->len;
	switch (r->where) {
	case DHCP_OPT_IN_PACKET: return m->pkt + r->off;
	case DHCP_OPT_IN_CONCAT: return m->concat + r->off;
	}
	*len = 0;
	return NULL;
}

bool dhcp_has_option(const struct dhcp_msg *m, uint8_t code)
{
	return m->opt[code].where != DHCP_OPT_ABSENT;
}

static const uint8_t *get_exact(const struct dhcp_msg *m, uint8_t code, size_t want)
{
	size_t len;
	const uint8_t *p = dhcp_get_option(m, code, &len);
	return p && len == want ? p : NULL;
}

bool dhcp_get_u8(const struct dhcp_msg *m, uint8_t code, uint8_t *v)
{
	const uint8_t *p = get_exact(m, code, 1);
	if (p)
		*v = p[0];
	return p != NULL;
}

bool dhcp_get_u16(const struct dhcp_msg *m, uint8_t code, uint16_t *v)
{
	const uint8_t *p = get_exact(m, code, 2);
	if (p)
		*v = rd16(p);
	return p != NULL;
}

bool dhcp_get_u32(const struct dhcp_msg *m, uint8_t code, uint32_t *v)
{
	const uint8_t *p = get_exact(m, code, 4);
	if (p)
		*v = rd32(p);
	return p != NULL;
}

bool dhcp_get_ip(const struct dhcp_msg *m, uint8_t code, uint32_t *ip)
{
	const uint8_t *p = get_exact(m, code, 4);
	if (p)
		*ip = rdip(p);
	return p != NULL;
}

bool dhcp_get_requested_ip(const struct dhcp_msg *m, uint32_t *ip)
{
	return dhcp_get_ip(m, DHCP_OPT_REQUESTED_IP, ip);
}

bool dhcp_get_server_id(const struct dhcp_msg *m, uint32_t *ip)
{
	return dhcp_get_ip(m, DHCP_OPT_SERVER_ID, ip);
}

bool dhcp_get_max_msg_size(const struct dhcp_msg *m, uint16_t *v)
{
	if (!dhcp_get_u16(m, DHCP_OPT_MAX_MSG_SIZE, v))
		return false;
	if (*v < MIN_MAX_MSG_SIZE)
		*v = MIN_MAX_MSG_SIZE;
	return true;
}

bool dhcp_get_client_arch(const struct dhcp_msg *m, uint16_t *arch)
{
	size_t len;
	const uint8_t *p = dhcp_get_option(m, DHCP_OPT_CLIENT_ARCH, &len);
	if (!p || len < 2 || len % 2)
		return false;
	*arch = rd16(p);
	return true;
}

bool dhcp_get_nic_id(const struct dhcp_msg *m, struct dhcp_nic_id *id)
{
	const uint8_t *p = get_exact(m, DHCP_OPT_CLIENT_NDI, 3);
	if (p) {
		id->type = p[0];
		id->major = p[1];
		id->minor = p[2];
	}
	return p != NULL;
}

bool dhcp_get_uuid(const struct dhcp_msg *m, uint8_t uuid[16])
{
	const uint8_t *p = get_exact(m, DHCP_OPT_CLIENT_UUID, 17);
	if (!p || p[0] != 0)
		return false;
	memcpy(uuid, p + 1, 16);
	return true;
}

const uint8_t *dhcp_get_client_id(const struct dhcp_msg *m, size_t *len)
{
	return dhcp_get_option(m, DHCP_OPT_CLIENT_ID, len);
}

const uint8_t *dhcp_get_vendor_class(const struct dhcp_msg *m, size_t *len)
{
	return dhcp_get_option(m, DHCP_OPT_VENDOR_CLASS, len);
}

const uint8_t *dhcp_get_user_class(const struct dhcp_msg *m, size_t *len)
{
	return dhcp_get_option(m, DHCP_OPT_USER_CLASS, len);
}

const uint8_t *dhcp_get_prl(const struct dhcp_msg *m, size_t *len)
{
	return dhcp_get_option(m, DHCP_OPT_PARAM_REQ, len);
}

const uint8_t *dhcp_get_hostname(const struct dhcp_msg *m, size_t *len)
{
	return dhcp_get_option(m, DHCP_OPT_HOSTNAME, len);
}

const uint8_t *dhcp_get_relay_info(const struct dhcp_msg *m, size_t *len)
{
	return dhcp_get_option(m, DHCP_OPT_RELAY_INFO, len);
}

const uint8_t *dhcp_get_ipxe_encap(const struct dhcp_msg *m, size_t *len)
{
	return dhcp_get_option(m, DHCP_OPT_IPXE_ENCAP, len);
}

bool dhcp_user_class_has(const struct dhcp_msg *m, const char *name)
{
	size_t len, nlen = strlen(name);
	const uint8_t *p = dhcp_get_user_class(m, &len);
	if (!p)
		return false;
	/* iPXE sends the bare string "iPXE", not RFC 3004's length-prefixed list. */
	if (len == nlen && memcmp(p, name, nlen) == 0)
		return true;
	/* RFC 3004 §2: UC_Len_i (>= 1) then the class data, repeated. */
	for (size_t i = 0; i < len;) {
		size_t l = p[i];
		if (l == 0 || l > len - i - 1)
			return false;
		if (l == nlen && memcmp(p + i + 1, name, nlen) == 0)
			return true;
		i += 1 + l;
	}
	return false;
}

static bool vendor_class_starts(const struct dhcp_msg *m, const char *prefix)
{
	size_t len, plen = strlen(prefix);
	const uint8_t *p = dhcp_get_vendor_class(m, &len);
	return p && len >= plen && memcmp(p, prefix, plen) == 0;
}

bool dhcp_is_pxe_client(const struct dhcp_msg *m) { return vendor_class_starts(m, "PXEClient"); }
bool dhcp_is_http_client(const struct dhcp_msg *m) { return vendor_class_starts(m, "HTTPClient"); }

bool dhcp_is_ipxe(const struct dhcp_msg *m)
{
	return dhcp_user_class_has(m, "iPXE") || dhcp_has_option(m, DHCP_OPT_IPXE_ENCAP);
}

const uint8_t *dhcp_encap_find(const uint8_t *data, size_t len, uint8_t sub, size_t *sublen)
{
	for (size_t p = 0; p < len;) {
		uint8_t code = data[p];
		if (code == DHCP_OPT_PAD) {
			p++;
			continue;
		}
		if (code == DHCP_OPT_END || len - p < 2)
			return NULL;
		size_t l = data[p + 1];
		if (l > len - p - 2)
			return NULL;
		if (code == sub) {
			*sublen = l;
			return data + p + 2;
		}
		p += 2 + l;
	}
	return NULL;
}

/* ---- Encoder ---- */

static int fail(struct dhcp_writer *w, int rc)
{
	if (w->err == DHCP_OK)
		w->err = rc;
	return w->err;
}

size_t dhcp_option_space(size_t len)
{
	size_t instances = len == 0 ? 1 : (len + 254) / 255;
	return len + 2 * instances;
}

size_t dhcp_writer_room(const struct dhcp_writer *w)
{
	if (w->err != DHCP_OK || w->end < w->pos + w->reserve)
		return 0;
	return w->end - w->pos - w->reserve;
}

/* Splits into 255-byte instances (RFC 3396 §6); the caller checked the room. */
static void put_split(struct dhcp_writer *w, uint8_t code, const uint8_t *data, size_t len)
{
	do {
		size_t chunk = len > 255 ? 255 : len;
		w->buf[w->pos++] = code;
		w->buf[w->pos++] = (uint8_t)chunk;
		if (chunk)
			memcpy(w->buf + w->pos, data, chunk);
		w->pos += chunk;
		data += chunk;
		len -= chunk;
	} while (len > 0);
}

/* Common start: zeroed header, cookie, option 53. */
static int begin(struct dhcp_writer *w, uint8_t *buf, size_t cap, size_t limit, uint8_t msg_type)
{
	w->buf = buf;
	if (!buf || cap < DHCP_MIN_LEN) {
		w->end = 0; /* the setters check this: no header to write into */
		return fail(w, DHCP_ENOSPACE);
	}
	w->end = cap < limit ? cap : limit;
	memset(buf, 0, DHCP_OPTIONS_OFF);
	memcpy(buf + OFF_COOKIE, cookie, sizeof cookie);
	w->pos = DHCP_OPTIONS_OFF;
	w->reserve += 1; /* END */
	if (w->end < w->pos + w->reserve)
		return fail(w, DHCP_ENOSPACE);
	if (msg_type != DHCP_BOOTP) {
		if (dhcp_writer_room(w) < 3)
			return fail(w, DHCP_ENOSPACE);
		put_split(w, DHCP_OPT_MSG_TYPE, &msg_type, 1);
		w->type_written = true;
	}
	return DHCP_OK;
}

int dhcp_reply_begin(struct dhcp_writer *w, uint8_t *buf, size_t cap,
		     const struct dhcp_msg *req, uint8_t msg_type)
{
	memset(w, 0, sizeof *w);
	if (!req) {
		w->buf = buf;
		return fail(w, DHCP_EARG);
	}
	w->req = req;

	/* Never send more than the client said it can take (RFC 2131 §2). */
	size_t limit = DHCP_DEFAULT_MAX_LEN;
	uint16_t mms;
	if (dhcp_get_max_msg_size(req, &mms))
		limit = (size_t)mms - IP_UDP_HEADERS;

	size_t rlen;
	if (dhcp_get_relay_info(req, &rlen)) {
		w->echo_relay_info = true;
		w->reserve = dhcp_option_space(rlen);
	}
	int rc = begin(w, buf, cap, limit, msg_type);
	if (w->end < DHCP_OPTIONS_OFF)
		return rc;

	/* RFC 2131 table 3: what a server copies from the client's message. */
	uint16_t flags = req->flags;
	if (msg_type == DHCP_NAK && req->giaddr != 0)
		flags |= DHCP_FLAG_BROADCAST; /* §4.3.2: the relay must broadcast it */
	buf[OFF_OP] = DHCP_BOOTREPLY;
	buf[OFF_HTYPE] = req->htype;
	buf[OFF_HLEN] = req->hlen;
	wr32(buf + OFF_XID, req->xid);
	wr16(buf + OFF_FLAGS, flags);
	if (msg_type == DHCP_ACK || msg_type == DHCP_BOOTP)
		wrip(buf + OFF_CIADDR, req->ciaddr);
	wrip(buf + OFF_GIADDR, req->giaddr);
	memcpy(buf + OFF_CHADDR, req->chaddr, DHCP_CHADDR_LEN);
	return rc;
}

int dhcp_request_begin(struct dhcp_writer *w, uint8_t *buf, size_t cap, uint8_t msg_type,
		       uint32_t xid, const uint8_t *chaddr, uint8_t hlen)
{
	memset(w, 0, sizeof *w);
	if (hlen > DHCP_CHADDR_LEN || (hlen && !chaddr)) {
		w->buf = buf;
		return fail(w, DHCP_EARG);
	}
	int rc = begin(w, buf, cap, SIZE_MAX, msg_type);
	if (w->end < DHCP_OPTIONS_OFF)
		return rc;
	buf[OFF_OP] = DHCP_BOOTREQUEST;
	buf[OFF_HTYPE] = DHCP_HTYPE_ETHER;
	buf[OFF_HLEN] = hlen;
	wr32(buf + OFF_XID, xid);
	if (hlen)
		memcpy(buf + OFF_CHADDR, chaddr, hlen);
	return rc;
}

static bool has_header(const struct dhcp_writer *w) { return w->end >= DHCP_OPTIONS_OFF; }

void dhcp_set_yiaddr(struct dhcp_writer *w, uint32_t ip) { if (has_header(w)) wrip(w->buf + OFF_YIADDR, ip); }
void dhcp_set_siaddr(struct dhcp_writer *w, uint32_t ip) { if (has_header(w)) wrip(w->buf + OFF_SIADDR, ip); }
void dhcp_set_ciaddr(struct dhcp_writer *w, uint32_t ip) { if (has_header(w)) wrip(w->buf + OFF_CIADDR, ip); }
void dhcp_set_giaddr(struct dhcp_writer *w, uint32_t ip) { if (has_header(w)) wrip(w->buf + OFF_GIADDR, ip); }
void dhcp_set_flags(struct dhcp_writer *w, uint16_t flags) { if (has_header(w)) wr16(w->buf + OFF_FLAGS, flags); }
void dhcp_set_secs(struct dhcp_writer *w, uint16_t secs) { if (has_header(w)) wr16(w->buf + OFF_SECS, secs); }

static int set_field(struct dhcp_writer *w, size_t off, size_t size, const char *s)
{
	if (w->err != DHCP_OK)
		return w->err;
	size_t len = strlen(s);
	if (len >= size) /* keep a NUL: clients read these as C strings */
		return fail(w, DHCP_ENOSPACE);
	memset(w->buf + off, 0, size);
	memcpy(w->buf + off, s, len);
	return DHCP_OK;
}

int dhcp_set_sname(struct dhcp_writer *w, const char *s) { return set_field(w, OFF_SNAME, DHCP_SNAME_LEN, s); }
int dhcp_set_file(struct dhcp_writer *w, const char *s) { return set_field(w, OFF_FILE, DHCP_FILE_LEN, s); }

int dhcp_put_option(struct dhcp_writer *w, uint8_t code, const void *data, size_t len)
{
	if (w->err != DHCP_OK)
		return w->err;
	if (code == DHCP_OPT_PAD || code == DHCP_OPT_END ||
	    (code == DHCP_OPT_MSG_TYPE && w->type_written) ||
	    (code == DHCP_OPT_RELAY_INFO && w->echo_relay_info) || (len && !data))
		return fail(w, DHCP_EARG);
	if (dhcp_option_space(len) > dhcp_writer_room(w))
		return fail(w, DHCP_ENOSPACE);
	put_split(w, code, data, len);
	return DHCP_OK;
}

int dhcp_put_u8(struct dhcp_writer *w, uint8_t code, uint8_t v) { return dhcp_put_option(w, code, &v, 1); }

int dhcp_put_u16(struct dhcp_writer *w, uint8_t code, uint16_t v)
{
	uint8_t b[2];
	wr16(b, v);
	return dhcp_put_option(w, code, b, 2);
}

int dhcp_put_u32(struct dhcp_writer *w, uint8_t code, uint32_t v)
{
	uint8_t b[4];
	wr32(b, v);
	return dhcp_put_option(w, code, b, 4);
}

int dhcp_put_ip(struct dhcp_writer *w, uint8_t code, uint32_t ip) { return dhcp_put_option(w, code, &ip, 4); }

int dhcp_put_ips(struct dhcp_writer *w, uint8_t code, const uint32_t *ips, size_t n)
{
	/* uint32_t arrays in network order are already the wire bytes. */
	if (n > SIZE_MAX / 4)
		return fail(w, DHCP_EARG);
	return dhcp_put_option(w, code, ips, n * 4);
}

int dhcp_put_str(struct dhcp_writer *w, uint8_t code, const char *s)
{
	return dhcp_put_option(w, code, s, strlen(s));
}

void dhcp_order_options(const struct dhcp_msg *req, struct dhcp_opt_out *opts, size_t n)
{
	uint16_t rank[256];
	size_t plen = 0;
	const uint8_t *prl = req ? dhcp_get_prl(req, &plen) : NULL;

	for (int i = 0; i < 256; i++)
		rank[i] = UINT16_MAX;
	for (size_t i = 0; prl && i < plen; i++)
		if (rank[prl[i]] == UINT16_MAX) /* first mention wins */
			rank[prl[i]] = (uint16_t)(2 + i);
	rank[DHCP_OPT_MSG_TYPE] = 0;
	rank[DHCP_OPT_SERVER_ID] = 1;

	/* Insertion sort: stable, and n is a few dozen at most. */
	for (size_t i = 1; i < n; i++) {
		struct dhcp_opt_out o = opts[i];
		size_t j = i;
		while (j > 0 && rank[opts[j - 1].code] > rank[o.code]) {
			opts[j] = opts[j - 1];
			j--;
		}
		opts[j] = o;
	}
}

int dhcp_put_options(struct dhcp_writer *w, const struct dhcp_msg *req,
		     struct dhcp_opt_out *opts, size_t n)
{
	if (req)
		dhcp_order_options(req, opts, n);
	for (size_t i = 0; i < n; i++) {
		int rc = dhcp_put_option(w, opts[i].code, opts[i].data, opts[i].len);
		if (rc != DHCP_OK)
			return rc;
	}
	return DHCP_OK;
}

void dhcp_encap_init(struct dhcp_encap *e, uint8_t *buf, size_t cap)
{
	e->buf = buf;
	e->cap = buf ? cap : 0;
	e->len = 0;
	e->err = DHCP_OK;
}

static int encap_fail(struct dhcp_encap *e, int rc)
{
	if (e->err == DHCP_OK)
		e->err = rc;
	return e->err;
}

int dhcp_encap_put(struct dhcp_encap *e, uint8_t code, const void *data, size_t len)
{
	if (e->err != DHCP_OK)
		return e->err;
	if (code == DHCP_OPT_PAD || code == DHCP_OPT_END || (len && !data))
		return encap_fail(e, DHCP_EARG);
	if (len > 255)
		return encap_fail(e, DHCP_EOPTLEN);
	if (len + 2 > e->cap - e->len)
		return encap_fail(e, DHCP_ENOSPACE);
	e->buf[e->len++] = code;
	e->buf[e->len++] = (uint8_t)len;
	if (len)
		memcpy(e->buf + e->len, data, len);
	e->len += len;
	return DHCP_OK;
}

int dhcp_encap_put_u8(struct dhcp_encap *e, uint8_t code, uint8_t v) { return dhcp_encap_put(e, code, &v, 1); }

int dhcp_encap_end(struct dhcp_encap *e)
{
	if (e->err != DHCP_OK)
		return e->err;
	if (e->cap - e->len < 1)
		return encap_fail(e, DHCP_ENOSPACE);
	e->buf[e->len++] = DHCP_OPT_END;
	return DHCP_OK;
}

int dhcp_put_encap(struct dhcp_writer *w, uint8_t code, const struct dhcp_encap *e)
{
	if (e->err != DHCP_OK)
		return fail(w, e->err);
	return dhcp_put_option(w, code, e->buf, e->len);
}

int dhcp_reply_finish(struct dhcp_writer *w, size_t *len)
{
	*len = 0;
	if (w->err != DHCP_OK)
		return w->err;
	if (w->end < w->pos + w->reserve || w->reserve == 0)
		return fail(w, DHCP_EARG); /* finished already */
	if (w->echo_relay_info) {
		/* RFC 3046 §2.2: copy it unchanged, as the last option. */
		size_t rlen;
		const uint8_t *r = dhcp_get_relay_info(w->req, &rlen);
		put_split(w, DHCP_OPT_RELAY_INFO, r, rlen);
		w->echo_relay_info = false;
	}
	w->buf[w->pos++] = DHCP_OPT_END;
	if (w->pos < DHCP_MIN_LEN) {
		memset(w->buf + w->pos, 0, DHCP_MIN_LEN - w->pos);
		w->pos = DHCP_MIN_LEN;
	}
	w->reserve = 0;
	w->end = w->pos;
	*len = w->pos;
	return DHCP_OK;
}

/* ---- Routing ---- */

struct dhcp_dest dhcp_reply_destination(const struct dhcp_msg *req, uint8_t reply_type,
					uint32_t yiaddr)
{
	struct dhcp_dest d = { DHCP_DEST_BROADCAST, 0xffffffffu, DHCP_CLIENT_PORT };

	if (req->giaddr != 0) {
		/* RFC 2131 §4.1: relayed, so back to the relay's server port. */
		d.kind = DHCP_DEST_RELAY;
		d.addr = req->giaddr;
		d.port = DHCP_SERVER_PORT;
	} else if (req->ciaddr != 0 && reply_type != DHCP_NAK) {
		d.kind = DHCP_DEST_UNICAST_CIADDR;
		d.addr = req->ciaddr;
	} else if (reply_type == DHCP_NAK || (req->flags & DHCP_FLAG_BROADCAST) || yiaddr == 0 ||
		   req->hlen == 0) {
		/* NAKs are always broadcast without a relay; a client that set
		 * the flag cannot receive unicast before it has an address; and
		 * without a hardware address there is no ARP entry to make. */
	} else {
		d.kind = DHCP_DEST_UNICAST_YIADDR;
		d.addr = yiaddr;
	}
	return d;
}
