/* tests/unit/proto/test_dhcp.c: proto/dhcp against captured real-client packets,
 * hand-made malformed packets, encoder round trips and the RFC 2131 §4.1 routing
 * rules.  Every parse runs on input that ends at a PROT_NONE page. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/dhcp.h"
#include "tests/unit/proto/dhcp_fixtures.h"

/* ---- helpers ---- */

#define MAX_PKT 70000

/* Guard-page harness (picohttpparser test.c): input is copied so that its last
 * byte sits right before a PROT_NONE page; one byte of over-read faults. */
static uint8_t *guard_base;
static size_t guard_size;

static const uint8_t *guarded(const void *data, size_t len)
{
	if (!guard_base) {
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		guard_size = (MAX_PKT + page - 1) / page * page;
		guard_base = mmap(NULL, guard_size + page, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		cr_assert(ne(ptr, guard_base, MAP_FAILED));
		cr_assert(eq(int, mprotect(guard_base + guard_size, page, PROT_NONE), 0));
	}
	cr_assert(le(sz, len, guard_size));
	uint8_t *p = guard_base + guard_size - len;
	if (len)
		memmove(p, data, len);
	return p;
}

static int parse_g(const void *pkt, size_t len, struct dhcp_msg *m)
{
	return dhcp_parse(guarded(pkt, len), len, m);
}

static int parse_req_g(const void *pkt, size_t len, struct dhcp_msg *m)
{
	return dhcp_parse_request(guarded(pkt, len), len, m);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	cr_assert(le(sz, n, cap));
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert(eq(int, sscanf(hex + 2 * i, "%2x", &v), 1));
		out[i] = (uint8_t)v;
	}
	return n;
}

static char *tohex(const uint8_t *p, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * len] = 0;
	return out;
}

static uint32_t ip(const char *s) { return inet_addr(s); }

/* A message with the given header bits and raw option bytes after the cookie. */
static size_t mkpkt(uint8_t *buf, uint8_t op, uint8_t htype, uint8_t hlen, const void *opts, size_t olen)
{
	memset(buf, 0, DHCP_OPTIONS_OFF);
	buf[0] = op;
	buf[1] = htype;
	buf[2] = hlen;
	buf[4] = 0x12, buf[5] = 0x34, buf[6] = 0x56, buf[7] = 0x78;
	for (int i = 0; i < 6; i++)
		buf[28 + i] = (uint8_t)(0x50 + i);
	buf[236] = 99, buf[237] = 130, buf[238] = 83, buf[239] = 99;
	memcpy(buf + DHCP_OPTIONS_OFF, opts, olen);
	return DHCP_OPTIONS_OFF + olen;
}

#define MKREQ(buf, ...) mkpkt(buf, 1, 1, 6, (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

/* Option codes in wire order, from the options field of an encoded message. */
static size_t wire_order(const uint8_t *pkt, size_t len, uint8_t *codes)
{
	size_t n = 0;
	for (size_t p = DHCP_OPTIONS_OFF; p < len && pkt[p] != 255;) {
		if (pkt[p] == 0) {
			p++;
			continue;
		}
		codes[n++] = pkt[p];
		p += 2 + pkt[p + 1];
	}
	return n;
}

static bool is_named_result(int rc)
{
	return rc == DHCP_OK || strcmp(dhcp_strerror(rc), "unknown DHCP error") != 0;
}

/* Touch every accessor: under ASan and the guard page this proves they stay in bounds. */
static void read_everything(const struct dhcp_msg *m)
{
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	size_t len;
	struct dhcp_nic_id nid;
	uint8_t uuid[16];
	volatile unsigned sink = 0;

	for (int c = 0; c < 256; c++) {
		const uint8_t *p = dhcp_get_option(m, (uint8_t)c, &len);
		for (size_t i = 0; p && i < len; i++)
			sink += p[i];
		sink += dhcp_get_u8(m, (uint8_t)c, &u8) + dhcp_get_u16(m, (uint8_t)c, &u16) +
			dhcp_get_u32(m, (uint8_t)c, &u32);
		if (p) {
			size_t sl;
			const uint8_t *s = dhcp_encap_find(p, len, 176, &sl);
			for (size_t i = 0; s && i < sl; i++)
				sink += s[i];
		}
	}
	sink += dhcp_get_client_arch(m, &u16) + dhcp_get_nic_id(m, &nid) + dhcp_get_uuid(m, uuid) +
		dhcp_get_max_msg_size(m, &u16) + dhcp_is_ipxe(m) + dhcp_is_pxe_client(m) +
		dhcp_is_http_client(m) + dhcp_user_class_has(m, "iPXE");
	for (size_t i = 0; m->sname && i < DHCP_SNAME_LEN; i++)
		sink += (uint8_t)m->sname[i];
	for (size_t i = 0; m->file && i < DHCP_FILE_LEN; i++)
		sink += (uint8_t)m->file[i];
	(void)sink;
}

/* ---- real clients ---- */

/* Criterion copies parameters into a worker that is a fresh exec of this binary,
 * so the parameter is an index (pointers would not survive), not the fixture. */
ParameterizedTestParameters(fixtures, decode)
{
	static size_t idx[DHCP_FIXTURES_N];
	for (size_t i = 0; i < DHCP_FIXTURES_N; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, DHCP_FIXTURES_N);
}

ParameterizedTest(size_t *fx, fixtures, decode)
{
	const struct dhcp_fixture *f = &dhcp_fixtures[*fx];
	static uint8_t raw[2048];
	static struct dhcp_msg m;
	char hex[2 * 2048 + 1];
	size_t len = unhex(f->raw, raw, sizeof raw);

	cr_assert(eq(int, parse_g(raw, len, &m), DHCP_OK), "%s", f->name);
	cr_expect(eq(u8, m.msg_type, f->type), "%s", f->name);
	cr_expect(eq(u8, m.op, f->type == DHCP_OFFER || f->type == DHCP_ACK ? 2 : 1), "%s", f->name);
	cr_expect(eq(u16, m.secs, f->secs), "%s", f->name);
	cr_expect(eq(int, !!(m.flags & DHCP_FLAG_BROADCAST), f->broadcast), "%s", f->name);
	cr_expect(eq(u32, m.ciaddr, ip(f->ciaddr)), "%s", f->name);
	cr_expect(eq(u32, m.yiaddr, ip(f->yiaddr)), "%s", f->name);
	cr_expect(eq(u32, m.siaddr, ip(f->siaddr)), "%s", f->name);
	cr_expect(eq(u8, m.htype, 1));
	cr_expect(eq(u8, m.hlen, 6));
	cr_expect(eq(u8, m.chaddr[0], 0x52), "%s", f->name);
	cr_assert(ne(ptr, (void *)m.file, NULL));
	cr_assert(ne(ptr, (void *)m.sname, NULL));
	cr_expect(eq(int, m.file_len, (int)strlen(f->file)), "%s", f->name);
	cr_expect(eq(int, memcmp(m.file, f->file, m.file_len), 0), "%s", f->name);
	cr_expect(eq(int, m.sname_len, (int)strlen(f->sname)), "%s", f->name);

	/* Exactly the options the capture lists, each with the decoded value. */
	bool listed[256] = { false };
	for (size_t i = 0; i < f->n_opts; i++) {
		const struct fx_opt *o = &f->opts[i];
		size_t olen;
		const uint8_t *p = dhcp_get_option(&m, o->code, &olen);
		listed[o->code] = true;
		cr_assert(ne(ptr, (void *)p, NULL), "%s: option %d", f->name, o->code);
		if (o->hex)
			cr_expect(eq(str, tohex(p, olen, hex), (char *)o->hex), "%s: option %d", f->name, o->code);
	}
	for (int c = 1; c < 255; c++)
		cr_expect(eq(int, dhcp_has_option(&m, (uint8_t)c), listed[c]), "%s: option %d", f->name, c);

	/* Typed accessors against the capture's decoded fields. */
	uint16_t arch;
	cr_expect(eq(int, dhcp_get_client_arch(&m, &arch), f->arch >= 0), "%s", f->name);
	if (f->arch >= 0)
		cr_expect(eq(int, arch, f->arch), "%s", f->name);
	size_t vlen;
	const uint8_t *vc = dhcp_get_vendor_class(&m, &vlen);
	if (f->vendor_class) {
		cr_assert(ne(ptr, (void *)vc, NULL), "%s", f->name);
		cr_expect(eq(int, memcmp(vc, f->vendor_class, vlen), 0), "%s", f->name);
		cr_expect(eq(sz, vlen, strlen(f->vendor_class)), "%s", f->name);
	} else {
		cr_expect(eq(ptr, (void *)vc, NULL), "%s", f->name);
	}
	cr_expect(eq(int, dhcp_is_pxe_client(&m),
		     f->vendor_class && !strncmp(f->vendor_class, "PXEClient", 9)), "%s", f->name);
	cr_expect(not(dhcp_is_http_client(&m)), "%s", f->name);
	if (f->user_class)
		cr_expect(dhcp_user_class_has(&m, f->user_class), "%s", f->name);
	cr_expect(eq(int, dhcp_is_ipxe(&m), (f->user_class && !strcmp(f->user_class, "iPXE")) || listed[175]),
		  "%s", f->name);
	size_t cilen;
	cr_expect(eq(int, dhcp_get_client_id(&m, &cilen) != NULL, f->has_client_id), "%s", f->name);

	uint8_t uuid[16];
	for (size_t i = 0; i < f->n_opts; i++) {
		if (f->opts[i].code != DHCP_OPT_CLIENT_UUID)
			continue;
		cr_assert(dhcp_get_uuid(&m, uuid), "%s", f->name);
		cr_expect(eq(str, tohex(uuid, 16, hex), (char *)f->opts[i].hex + 2), "%s", f->name);
	}
	struct dhcp_nic_id nid;
	if (dhcp_has_option(&m, DHCP_OPT_CLIENT_NDI)) {
		cr_assert(dhcp_get_nic_id(&m, &nid));
		cr_expect(eq(u8, nid.type, 1));
	}

	/* Option 175 sub-options, looked up one by one. */
	size_t elen;
	const uint8_t *enc = dhcp_get_ipxe_encap(&m, &elen);
	for (size_t i = 0; i < f->n_ipxe; i++) {
		size_t sl;
		const uint8_t *s = dhcp_encap_find(enc, elen, f->ipxe[i].code, &sl);
		cr_assert(ne(ptr, (void *)s, NULL), "%s: 175/%d", f->name, f->ipxe[i].code);
		cr_expect(eq(str, tohex(s, sl, hex), (char *)f->ipxe[i].hex), "%s: 175/%d", f->name, f->ipxe[i].code);
	}

	/* The server-side gate: client messages pass, server replies are EOP. */
	int want = m.op == DHCP_BOOTREQUEST ? DHCP_OK : DHCP_EOP;
	cr_expect(eq(int, parse_req_g(raw, len, &m), want), "%s", f->name);
}

/* Every prefix of every capture: a named result, never a fault (guard page). */
Test(fixtures, every_truncation)
{
	static uint8_t raw[2048];
	static struct dhcp_msg m;
	for (size_t i = 0; i < DHCP_FIXTURES_N; i++) {
		size_t len = unhex(dhcp_fixtures[i].raw, raw, sizeof raw);
		for (size_t n = 0; n <= len; n++) {
			int rc = parse_g(raw, n, &m);
			cr_assert(is_named_result(rc), "%s len %zu: %d", dhcp_fixtures[i].name, n, rc);
			if (n < DHCP_OPTIONS_OFF)
				cr_assert(eq(int, rc, DHCP_ETRUNC));
			if (rc == DHCP_OK)
				read_everything(&m);
			rc = parse_req_g(raw, n, &m);
			cr_assert(is_named_result(rc));
		}
	}
}

/* Each options byte of each capture set to 0x00, 0x01, 0x34, 0xff: named result, no fault. */
Test(fixtures, every_byte_mutated)
{
	static uint8_t raw[2048];
	static struct dhcp_msg m;
	static const uint8_t vals[] = { 0x00, 0x01, 0x34, 0xff };
	for (size_t i = 0; i < DHCP_FIXTURES_N; i++) {
		size_t len = unhex(dhcp_fixtures[i].raw, raw, sizeof raw);
		for (size_t p = DHCP_OPTIONS_OFF; p < len; p++) {
			uint8_t saved = raw[p];
			for (size_t v = 0; v < sizeof vals; v++) {
				raw[p] = vals[v];
				int rc = parse_g(raw, len, &m);
				cr_assert(is_named_result(rc));
				if (rc == DHCP_OK)
					read_everything(&m);
			}
			raw[p] = saved;
		}
	}
}

/* Re-encoding each dnsmasq reply from its parsed options, as a reply to the
 * client message captured before it, gives dnsmasq's bytes exactly. */
Test(fixtures, dnsmasq_replies_reencode_byte_exact)
{
	static uint8_t reqraw[2048], raw[2048], out[1500];
	static struct dhcp_msg req, rep;
	int pairs = 0;
	char a[2 * 1500 + 1], b[2 * 1500 + 1];

	for (size_t i = 1; i < DHCP_FIXTURES_N; i++) {
		const struct dhcp_fixture *f = &dhcp_fixtures[i], *q = &dhcp_fixtures[i - 1];
		if (!strstr(f->name, "dnsmasq"))
			continue;
		cr_assert(not(eq(ptr, strstr(q->name, "client"), NULL)), "%s", q->name);
		size_t qlen = unhex(q->raw, reqraw, sizeof reqraw);
		size_t len = unhex(f->raw, raw, sizeof raw);
		cr_assert(eq(int, dhcp_parse_request(reqraw, qlen, &req), DHCP_OK));
		cr_assert(eq(int, dhcp_parse(raw, len, &rep), DHCP_OK));

		struct dhcp_writer w;
		cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, rep.msg_type), DHCP_OK));
		dhcp_set_yiaddr(&w, rep.yiaddr);
		dhcp_set_siaddr(&w, rep.siaddr);
		dhcp_set_secs(&w, req.secs); /* dnsmasq echoes secs; RFC 2131 table 3 says 0 */
		char file[DHCP_FILE_LEN + 1] = { 0 };
		memcpy(file, rep.file, rep.file_len);
		cr_assert(eq(int, dhcp_set_file(&w, file), DHCP_OK));
		for (size_t k = 0; k < f->n_opts; k++) {
			size_t olen;
			const uint8_t *p = dhcp_get_option(&rep, f->opts[k].code, &olen);
			if (f->opts[k].code != DHCP_OPT_MSG_TYPE)
				cr_assert(eq(int, dhcp_put_option(&w, f->opts[k].code, p, olen), DHCP_OK));
		}
		size_t outlen;
		cr_assert(eq(int, dhcp_reply_finish(&w, &outlen), DHCP_OK));
		cr_expect(eq(str, tohex(out, outlen, a), tohex(raw, len, b)), "%s", f->name);

		/* Routing agrees with where dnsmasq sent it. */
		struct dhcp_dest d = dhcp_reply_destination(&req, rep.msg_type, rep.yiaddr);
		cr_expect(eq(u32, d.addr, ip(f->ip_dst)), "%s", f->name);
		cr_expect(eq(u16, d.port, 68));
		pairs++;
	}
	cr_assert(eq(int, pairs, 16));
}

/* ---- malformed input ---- */

Test(malformed, header)
{
	uint8_t b[600];
	struct dhcp_msg m;
	size_t n = MKREQ(b, 53, 1, 1, 255);

	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(eq(int, parse_g(b, 239, &m), DHCP_ETRUNC));
	cr_assert(eq(int, parse_g(b, 0, &m), DHCP_ETRUNC));
	b[236] = 0;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EMAGIC));
	b[236] = 99;
	b[0] = 3;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOP));
	b[0] = 0;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOP));
	b[0] = 1;
	b[2] = 17;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EHLEN));
	b[2] = 16;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));

	static uint8_t big[65536];
	memcpy(big, b, n);
	cr_assert(eq(int, parse_g(big, sizeof big, &m), DHCP_ETOOBIG));
	cr_assert(eq(int, parse_g(big, sizeof big - 1, &m), DHCP_OK));
}

Test(malformed, option_lengths)
{
	uint8_t b[600];
	struct dhcp_msg m;

	/* Body one byte past the end. */
	size_t n = MKREQ(b, 53, 1, 1, 12, 4, 'a', 'b', 'c');
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOPTLEN));
	/* Code byte with no length byte. */
	n = MKREQ(b, 53, 1, 1, 12);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOPTLEN));
	/* Body exactly to the end, no END: tolerated. */
	n = MKREQ(b, 53, 1, 1, 12, 3, 'a', 'b', 'c');
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	size_t len;
	cr_assert(eq(int, memcmp(dhcp_get_hostname(&m, &len), "abc", 3), 0));
	cr_assert(eq(sz, len, 3));
	/* Garbage after END is never read as options; PADs are skipped. */
	n = MKREQ(b, 0, 0, 53, 1, 1, 0, 255, 12, 200, 1);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(not(dhcp_has_option(&m, 12)));
	cr_assert(not(dhcp_has_option(&m, 0)));
	/* Zero-length option is present with length 0. */
	n = MKREQ(b, 53, 1, 1, 80, 0, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(ne(ptr, (void *)dhcp_get_option(&m, 80, &len), NULL));
	cr_assert(eq(sz, len, 0));
}

Test(malformed, message_type)
{
	uint8_t b[600];
	struct dhcp_msg m;
	size_t n = MKREQ(b, 53, 2, 1, 1, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EMSGTYPE));
	n = MKREQ(b, 53, 1, 0, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EMSGTYPE));
	n = MKREQ(b, 53, 0, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EMSGTYPE));
	/* Split 53 concatenates to length 2 (RFC 3396): still bad. */
	n = MKREQ(b, 53, 1, 1, 53, 1, 1, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EMSGTYPE));
	n = MKREQ(b, 53, 1, 8, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(eq(u8, m.msg_type, DHCP_INFORM));
	cr_assert(eq(str, (char *)dhcp_msg_type_name(m.msg_type), "INFORM"));
}

/* Overload: file then sname, after the options field. */
static size_t overload_pkt(uint8_t *b, uint8_t how)
{
	size_t n = MKREQ(b, 52, 1, how, 53, 1, 1, 12, 2, 'h', 'o', 255);
	memset(b + 44, 0, 64 + 128);
	/* file: more hostname, then END */
	b[108] = 12, b[109] = 2, b[110] = 's', b[111] = 't', b[112] = 255;
	/* sname: PAD, vendor class, END */
	b[44] = 0, b[45] = 60, b[46] = 3, b[47] = 'a', b[48] = 'b', b[49] = 'c', b[50] = 255;
	return n;
}

Test(overload, follows_file_and_sname)
{
	uint8_t b[600];
	struct dhcp_msg m;
	size_t n = overload_pkt(b, 3), len;

	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(eq(u8, m.overload, 3));
	cr_assert(eq(ptr, (void *)m.file, NULL));
	cr_assert(eq(ptr, (void *)m.sname, NULL));
	const uint8_t *h = dhcp_get_hostname(&m, &len);
	cr_assert(eq(sz, len, 4));
	cr_assert(eq(int, memcmp(h, "host", 4), 0)); /* options, then file */
	cr_assert(eq(u16, m.opt[12].count, 2));
	const uint8_t *vc = dhcp_get_vendor_class(&m, &len);
	cr_assert(eq(sz, len, 3));
	cr_assert(eq(int, memcmp(vc, "abc", 3), 0));

	/* Only file: sname stays a name (and its bytes are not options). */
	n = overload_pkt(b, 1);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(ne(ptr, (void *)m.sname, NULL));
	cr_assert(eq(ptr, (void *)m.file, NULL));
	cr_assert(not(dhcp_has_option(&m, 60)));
	cr_assert(eq(u16, m.opt[12].count, 2));

	/* Only sname. */
	n = overload_pkt(b, 2);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(dhcp_has_option(&m, 60));
	cr_assert(eq(u16, m.opt[12].count, 1));
	cr_assert(ne(ptr, (void *)m.file, NULL));
}

Test(overload, rejected)
{
	uint8_t b[600];
	struct dhcp_msg m;
	size_t n;

	/* Bad values and lengths. */
	n = MKREQ(b, 52, 1, 0, 53, 1, 1, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOVERLOAD));
	n = MKREQ(b, 52, 1, 4, 53, 1, 1, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOVERLOAD));
	n = MKREQ(b, 52, 2, 1, 1, 53, 1, 1, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOVERLOAD));
	n = MKREQ(b, 52, 1, 1, 52, 1, 1, 53, 1, 1, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOVERLOAD));

	/* A loop: file overloaded, and file itself says "overload" again. */
	n = overload_pkt(b, 1);
	b[108] = 52, b[109] = 1, b[110] = 3, b[111] = 255;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOVERLOAD));
	/* Same in sname. */
	n = overload_pkt(b, 3);
	b[44] = 52, b[45] = 1, b[46] = 1, b[47] = 255;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOVERLOAD));

	/* The overloaded field's own options are bad: an option that runs past
	 * the end of 'file' (into the cookie) is rejected even though the packet
	 * has bytes there. */
	n = overload_pkt(b, 1);
	memset(b + 108, 0, 128);
	b[108 + 120] = 12, b[108 + 121] = 10;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOPTLEN));
	/* A code in the last byte of sname, its length byte would be file[0]. */
	n = overload_pkt(b, 2);
	memset(b + 44, 0, 64);
	b[44 + 63] = 12;
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_EOPTLEN));
	/* A full field without END is fine. */
	n = overload_pkt(b, 1);
	b[108] = 43, b[109] = 126;
	memset(b + 110, 'x', 126);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	size_t len;
	cr_assert(ne(ptr, (void *)dhcp_get_option(&m, 43, &len), NULL));
	cr_assert(eq(sz, len, 126));
}

Test(concat, rfc3396_join_and_limit)
{
	static uint8_t b[4096];
	struct dhcp_msg m;
	size_t n, len;

	/* Two options interleaved, each split in two: joined in order, apart. */
	n = MKREQ(b, 53, 1, 1, 77, 2, 'a', 'b', 60, 1, 'X', 77, 1, 'c', 60, 2, 'Y', 'Z', 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	const uint8_t *p = dhcp_get_user_class(&m, &len);
	cr_assert(eq(sz, len, 3));
	cr_assert(eq(int, memcmp(p, "abc", 3), 0));
	p = dhcp_get_vendor_class(&m, &len);
	cr_assert(eq(sz, len, 3));
	cr_assert(eq(int, memcmp(p, "XYZ", 3), 0));
	cr_assert(eq(u8, m.opt[60].where, DHCP_OPT_IN_CONCAT));
	cr_assert(eq(u8, m.opt[53].where, DHCP_OPT_IN_PACKET));

	/* Four 255-byte instances of 43 = 1020 bytes fit; five do not. */
	size_t o = mkpkt(b, 1, 1, 6, (const uint8_t[]){ 53, 1, 1 }, 3);
	for (int i = 0; i < 5; i++) {
		b[o++] = 43;
		b[o++] = 255;
		memset(b + o, 'a' + i, 255);
		o += 255;
		if (i == 3) {
			cr_assert(eq(int, parse_g(b, o, &m), DHCP_OK));
			p = dhcp_get_option(&m, 43, &len);
			cr_assert(eq(sz, len, 1020));
			cr_assert(eq(u8, p[0], 'a'));
			cr_assert(eq(u8, p[1019], 'd'));
		}
	}
	cr_assert(eq(int, parse_g(b, o, &m), DHCP_ECONCAT));
}

Test(request_gate, reasons)
{
	uint8_t b[600];
	struct dhcp_msg m;
	size_t n;

	n = MKREQ(b, 53, 1, 1, 61, 7, 1, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 255);
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_OK));
	n = MKREQ(b, 61, 2, 1, 2, 255); /* plain BOOTP */
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(eq(u8, m.msg_type, DHCP_BOOTP));
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_ENOTYPE));
	n = MKREQ(b, 53, 1, 1, 255);
	b[0] = 2;
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_EOP));
	b[0] = 1, b[2] = 0;
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_EHTYPE));
	b[2] = 8;
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_EHTYPE));
	b[1] = 6; /* IEEE 802 with 8 bytes: accepted */
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_OK));
	n = MKREQ(b, 53, 1, 3, 50, 3, 10, 0, 0, 255);
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_EOPTVAL));
	n = MKREQ(b, 53, 1, 3, 54, 5, 10, 0, 0, 1, 1, 255);
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_EOPTVAL));
	n = MKREQ(b, 53, 1, 1, 57, 1, 5, 255);
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_EOPTVAL));
	n = MKREQ(b, 53, 1, 1, 61, 1, 1, 255);
	cr_assert(eq(int, parse_req_g(b, n, &m), DHCP_EOPTVAL));
}

/* ---- accessors ---- */

Test(accessors, lengths_and_classes)
{
	uint8_t b[600];
	struct dhcp_msg m;
	uint16_t v16;
	uint8_t uuid[16];
	size_t n;

	n = MKREQ(b, 53, 1, 1, 93, 3, 0, 7, 0, 97, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		  57, 2, 1, 0, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(not(dhcp_get_client_arch(&m, &v16))); /* odd length */
	cr_assert(not(dhcp_get_uuid(&m, uuid)));        /* 16, not 17 */
	cr_assert(dhcp_get_max_msg_size(&m, &v16));
	cr_assert(eq(u16, v16, 576)); /* 256 raised to the RFC minimum */

	n = MKREQ(b, 53, 1, 1, 93, 4, 0, 16, 0, 7, 97, 17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		  60, 10, 'H', 'T', 'T', 'P', 'C', 'l', 'i', 'e', 'n', 't', 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(dhcp_get_client_arch(&m, &v16));
	cr_assert(eq(u16, v16, 16)); /* first of the list */
	cr_assert(not(dhcp_get_uuid(&m, uuid))); /* type 1 is not defined */
	cr_assert(dhcp_is_http_client(&m));
	cr_assert(not(dhcp_is_pxe_client(&m)));
	cr_assert(not(dhcp_is_ipxe(&m)));

	/* User class, RFC 3004 and bare. */
	n = MKREQ(b, 53, 1, 1, 77, 5, 4, 'i', 'P', 'X', 'E', 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(dhcp_user_class_has(&m, "iPXE"));
	cr_assert(dhcp_is_ipxe(&m));
	n = MKREQ(b, 53, 1, 1, 77, 9, 3, 'a', 'b', 'c', 4, 'i', 'P', 'X', 'E', 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(dhcp_user_class_has(&m, "iPXE"));
	cr_assert(dhcp_user_class_has(&m, "abc"));
	cr_assert(not(dhcp_user_class_has(&m, "ab")));
	n = MKREQ(b, 53, 1, 1, 77, 5, 'i', 'P', 'X', 'E', 'x', 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(not(dhcp_user_class_has(&m, "iPXE")));
	n = MKREQ(b, 53, 1, 1, 77, 5, 9, 'i', 'P', 'X', 'E', 255); /* instance longer than the option */
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(not(dhcp_user_class_has(&m, "iPXE")));
	/* Instance claims 4 bytes, option has 2, packet ends there (guard page). */
	n = MKREQ(b, 53, 1, 1, 77, 3, 4, 'i', 'P');
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(not(dhcp_user_class_has(&m, "iPXE")));
	/* 175 alone marks iPXE. */
	n = MKREQ(b, 53, 1, 1, 175, 3, 177, 1, 1, 255);
	cr_assert(eq(int, parse_g(b, n, &m), DHCP_OK));
	cr_assert(dhcp_is_ipxe(&m));

	/* Encapsulated sub-options: PAD skipped, END stops, overrun is "absent". */
	static const uint8_t enc[] = { 0, 6, 1, 8, 10, 2, 'a', 'b', 255, 7, 1, 1 };
	size_t sl;
	const uint8_t *s = dhcp_encap_find(enc, sizeof enc, 10, &sl);
	cr_assert(ne(ptr, (void *)s, NULL));
	cr_assert(eq(sz, sl, 2));
	cr_assert(eq(u8, s[0], 'a'));
	cr_assert(eq(ptr, (void *)dhcp_encap_find(enc, sizeof enc, 7, &sl), NULL));
	cr_assert(eq(ptr, (void *)dhcp_encap_find(enc, 5, 10, &sl), NULL));
	cr_assert(eq(ptr, (void *)dhcp_encap_find(enc, 2, 6, &sl), NULL));
}

Test(accessors, strerror_names_every_reason)
{
	for (int rc = DHCP_EARG; rc <= DHCP_OK; rc++) {
		cr_assert(is_named_result(rc), "%d", rc);
		for (int o = DHCP_EARG; o < rc; o++)
			cr_assert(ne(str, (char *)dhcp_strerror(rc), (char *)dhcp_strerror(o)));
	}
	cr_assert(eq(str, (char *)dhcp_strerror(-99), "unknown DHCP error"));
	cr_assert(eq(str, (char *)dhcp_msg_type_name(200), "UNKNOWN"));
}

/* ---- encoder ---- */

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x77, 0x00, 0x01 };

/* A client REQUEST built with the request writer; opts are raw option bytes. */
static size_t build_request(uint8_t *buf, size_t cap, uint8_t type, uint32_t ciaddr, uint32_t giaddr,
			    uint16_t flags, const struct dhcp_opt_out *opts, size_t n)
{
	struct dhcp_writer w;
	size_t len;
	cr_assert(eq(int, dhcp_request_begin(&w, buf, cap, type, 0xdeadbeef, mac, 6), DHCP_OK));
	dhcp_set_ciaddr(&w, ciaddr);
	dhcp_set_giaddr(&w, giaddr);
	dhcp_set_flags(&w, flags);
	for (size_t i = 0; i < n; i++)
		cr_assert(eq(int, dhcp_put_option(&w, opts[i].code, opts[i].data, opts[i].len), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
	return len;
}

Test(encoder, round_trip_pxe_offer)
{
	static uint8_t raw[2048], out[1500];
	static struct dhcp_msg req, rep;
	const struct dhcp_fixture *f = &dhcp_fixtures[0]; /* BIOS iPXE DISCOVER */
	size_t len = unhex(f->raw, raw, sizeof raw), outlen;
	cr_assert(eq(int, parse_req_g(raw, len, &req), DHCP_OK));

	struct dhcp_writer w;
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	dhcp_set_yiaddr(&w, ip("10.77.0.11"));
	dhcp_set_siaddr(&w, ip("10.77.0.1"));
	cr_assert(eq(int, dhcp_set_sname(&w, "bootstorm"), DHCP_OK));
	cr_assert(eq(int, dhcp_set_file(&w, "http://10.77.0.1:8080/boot.ipxe"), DHCP_OK));

	uint32_t sid = ip("10.77.0.1"), mask = ip("255.255.255.0"), dns[2] = { ip("10.77.0.1"), ip("10.77.0.2") };
	uint8_t lease[4] = { 0, 0, 0x0e, 0x10 }, encbuf[16];
	struct dhcp_encap e;
	dhcp_encap_init(&e, encbuf, sizeof encbuf);
	cr_assert(eq(int, dhcp_encap_put_u8(&e, DHCP_IPXE_NO_PXEDHCP, 1), DHCP_OK));
	cr_assert(eq(int, dhcp_encap_end(&e), DHCP_OK));
	struct dhcp_opt_out opts[] = {
		{ DHCP_OPT_LEASE_TIME, lease, 4 },
		{ DHCP_OPT_DNS, dns, 8 },
		{ DHCP_OPT_IPXE_ENCAP, e.buf, e.len },
		{ DHCP_OPT_BOOTFILE, "http://10.77.0.1:8080/boot.ipxe", 31 },
		{ DHCP_OPT_HOSTNAME, "vm1", 3 },
		{ DHCP_OPT_SUBNET_MASK, &mask, 4 },
		{ DHCP_OPT_SERVER_ID, &sid, 4 },
		{ DHCP_OPT_VENDOR_CLASS, "PXEClient", 9 },
	};
	cr_assert(eq(int, dhcp_put_options(&w, &req, opts, 8), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_finish(&w, &outlen), DHCP_OK));
	cr_assert(ge(sz, outlen, DHCP_MIN_LEN));

	/* 53, 54, then in the client's 55 order (1 3 6 12 60 67 175), then the rest. */
	uint8_t codes[32];
	size_t nc = wire_order(out, outlen, codes);
	static const uint8_t want[] = { 53, 54, 1, 6, 12, 60, 67, 175, 51 };
	cr_assert(eq(sz, nc, sizeof want));
	for (size_t i = 0; i < nc; i++)
		cr_expect(eq(u8, codes[i], want[i]), "position %zu", i);

	cr_assert(eq(int, parse_g(out, outlen, &rep), DHCP_OK));
	cr_assert(eq(u8, rep.op, DHCP_BOOTREPLY));
	cr_assert(eq(u8, rep.msg_type, DHCP_OFFER));
	cr_assert(eq(u32, rep.xid, req.xid));
	cr_assert(eq(u16, rep.flags, req.flags));
	cr_assert(eq(u8, rep.htype, req.htype));
	cr_assert(eq(u8, rep.hlen, req.hlen));
	cr_assert(eq(int, memcmp(rep.chaddr, req.chaddr, 16), 0));
	cr_assert(eq(u32, rep.yiaddr, ip("10.77.0.11")));
	cr_assert(eq(u32, rep.siaddr, ip("10.77.0.1")));
	cr_assert(eq(u32, rep.ciaddr, 0));
	cr_assert(eq(u16, rep.secs, 0));
	cr_assert(eq(str, (char *)rep.file, "http://10.77.0.1:8080/boot.ipxe"));
	cr_assert(eq(str, (char *)rep.sname, "bootstorm"));
	uint32_t v;
	cr_assert(dhcp_get_server_id(&rep, &v));
	cr_assert(eq(u32, v, sid));
	cr_assert(dhcp_get_u32(&rep, DHCP_OPT_LEASE_TIME, &v));
	cr_assert(eq(u32, v, 3600));
	size_t l;
	const uint8_t *p = dhcp_get_option(&rep, DHCP_OPT_DNS, &l);
	cr_assert(eq(sz, l, 8));
	cr_assert(eq(int, memcmp(p, dns, 8), 0));
	p = dhcp_get_ipxe_encap(&rep, &l);
	size_t sl;
	p = dhcp_encap_find(p, l, DHCP_IPXE_NO_PXEDHCP, &sl);
	cr_assert(ne(ptr, (void *)p, NULL));
	cr_assert(eq(sz, sl, 1));
	cr_assert(eq(u8, p[0], 1));
	cr_assert(dhcp_is_pxe_client(&rep));
}

Test(encoder, long_option_split_rfc3396)
{
	static uint8_t out[2000], data[600];
	struct dhcp_msg m;
	struct dhcp_writer w;
	size_t len;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7);
	cr_assert(eq(sz, dhcp_option_space(0), 2));
	cr_assert(eq(sz, dhcp_option_space(255), 257));
	cr_assert(eq(sz, dhcp_option_space(256), 260));
	cr_assert(eq(sz, dhcp_option_space(600), 606));

	cr_assert(eq(int, dhcp_request_begin(&w, out, sizeof out, DHCP_DISCOVER, 1, mac, 6), DHCP_OK));
	cr_assert(eq(int, dhcp_put_option(&w, 43, data, 600), DHCP_OK));
	cr_assert(eq(int, dhcp_put_option(&w, 44, data, 255), DHCP_OK));
	cr_assert(eq(int, dhcp_put_option(&w, 45, NULL, 0), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
	cr_assert(eq(sz, len, 240 + 3 + 606 + 257 + 2 + 1));
	/* On the wire: 43/255, 43/255, 43/90. */
	cr_assert(eq(u8, out[243], 43));
	cr_assert(eq(u8, out[244], 255));
	cr_assert(eq(u8, out[243 + 257], 43));
	cr_assert(eq(u8, out[243 + 514], 43));
	cr_assert(eq(u8, out[243 + 515], 90));

	cr_assert(eq(int, parse_g(out, len, &m), DHCP_OK));
	const uint8_t *p = dhcp_get_option(&m, 43, &len);
	cr_assert(eq(sz, len, 600));
	cr_assert(eq(int, memcmp(p, data, 600), 0));
	cr_assert(eq(u16, m.opt[43].count, 3));
	cr_assert(eq(u16, m.opt[44].count, 1));
	cr_assert(eq(u16, m.opt[44].len, 255));
	cr_assert(dhcp_has_option(&m, 45));
}

Test(encoder, enospace_never_truncates)
{
	static uint8_t out[1500], data[400], reqbuf[600];
	static struct dhcp_msg req;
	struct dhcp_writer w;
	size_t len;

	/* Capacity below the BOOTP minimum. */
	cr_assert(eq(int, dhcp_request_begin(&w, out, 299, DHCP_DISCOVER, 1, mac, 6), DHCP_ENOSPACE));
	cr_assert(eq(int, dhcp_put_u8(&w, 1, 1), DHCP_ENOSPACE));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_ENOSPACE));
	cr_assert(eq(sz, len, 0));

	/* 300 bytes: 240 + 53 (3) + END (1) leaves 56. */
	memset(out, 0xee, sizeof out);
	cr_assert(eq(int, dhcp_request_begin(&w, out, 300, DHCP_DISCOVER, 1, mac, 6), DHCP_OK));
	cr_assert(eq(sz, dhcp_writer_room(&w), 56));
	cr_assert(eq(int, dhcp_put_option(&w, 43, data, 50), DHCP_OK));
	size_t pos = w.pos;
	cr_assert(eq(int, dhcp_put_option(&w, 44, data, 5), DHCP_ENOSPACE));
	cr_assert(eq(sz, w.pos, pos));
	cr_assert(eq(u8, out[pos], 0xee)); /* nothing of it written */
	cr_assert(eq(int, dhcp_put_u8(&w, 45, 1), DHCP_ENOSPACE)); /* sticky */
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_ENOSPACE));
	cr_assert(eq(sz, len, 0));

	/* Exactly full is fine. */
	cr_assert(eq(int, dhcp_request_begin(&w, out, 300, DHCP_DISCOVER, 1, mac, 6), DHCP_OK));
	cr_assert(eq(int, dhcp_put_option(&w, 43, data, 54), DHCP_OK));
	cr_assert(eq(sz, dhcp_writer_room(&w), 0));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
	cr_assert(eq(sz, len, 300));
	cr_assert(eq(u8, out[299], 255));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_EARG)); /* spent */

	/* The client's option 57 caps a reply, not the buffer: 576 → 548 bytes. */
	uint8_t mms[2] = { 0x02, 0x40 };
	struct dhcp_opt_out o57 = { DHCP_OPT_MAX_MSG_SIZE, mms, 2 };
	size_t rl = build_request(reqbuf, sizeof reqbuf, DHCP_DISCOVER, 0, 0, 0, &o57, 1);
	cr_assert(eq(int, parse_req_g(reqbuf, rl, &req), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(sz, dhcp_writer_room(&w), 548 - 240 - 3 - 1));
	cr_assert(eq(int, dhcp_put_option(&w, 43, data, 303), DHCP_ENOSPACE)); /* 307 > 304 */
	mms[0] = 0x05, mms[1] = 0xc0; /* 1472 */
	rl = build_request(reqbuf, sizeof reqbuf, DHCP_DISCOVER, 0, 0, 0, &o57, 1);
	cr_assert(eq(int, parse_req_g(reqbuf, rl, &req), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(int, dhcp_put_option(&w, 43, data, 303), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
	/* Without 57: 548. */
	rl = build_request(reqbuf, sizeof reqbuf, DHCP_DISCOVER, 0, 0, 0, NULL, 0);
	cr_assert(eq(int, parse_req_g(reqbuf, rl, &req), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(sz, dhcp_writer_room(&w), 304));

	/* Header strings keep their NUL. */
	char name[130];
	memset(name, 'f', sizeof name);
	name[127] = 0;
	cr_assert(eq(int, dhcp_set_file(&w, name), DHCP_OK));
	name[127] = 'f', name[128] = 0;
	cr_assert(eq(int, dhcp_set_file(&w, name), DHCP_ENOSPACE));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_ENOSPACE));
	name[64] = 0;
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(int, dhcp_set_sname(&w, name), DHCP_ENOSPACE));

	/* Misuse is named, not ignored. */
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(int, dhcp_put_u8(&w, DHCP_OPT_MSG_TYPE, 5), DHCP_EARG));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(int, dhcp_put_option(&w, DHCP_OPT_END, NULL, 0), DHCP_EARG));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, NULL, DHCP_OFFER), DHCP_EARG));

	/* Encapsulation builder. */
	uint8_t eb[8];
	struct dhcp_encap e;
	dhcp_encap_init(&e, eb, sizeof eb);
	cr_assert(eq(int, dhcp_encap_put(&e, 1, data, 256), DHCP_EOPTLEN));
	dhcp_encap_init(&e, eb, sizeof eb);
	cr_assert(eq(int, dhcp_encap_put(&e, 1, data, 6), DHCP_OK));
	cr_assert(eq(int, dhcp_encap_end(&e), DHCP_ENOSPACE));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(int, dhcp_put_encap(&w, DHCP_OPT_VENDOR, &e), DHCP_ENOSPACE));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_ENOSPACE));
}

Test(encoder, relay_info_echoed_last_and_nak_broadcast_bit)
{
	static uint8_t reqbuf[1500], out[1500], ri[300];
	static struct dhcp_msg req, rep;
	struct dhcp_writer w;
	size_t len;

	/* Option 82 from a relay: circuit-id and remote-id sub-options, 280 bytes
	 * so that the echo itself needs splitting. */
	for (size_t i = 0; i < sizeof ri; i++)
		ri[i] = (uint8_t)i;
	struct dhcp_opt_out o[] = { { DHCP_OPT_RELAY_INFO, ri, 280 } };
	size_t rl = build_request(reqbuf, sizeof reqbuf, DHCP_REQUEST, 0, ip("10.1.0.1"), 0, o, 1);
	cr_assert(eq(int, parse_req_g(reqbuf, rl, &req), DHCP_OK));

	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_NAK), DHCP_OK));
	/* Room already excludes the echo: 548 - 240 - 3 (53) - 1 (END) - 284 (82). */
	cr_assert(eq(sz, dhcp_writer_room(&w), 20));
	cr_assert(eq(int, dhcp_put_option(&w, DHCP_OPT_RELAY_INFO, ri, 2), DHCP_EARG));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_NAK), DHCP_OK));
	cr_assert(eq(int, dhcp_put_str(&w, DHCP_OPT_MESSAGE, "wrong net"), DHCP_OK));
	cr_assert(eq(int, dhcp_put_ip(&w, DHCP_OPT_SERVER_ID, ip("10.1.0.254")), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
	cr_assert(eq(sz, len, 240 + 3 + 11 + 6 + 284 + 1));

	uint8_t codes[16];
	size_t nc = wire_order(out, len, codes);
	cr_assert(eq(sz, nc, 5));
	cr_assert(eq(u8, codes[3], 82));
	cr_assert(eq(u8, codes[4], 82));
	cr_assert(eq(u8, out[len - 1], 255));
	cr_assert(eq(int, parse_g(out, len, &rep), DHCP_OK));
	size_t l;
	const uint8_t *p = dhcp_get_relay_info(&rep, &l);
	cr_assert(eq(sz, l, 280));
	cr_assert(eq(int, memcmp(p, ri, 280), 0));
	cr_assert(eq(u16, rep.flags, DHCP_FLAG_BROADCAST)); /* §4.3.2 */
	cr_assert(eq(u32, rep.giaddr, ip("10.1.0.1")));
	struct dhcp_dest d = dhcp_reply_destination(&req, DHCP_NAK, 0);
	cr_assert(eq(int, d.kind, DHCP_DEST_RELAY));

	/* ACK copies ciaddr (RFC 2131 table 3), OFFER does not. */
	rl = build_request(reqbuf, sizeof reqbuf, DHCP_INFORM, ip("10.2.0.9"), 0, 0, NULL, 0);
	cr_assert(eq(int, parse_req_g(reqbuf, rl, &req), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_ACK), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
	cr_assert(eq(sz, len, 300));
	cr_assert(eq(int, parse_g(out, len, &rep), DHCP_OK));
	cr_assert(eq(u32, rep.ciaddr, ip("10.2.0.9")));
	cr_assert(eq(u16, rep.flags, 0));
	cr_assert(eq(int, dhcp_reply_begin(&w, out, sizeof out, &req, DHCP_OFFER), DHCP_OK));
	cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
	cr_assert(eq(int, parse_g(out, len, &rep), DHCP_OK));
	cr_assert(eq(u32, rep.ciaddr, 0));
	cr_assert(not(dhcp_has_option(&rep, 82)));
}

Test(encoder, prl_ordering)
{
	static uint8_t reqbuf[600];
	static struct dhcp_msg req;
	static const uint8_t prl[] = { 67, 3, 1, 66, 3, 6 }; /* 3 twice: first wins */
	struct dhcp_opt_out po = { DHCP_OPT_PARAM_REQ, prl, sizeof prl };
	size_t rl = build_request(reqbuf, sizeof reqbuf, DHCP_DISCOVER, 0, 0, 0, &po, 1);
	cr_assert(eq(int, parse_req_g(reqbuf, rl, &req), DHCP_OK));

	struct dhcp_opt_out o[] = {
		{ 51, NULL, 0 }, { 6, NULL, 0 }, { 54, NULL, 0 }, { 43, NULL, 0 }, { 1, NULL, 0 },
		{ 67, NULL, 0 }, { 58, NULL, 0 }, { 3, NULL, 0 }, { 53, NULL, 0 },
	};
	dhcp_order_options(&req, o, 9);
	static const uint8_t want[] = { 53, 54, 67, 3, 1, 6, 51, 43, 58 };
	for (size_t i = 0; i < 9; i++)
		cr_expect(eq(u8, o[i].code, want[i]), "position %zu", i);

	/* No 55: 53, 54 first, the rest in the order given. */
	rl = build_request(reqbuf, sizeof reqbuf, DHCP_DISCOVER, 0, 0, 0, NULL, 0);
	cr_assert(eq(int, parse_req_g(reqbuf, rl, &req), DHCP_OK));
	struct dhcp_opt_out o2[] = { { 6, NULL, 0 }, { 54, NULL, 0 }, { 3, NULL, 0 }, { 1, NULL, 0 } };
	dhcp_order_options(&req, o2, 4);
	cr_assert(eq(u8, o2[0].code, 54));
	cr_assert(eq(u8, o2[1].code, 6));
	cr_assert(eq(u8, o2[2].code, 3));
	cr_assert(eq(u8, o2[3].code, 1));
}

/* ---- routing, RFC 2131 §4.1 ---- */

struct route_case {
	const char *what;
	uint32_t giaddr, ciaddr;
	uint16_t flags;
	uint8_t hlen, reply;
	uint32_t yiaddr;
	enum dhcp_dest_kind kind;
	uint32_t addr;
	uint16_t port;
};

Test(routing, rfc2131_4_1_table)
{
	const uint32_t G = ip("10.9.0.1"), C = ip("10.0.0.5"), Y = ip("10.0.0.7"), B = 0xffffffffu;
	const struct route_case cases[] = {
		{ "relayed offer", G, 0, 0, 6, DHCP_OFFER, Y, DHCP_DEST_RELAY, G, 67 },
		{ "relayed nak", G, 0, 0, 6, DHCP_NAK, 0, DHCP_DEST_RELAY, G, 67 },
		{ "relayed, ciaddr set", G, C, 0x8000, 6, DHCP_ACK, Y, DHCP_DEST_RELAY, G, 67 },
		{ "renewing ack", 0, C, 0, 6, DHCP_ACK, C, DHCP_DEST_UNICAST_CIADDR, C, 68 },
		{ "inform ack, flag set", 0, C, 0x8000, 6, DHCP_ACK, 0, DHCP_DEST_UNICAST_CIADDR, C, 68 },
		{ "renewing nak", 0, C, 0, 6, DHCP_NAK, 0, DHCP_DEST_BROADCAST, B, 68 },
		{ "init nak", 0, 0, 0, 6, DHCP_NAK, 0, DHCP_DEST_BROADCAST, B, 68 },
		{ "broadcast flag", 0, 0, 0x8000, 6, DHCP_OFFER, Y, DHCP_DEST_BROADCAST, B, 68 },
		{ "unicast to yiaddr", 0, 0, 0, 6, DHCP_OFFER, Y, DHCP_DEST_UNICAST_YIADDR, Y, 68 },
		{ "bootp reply", 0, 0, 0, 6, DHCP_BOOTP, Y, DHCP_DEST_UNICAST_YIADDR, Y, 68 },
		{ "no yiaddr", 0, 0, 0, 6, DHCP_ACK, 0, DHCP_DEST_BROADCAST, B, 68 },
		{ "no hardware address", 0, 0, 0, 0, DHCP_OFFER, Y, DHCP_DEST_BROADCAST, B, 68 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct route_case *c = &cases[i];
		struct dhcp_msg m;
		memset(&m, 0, sizeof m);
		m.op = 1, m.htype = 1, m.hlen = c->hlen, m.giaddr = c->giaddr, m.ciaddr = c->ciaddr;
		m.flags = c->flags;
		struct dhcp_dest d = dhcp_reply_destination(&m, c->reply, c->yiaddr);
		cr_expect(eq(int, d.kind, c->kind), "%s", c->what);
		cr_expect(eq(u32, d.addr, c->addr), "%s", c->what);
		cr_expect(eq(u16, d.port, c->port), "%s", c->what);
	}
}
