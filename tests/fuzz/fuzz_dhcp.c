/* tests/fuzz/fuzz_dhcp.c: libFuzzer target for proto/dhcp.
 *
 * Parses the input (as any message and as a server-side request), reads every
 * accessor, and for an accepted request builds a full PXE reply, parses that
 * back and checks that what went in came out.  Any mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/dhcp.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void read_all(const struct dhcp_msg *m)
{
	volatile unsigned sink = 0;
	size_t len, sl;
	uint8_t u8, uuid[16];
	uint16_t u16;
	uint32_t u32;
	struct dhcp_nic_id nid;

	for (int c = 0; c < 256; c++) {
		const uint8_t *p = dhcp_get_option(m, (uint8_t)c, &len);
		CHECK((p != NULL) == dhcp_has_option(m, (uint8_t)c));
		for (size_t i = 0; p && i < len; i++)
			sink += p[i];
		if (p) {
			const uint8_t *s = dhcp_encap_find(p, len, (uint8_t)(c ^ 0xa5), &sl);
			CHECK(!s || (s >= p && s + sl <= p + len));
		}
		sink += dhcp_get_u8(m, (uint8_t)c, &u8) + dhcp_get_u16(m, (uint8_t)c, &u16) +
			dhcp_get_u32(m, (uint8_t)c, &u32);
	}
	sink += dhcp_get_client_arch(m, &u16) + dhcp_get_nic_id(m, &nid) + dhcp_get_uuid(m, uuid) +
		dhcp_get_max_msg_size(m, &u16) + dhcp_is_ipxe(m) + dhcp_is_pxe_client(m) +
		dhcp_is_http_client(m) + dhcp_user_class_has(m, "iPXE") + dhcp_user_class_has(m, "d-i");
	if (m->sname)
		sink += (unsigned)strnlen(m->sname, DHCP_SNAME_LEN);
	if (m->file)
		sink += (unsigned)strnlen(m->file, DHCP_FILE_LEN);
	(void)sink;
}

static bool same_option(const struct dhcp_msg *a, const struct dhcp_msg *b, uint8_t code)
{
	size_t la, lb;
	const uint8_t *pa = dhcp_get_option(a, code, &la), *pb = dhcp_get_option(b, code, &lb);
	if (!pa || !pb)
		return pa == pb;
	return la == lb && memcmp(pa, pb, la) == 0;
}

/* Answer the request as the server would, then read the answer back. */
static void round_trip(const struct dhcp_msg *req)
{
	static uint8_t out[1500];
	static struct dhcp_msg rep;
	uint8_t type = req->msg_type == DHCP_DISCOVER ? DHCP_OFFER
		     : req->msg_type == DHCP_REQUEST ? DHCP_ACK : DHCP_NAK;
	uint32_t yiaddr = 0x0b004d0a, sid = 0x01004d0a, dns[2] = { 0x01004d0a, 0x02004d0a };
	uint8_t lease[4] = { 0, 0, 0x0e, 0x10 }, encbuf[8];
	size_t hlen = 0, len;
	const uint8_t *host = dhcp_get_hostname(req, &hlen);
	struct dhcp_writer w;
	struct dhcp_encap e;

	int rc = dhcp_reply_begin(&w, out, sizeof out, req, type);
	if (rc != DHCP_OK) {
		/* Only a huge option 82 to echo can leave no room. */
		CHECK(rc == DHCP_ENOSPACE && dhcp_has_option(req, DHCP_OPT_RELAY_INFO));
		return;
	}
	dhcp_set_yiaddr(&w, yiaddr);
	dhcp_set_siaddr(&w, sid);
	CHECK(dhcp_set_file(&w, "http://10.77.0.1:8080/boot.ipxe") == DHCP_OK);
	dhcp_encap_init(&e, encbuf, sizeof encbuf);
	CHECK(dhcp_encap_put_u8(&e, DHCP_IPXE_NO_PXEDHCP, 1) == DHCP_OK);
	CHECK(dhcp_encap_end(&e) == DHCP_OK);
	struct dhcp_opt_out opts[] = {
		{ DHCP_OPT_LEASE_TIME, lease, 4 },
		{ DHCP_OPT_DNS, dns, 8 },
		{ DHCP_OPT_IPXE_ENCAP, e.buf, e.len },
		{ DHCP_OPT_BOOTFILE, "http://10.77.0.1:8080/boot.ipxe", 31 },
		{ DHCP_OPT_SERVER_ID, &sid, 4 },
		{ DHCP_OPT_HOSTNAME, host, hlen }, /* echoed, may be long: split */
	};
	size_t nopts = host ? 6 : 5;
	rc = dhcp_put_options(&w, req, opts, nopts);
	CHECK(rc == DHCP_OK || rc == DHCP_ENOSPACE);
	int frc = dhcp_reply_finish(&w, &len);
	CHECK(frc == rc);
	if (rc != DHCP_OK)
		return;

	/* What the client's option 57 allows, or 548 (RFC 2131 §2). */
	uint16_t mms;
	size_t limit = dhcp_get_max_msg_size(req, &mms) ? (size_t)mms - 28 : 548;
	CHECK(len >= DHCP_MIN_LEN && len <= limit && len <= sizeof out);
	CHECK(dhcp_parse(out, len, &rep) == DHCP_OK);
	CHECK(rep.op == DHCP_BOOTREPLY && rep.msg_type == type && rep.xid == req->xid);
	CHECK(rep.hlen == req->hlen && rep.htype == req->htype && rep.giaddr == req->giaddr);
	CHECK(memcmp(rep.chaddr, req->chaddr, DHCP_CHADDR_LEN) == 0);
	CHECK(rep.yiaddr == yiaddr && rep.siaddr == sid && rep.file && rep.file_len == 31);
	uint32_t v;
	CHECK(dhcp_get_server_id(&rep, &v) && v == sid);
	CHECK(dhcp_get_u32(&rep, DHCP_OPT_LEASE_TIME, &v) && v == 3600);
	CHECK(same_option(&rep, req, DHCP_OPT_RELAY_INFO));
	CHECK(!host || same_option(&rep, req, DHCP_OPT_HOSTNAME));
	size_t el, sl;
	const uint8_t *enc = dhcp_get_ipxe_encap(&rep, &el);
	const uint8_t *s = enc ? dhcp_encap_find(enc, el, DHCP_IPXE_NO_PXEDHCP, &sl) : NULL;
	CHECK(s && sl == 1 && s[0] == 1);
	if (type == DHCP_NAK && req->giaddr)
		CHECK(rep.flags & DHCP_FLAG_BROADCAST);

	struct dhcp_dest d = dhcp_reply_destination(req, type, yiaddr);
	CHECK(d.port == (req->giaddr ? DHCP_SERVER_PORT : DHCP_CLIENT_PORT));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dhcp_msg m;

	int rc = dhcp_parse(data, size, &m);
	CHECK(rc <= DHCP_OK && rc >= DHCP_EARG);
	if (rc == DHCP_OK)
		read_all(&m);
	rc = dhcp_parse_request(data, size, &m);
	if (rc == DHCP_OK)
		round_trip(&m);
	return 0;
}
