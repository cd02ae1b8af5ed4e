/* tests/unit/engine/test_dhcp_policy.c: engine/dhcp_policy — decisions and
 * replies for the captured real-client packets (tests/unit/proto/dhcp_fixtures.h)
 * and hand-made requests: boot file by client, options real clients need, the
 * RFC 2131 §4.3 states, relays, reservations, --known-only, proxyDHCP. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dhcp_policy.h"
#include "tests/unit/proto/dhcp_fixtures.h"

/* ---- the server under test: 10.77.0.1 on 10.77.0.0/24, as in the captures ---- */

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define SRV IP(10, 77, 0, 1)

static struct options_subnet subnets[2];
static struct dhcp_policy_config cfg;
static struct dhcp_policy_ifaddr srv_if[1] = {{SRV, 24}};

static void setup(void)
{
    memset(subnets, 0, sizeof subnets);
    subnets[0] = (struct options_subnet){
        .network = IP(10, 77, 0, 0), .prefix = 24, .pool_start = IP(10, 77, 0, 10), .pool_end = IP(10, 77, 0, 199),
        .router = SRV, .dns = {SRV, IP(10, 77, 0, 53)}, .dns_count = 2, .lease_s = 600,
    };
    strcpy(subnets[0].domain, "bootstorm.test");
    subnets[1] = (struct options_subnet){
        .network = IP(10, 88, 0, 0), .prefix = 24, .pool_start = IP(10, 88, 0, 100), .pool_end = IP(10, 88, 0, 200),
        .router = IP(10, 88, 0, 1), .dns = {IP(10, 88, 0, 53)}, .dns_count = 1, .lease_s = 7200,
    };
    cfg = (struct dhcp_policy_config){
        .subnets = subnets, .nsubnets = 2,
        .boot_bios = "pxelinux.0", .boot_efi64 = "grubx64.efi", .boot_arm64 = "grubaa64.efi",
        .boot_ipxe = NULL, .boot_http = "http://{server}:{http_port}/{loader}", .http_port = 8080,
    };
}

TestSuite(dhcp_policy, .init = setup);

static struct dhcp_policy_in make_in(const struct dhcp_msg *m)
{
    struct dhcp_policy_in in = {
        .req = m, .link = {.local = SRV, .ifaddrs = srv_if, .n_ifaddrs = 1}, .now = 1700000000,
    };
    return in;
}

/* ---- packets ---- */

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

static const struct dhcp_fixture *fixture(const char *name)
{
    for (size_t i = 0; i < DHCP_FIXTURES_N; i++)
        if (!strcmp(dhcp_fixtures[i].name, name))
            return &dhcp_fixtures[i];
    cr_fatal("no fixture %s", name);
    return NULL;
}

/* Parses a fixture as the server would; the buffer and msg are static (one
 * request at a time per test). */
static uint8_t fx_buf[4][2048];
static struct dhcp_msg fx_msg[4];
static const struct dhcp_msg *load(int slot, const char *name)
{
    size_t len = unhex(fixture(name)->raw, fx_buf[slot], sizeof fx_buf[slot]);
    cr_assert(eq(int, dhcp_parse_request(fx_buf[slot], len, &fx_msg[slot]), DHCP_OK), "%s", name);
    return &fx_msg[slot];
}

static const uint8_t MAC1[6] = {0x52, 0x54, 0x00, 0x77, 0x00, 0x01};
static const uint8_t MAC9[6] = {0x52, 0x54, 0x00, 0x99, 0x00, 0x09};

/* A hand-made client message: type, chaddr, then code/len/value options. */
struct opt { uint8_t code; size_t len; const void *data; };
static uint8_t mk_buf[4][1500];
static struct dhcp_msg mk_msg[4];
static const struct dhcp_msg *make(int slot, uint8_t type, const uint8_t mac[6], uint32_t ciaddr, uint32_t giaddr,
                                   uint16_t flags, const struct opt *opts, size_t n)
{
    struct dhcp_writer w;
    cr_assert(eq(int, dhcp_request_begin(&w, mk_buf[slot], sizeof mk_buf[slot], type, 0x1234, mac, 6), DHCP_OK));
    dhcp_set_ciaddr(&w, htonl(ciaddr));
    dhcp_set_giaddr(&w, htonl(giaddr));
    dhcp_set_flags(&w, flags);
    for (size_t i = 0; i < n; i++)
        cr_assert(eq(int, dhcp_put_option(&w, opts[i].code, opts[i].data, opts[i].len), DHCP_OK));
    size_t len;
    cr_assert(eq(int, dhcp_reply_finish(&w, &len), DHCP_OK));
    cr_assert(eq(int, dhcp_parse_request(mk_buf[slot], len, &mk_msg[slot]), DHCP_OK));
    return &mk_msg[slot];
}

static uint8_t be4[8][4];
static const void *ip_be(int slot, uint32_t ip)
{
    be4[slot][0] = (uint8_t)(ip >> 24), be4[slot][1] = (uint8_t)(ip >> 16);
    be4[slot][2] = (uint8_t)(ip >> 8), be4[slot][3] = (uint8_t)ip;
    return be4[slot];
}

/* ---- replies ---- */

static uint8_t rep_buf[1500];
static struct dhcp_msg rep;

static const struct dhcp_msg *reply(const struct dhcp_policy_in *in, const struct dhcp_policy_decision *d,
                                    uint32_t yiaddr)
{
    size_t len = 0;
    cr_assert(eq(int, dhcp_policy_build_reply(&cfg, in, d, yiaddr, rep_buf, sizeof rep_buf, &len), DHCP_OK));
    cr_assert(ge(sz, len, DHCP_MIN_LEN));
    cr_assert(eq(int, dhcp_parse(rep_buf, len, &rep), DHCP_OK));
    cr_assert(eq(u8, rep.op, DHCP_BOOTREPLY));
    cr_assert(eq(u32, rep.xid, in->req->xid));
    cr_assert(eq(int, memcmp(rep.chaddr, in->req->chaddr, DHCP_CHADDR_LEN), 0));
    return &rep;
}

static void expect_opt_str(const struct dhcp_msg *m, uint8_t code, const char *want)
{
    size_t len;
    const uint8_t *v = dhcp_get_option(m, code, &len);
    cr_assert(not(eq(ptr, (void *)v, NULL)), "option %u missing", code);
    cr_expect(eq(sz, len, strlen(want)), "option %u length", code);
    cr_expect(eq(int, memcmp(v, want, len < strlen(want) ? len : strlen(want)), 0), "option %u = %.*s", code,
              (int)len, (const char *)v);
}

static void expect_file(const struct dhcp_msg *m, const char *want)
{
    cr_assert(not(eq(ptr, (void *)m->file, NULL)));
    cr_expect(eq(u8, m->file_len, (uint8_t)strlen(want)));
    cr_expect(eq(int, strncmp(m->file, want, DHCP_FILE_LEN), 0), "file = %.*s", m->file_len, m->file);
    expect_opt_str(m, DHCP_OPT_BOOTFILE, want);
}

static void expect_ip_opt(const struct dhcp_msg *m, uint8_t code, uint32_t want)
{
    uint32_t v;
    cr_assert(dhcp_get_ip(m, code, &v), "option %u missing", code);
    cr_expect(eq(u32, ntohl(v), want), "option %u", code);
}

/* The options a real client needs on every address-giving reply. */
static void expect_address_reply(const struct dhcp_msg *m, uint8_t type, uint32_t yiaddr)
{
    cr_expect(eq(u8, m->msg_type, type));
    cr_expect(eq(u32, ntohl(m->yiaddr), yiaddr));
    expect_ip_opt(m, DHCP_OPT_SERVER_ID, SRV);
    expect_ip_opt(m, DHCP_OPT_SUBNET_MASK, 0xffffff00u);
    expect_ip_opt(m, DHCP_OPT_ROUTER, SRV);
    uint32_t t;
    cr_assert(dhcp_get_u32(m, DHCP_OPT_LEASE_TIME, &t));
    cr_expect(eq(u32, t, 600));
    cr_assert(dhcp_get_u32(m, DHCP_OPT_T1, &t));
    cr_expect(eq(u32, t, 300));
    cr_assert(dhcp_get_u32(m, DHCP_OPT_T2, &t));
    cr_expect(eq(u32, t, 525));
    /* option 6 always: d-i stops at "Name server addresses" without it */
    size_t len;
    const uint8_t *dns = dhcp_get_option(m, DHCP_OPT_DNS, &len);
    cr_assert(not(eq(ptr, (void *)dns, NULL)), "no option 6");
    cr_assert(eq(sz, len, 8));
    cr_expect(eq(u8, dns[3], 1));
    cr_expect(eq(u8, dns[7], 53));
    expect_opt_str(m, DHCP_OPT_DOMAIN, "bootstorm.test");
}

static bool has_no_pxedhcp(const struct dhcp_msg *m)
{
    size_t len, sl;
    const uint8_t *e = dhcp_get_option(m, DHCP_OPT_IPXE_ENCAP, &len);
    const uint8_t *v = e ? dhcp_encap_find(e, len, DHCP_IPXE_NO_PXEDHCP, &sl) : NULL;
    return v && sl == 1 && v[0] == 1;
}

/* ---- real clients ---- */

Test(dhcp_policy, bios_ipxe_discover_gets_pxelinux_dns_and_no_pxedhcp)
{
    const struct dhcp_msg *m = load(0, "bios-ipxe-pxelinux: client firmware DISCOVER");
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_expect(eq(int, d.subnet, 0));
    cr_expect(eq(u32, d.server_id, SRV));
    cr_expect(eq(sz, d.ncand, 0));
    cr_expect(d.alloc);
    cr_expect(eq(u32, d.lease_s, 600));
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 77, 0, 11));
    expect_address_reply(r, DHCP_OFFER, IP(10, 77, 0, 11));
    cr_expect(eq(u32, ntohl(r->siaddr), SRV));
    expect_file(r, "pxelinux.0");
    expect_opt_str(r, DHCP_OPT_TFTP_SERVER, "10.77.0.1");
    cr_expect(has_no_pxedhcp(r), "iPXE must be told not to wait for ProxyDHCP");
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_VENDOR_CLASS)));
    /* iPXE: flag clear, client-id 01+MAC → unicast to yiaddr at its MAC */
    struct dhcp_dest dst = dhcp_policy_destination(&in, &d, IP(10, 77, 0, 11), 0, 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_UNICAST_YIADDR));
    cr_expect(eq(u32, ntohl(dst.addr), IP(10, 77, 0, 11)));
    cr_expect(eq(u16, dst.port, 68));
}

Test(dhcp_policy, ipxe_gets_the_script_url_when_configured)
{
    cfg.boot_ipxe = "http://{server}:{http_port}/boot.ipxe?mac={mac}&ip={ip}";
    const struct dhcp_msg *m = load(0, "bios-ipxe-http-with-ra-and-no-pxedhcp: client firmware DISCOVER");
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 77, 0, 11));
    expect_file(r, "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:77:00:01&ip=10.77.0.11");
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_TFTP_SERVER)), "no TFTP server for an HTTP URL");
    cr_expect(has_no_pxedhcp(r));
    cr_expect(eq(int, dhcp_policy_boot_kind(m), DHCP_BOOT_IPXE));
}

Test(dhcp_policy, ovmf_gets_grubx64_broadcast_without_client_id)
{
    const struct dhcp_msg *m = load(0, "uefi-ovmf-pxebc-shim-grub: client firmware DISCOVER");
    cr_assert(not(dhcp_has_option(m, DHCP_OPT_CLIENT_ID)));
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 77, 0, 12));
    expect_address_reply(r, DHCP_OFFER, IP(10, 77, 0, 12));
    /* shim builds grubx64.efi's path from the header's 'file': both places */
    expect_file(r, "grubx64.efi");
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_IPXE_ENCAP)));
    cr_expect(eq(u16, r->flags & DHCP_FLAG_BROADCAST, DHCP_FLAG_BROADCAST), "flags %04x", r->flags);
    struct dhcp_dest dst = dhcp_policy_destination(&in, &d, IP(10, 77, 0, 12), 0, 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_BROADCAST));
    cr_expect(eq(u32, dst.addr, 0xffffffffu));
}

/* The firmware's lease as the server committed it (no client-id for OVMF). */
static struct lease bound_lease(const uint8_t mac[6], uint32_t ip, uint8_t state)
{
    struct lease l;
    memset(&l, 0, sizeof l);
    lease_key_init(&l.hw, 1, mac, 6);
    l.state = state;
    l.ip = ip;
    l.expires = 1700000000 + 500;
    return l;
}

Test(dhcp_policy, installer_with_another_client_id_gets_the_same_ip)
{
    /* OVMF (no client-id) got .12; the installer sends vendor class d-i and
     * client-id 01+MAC for the same chaddr */
    const uint8_t mac2[6] = {0x52, 0x54, 0x00, 0x77, 0x00, 0x02};
    struct lease l = bound_lease(mac2, IP(10, 77, 0, 12), LEASE_BOUND);
    const struct dhcp_msg *m = load(0, "uefi-ovmf-pxebc-shim-grub: client installer DISCOVER");
    cr_assert(dhcp_has_option(m, DHCP_OPT_CLIENT_ID));
    struct dhcp_policy_in in = make_in(m);
    in.lease = &l;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_assert(ge(sz, d.ncand, 1));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 12)));
    const struct dhcp_msg *r = reply(&in, &d, d.cand[0]);
    expect_address_reply(r, DHCP_OFFER, IP(10, 77, 0, 12));
    /* not a PXE client: no boot file */
    cr_expect(eq(u8, r->file_len, 0));
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_BOOTFILE)));
    cr_expect(eq(int, dhcp_policy_boot_kind(m), DHCP_BOOT_NONE));
    /* its 576-byte limit is honoured */
    cr_expect(le(sz, rep.len, 548));

    const struct dhcp_msg *q = load(1, "uefi-ovmf-pxebc-shim-grub: client installer REQUEST");
    in = make_in(q);
    in.lease = &l;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_ACK));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 12)));
    r = reply(&in, &d, d.cand[0]);
    expect_address_reply(r, DHCP_ACK, IP(10, 77, 0, 12));
}

Test(dhcp_policy, ipxe_then_installer_same_mac_same_ip)
{
    struct lease l = bound_lease(MAC1, IP(10, 77, 0, 11), LEASE_BOUND);
    memcpy(l.client_id, "\x01\x52\x54\x00\x77\x00\x01", 7);
    l.client_id_len = 7;
    const struct dhcp_msg *m = load(0, "bios-ipxe-pxelinux: client installer DISCOVER");
    struct dhcp_policy_in in = make_in(m);
    in.lease = &l;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 11)));
}

/* Every captured client message gets an answer from a server at 10.77.0.1:
 * DISCOVER → OFFER, REQUEST (SELECTING 10.77.0.1) → ACK of the requested address. */
ParameterizedTestParameters(dhcp_policy, every_captured_client_message)
{
    static size_t idx[DHCP_FIXTURES_N];
    size_t n = 0;
    for (size_t i = 0; i < DHCP_FIXTURES_N; i++)
        if (dhcp_fixtures[i].type == DHCP_DISCOVER || dhcp_fixtures[i].type == DHCP_REQUEST)
            idx[n++] = i;
    return cr_make_param_array(size_t, idx, n);
}

ParameterizedTest(size_t *fx, dhcp_policy, every_captured_client_message)
{
    const struct dhcp_fixture *f = &dhcp_fixtures[*fx];
    const struct dhcp_msg *m = load(0, f->name);
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    uint32_t ip = IP(10, 77, 0, 11);
    if (f->type == DHCP_DISCOVER) {
        cr_assert(eq(int, d.action, DHCP_POLICY_OFFER), "%s", f->name);
    } else {
        uint32_t want;
        cr_assert(dhcp_get_requested_ip(m, &want), "%s", f->name);
        cr_assert(eq(int, d.action, DHCP_POLICY_ACK), "%s: %s", f->name, dhcp_policy_why_name(d.why));
        cr_assert(eq(u32, d.cand[0], ntohl(want)), "%s", f->name);
        ip = d.cand[0];
    }
    const struct dhcp_msg *r = reply(&in, &d, ip);
    expect_address_reply(r, f->type == DHCP_DISCOVER ? DHCP_OFFER : DHCP_ACK, ip);
    bool pxe = f->arch >= 0;
    cr_expect(eq(int, r->file_len > 0, pxe), "%s: file '%.*s'", f->name, r->file_len, r->file ? r->file : "");
    cr_expect(eq(int, has_no_pxedhcp(r), f->user_class && !strcmp(f->user_class, "iPXE")), "%s", f->name);
    /* the client's option 55 order is kept: 1 before 3 before 6 */
    size_t off1 = r->opt[DHCP_OPT_SUBNET_MASK].off, off3 = r->opt[DHCP_OPT_ROUTER].off,
           off6 = r->opt[DHCP_OPT_DNS].off;
    cr_expect(lt(u16, off1, off3), "%s", f->name);
    cr_expect(lt(u16, off3, off6), "%s", f->name);
}

/* ---- boot file by client kind ---- */

static const struct dhcp_msg *pxe_discover(int slot, const char *vendor, int arch, const char *user_class)
{
    struct opt o[3];
    size_t n = 0;
    static uint8_t a[2];
    o[n++] = (struct opt){DHCP_OPT_VENDOR_CLASS, strlen(vendor), vendor};
    if (arch >= 0) {
        a[0] = (uint8_t)(arch >> 8), a[1] = (uint8_t)arch;
        o[n++] = (struct opt){DHCP_OPT_CLIENT_ARCH, 2, a};
    }
    if (user_class)
        o[n++] = (struct opt){DHCP_OPT_USER_CLASS, strlen(user_class), user_class};
    return make(slot, DHCP_DISCOVER, MAC9, 0, 0, DHCP_FLAG_BROADCAST, o, n);
}

Test(dhcp_policy, uefi_http_boot_gets_url_and_vendor_class)
{
    const struct dhcp_msg *m = pxe_discover(0, "HTTPClient:Arch:00016:UNDI:003000", 16, NULL);
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 77, 0, 40));
    expect_file(r, "http://10.77.0.1:8080/grubx64.efi");
    /* the firmware drops an offer that does not say HTTPClient */
    expect_opt_str(r, DHCP_OPT_VENDOR_CLASS, "HTTPClient");
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_TFTP_SERVER)));

    m = pxe_discover(1, "HTTPClient:Arch:00019:UNDI:003000", 19, NULL);
    in = make_in(m);
    dhcp_policy_decide(&cfg, &in, &d);
    r = reply(&in, &d, IP(10, 77, 0, 41));
    expect_file(r, "http://10.77.0.1:8080/grubaa64.efi");
}

Test(dhcp_policy, arch_selects_the_loader)
{
    struct {
        const char *vendor;
        int arch;
        const char *file;
        enum dhcp_boot_kind kind;
    } cases[] = {
        {"PXEClient:Arch:00000:UNDI:002001", 0, "pxelinux.0", DHCP_BOOT_BIOS},
        {"PXEClient:Arch:00007:UNDI:003000", 7, "grubx64.efi", DHCP_BOOT_EFI64},
        {"PXEClient:Arch:00009:UNDI:003000", 9, "grubx64.efi", DHCP_BOOT_EFI64},
        {"PXEClient:Arch:00011:UNDI:003000", 11, "grubaa64.efi", DHCP_BOOT_ARM64},
        /* no option 93: the architecture in the vendor class string */
        {"PXEClient:Arch:00007:UNDI:003000", -1, "grubx64.efi", DHCP_BOOT_EFI64},
        {"PXEClient", -1, "pxelinux.0", DHCP_BOOT_BIOS},
        /* an architecture without a loader configured: no file */
        {"PXEClient:Arch:00010:UNDI:003000", 10, "", DHCP_BOOT_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct dhcp_msg *m = pxe_discover(0, cases[i].vendor, cases[i].arch, NULL);
        cr_expect(eq(int, dhcp_policy_boot_kind(m), cases[i].kind), "case %zu", i);
        struct dhcp_policy_boot b;
        dhcp_policy_boot(&cfg, m, NULL, SRV, 0, &b);
        cr_expect(eq(str, b.file, (char *)cases[i].file), "case %zu", i);
        cr_expect(eq(u32, b.next_server, SRV));
    }
    cfg.next_server = IP(10, 77, 0, 9);
    struct dhcp_policy_in in = make_in(pxe_discover(0, "PXEClient:Arch:00000:UNDI:002001", 0, NULL));
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 77, 0, 42));
    cr_expect(eq(u32, ntohl(r->siaddr), IP(10, 77, 0, 9)), "--next-server in siaddr");
    expect_opt_str(r, DHCP_OPT_TFTP_SERVER, "10.77.0.9");
    expect_ip_opt(r, DHCP_OPT_SERVER_ID, SRV);
}

Test(dhcp_policy, template_expansion)
{
    char out[64];
    struct dhcp_policy_vars v = {.server = SRV, .ip = IP(10, 77, 0, 5), .http_port = 80, .mac = "aa:bb",
                                 .hostname = "n1", .loader = "x.efi"};
    cr_expect(eq(int, dhcp_policy_expand("http://{server}:{http_port}/{hostname}/{loader}?{mac}&{ip}{x}", &v, out,
                                         sizeof out), 47));
    cr_expect(eq(str, out, "http://10.77.0.1:80/n1/x.efi?aa:bb&10.77.0.5{x}"));
    v.ip = 0;
    cr_expect(eq(int, dhcp_policy_expand("{ip}|{", &v, out, sizeof out), 2));
    cr_expect(eq(str, out, "|{"));
    cr_expect(eq(int, dhcp_policy_expand("0123456789{server}", &v, out, 12), -1));
    cr_expect(eq(str, out, ""));
}

/* ---- RFC 2131 §4.3.2 REQUEST states ---- */

static const struct dhcp_msg *init_reboot(int slot, uint32_t want)
{
    struct opt o[] = {{DHCP_OPT_REQUESTED_IP, 4, ip_be(slot, want)}};
    return make(slot, DHCP_REQUEST, MAC1, 0, 0, 0, o, 1);
}

Test(dhcp_policy, init_reboot_without_record_is_silent)
{
    struct dhcp_policy_in in = make_in(init_reboot(0, IP(10, 77, 0, 20)));
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_NO_RECORD));
}

Test(dhcp_policy, init_reboot_on_the_wrong_network_is_naked)
{
    struct dhcp_policy_in in = make_in(init_reboot(0, IP(192, 168, 1, 20)));
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_NAK));
    cr_expect(eq(int, d.why, DHCP_WHY_WRONG_NET));
    const struct dhcp_msg *r = reply(&in, &d, 0);
    cr_expect(eq(u8, r->msg_type, DHCP_NAK));
    cr_expect(eq(u32, r->yiaddr, 0));
    expect_ip_opt(r, DHCP_OPT_SERVER_ID, SRV);
    cr_expect(dhcp_has_option(r, DHCP_OPT_MESSAGE));
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_LEASE_TIME)));
    struct dhcp_dest dst = dhcp_policy_destination(&in, &d, 0, 0, 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_BROADCAST));
}

Test(dhcp_policy, init_reboot_with_record)
{
    struct lease l = bound_lease(MAC1, IP(10, 77, 0, 20), LEASE_BOUND);
    struct dhcp_policy_in in = make_in(init_reboot(0, IP(10, 77, 0, 21)));
    in.lease = &l;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_NAK), "our record names another address");
    cr_expect(eq(int, d.why, DHCP_WHY_WRONG_ADDR));

    in = make_in(init_reboot(1, IP(10, 77, 0, 20)));
    in.lease = &l;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_ACK));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 20)));

    /* expired: the remembered address is taken again if still free */
    l.state = LEASE_EXPIRED;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_ACK));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 20)));
}

Test(dhcp_policy, selecting_another_server_withdraws_our_offer)
{
    struct opt o[] = {{DHCP_OPT_SERVER_ID, 4, ip_be(0, IP(10, 77, 0, 2))},
                      {DHCP_OPT_REQUESTED_IP, 4, ip_be(1, IP(10, 77, 0, 150))}};
    struct dhcp_policy_in in = make_in(make(0, DHCP_REQUEST, MAC1, 0, 0, 0, o, 2));
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_OTHER_SERVER));
    struct lease l = bound_lease(MAC1, IP(10, 77, 0, 30), LEASE_OFFERED);
    in.lease = &l;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_WITHDRAW));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 30)));
}

Test(dhcp_policy, selecting_us_for_an_address_we_hold_for_another_is_naked)
{
    /* SELECTING with a bound lease on .30 but asking for .31 */
    struct opt o[] = {{DHCP_OPT_SERVER_ID, 4, ip_be(0, SRV)}, {DHCP_OPT_REQUESTED_IP, 4, ip_be(1, IP(10, 77, 0, 31))}};
    struct lease l = bound_lease(MAC1, IP(10, 77, 0, 30), LEASE_OFFERED);
    struct dhcp_policy_in in = make_in(make(0, DHCP_REQUEST, MAC1, 0, 0, 0, o, 2));
    in.lease = &l;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_NAK));
    /* without a record (our offer was lost in a restart): ACK if the address can be had */
    in.lease = NULL;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_ACK));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 31)));
    /* ... but not outside the pool */
    struct opt o2[] = {{DHCP_OPT_SERVER_ID, 4, ip_be(2, SRV)}, {DHCP_OPT_REQUESTED_IP, 4, ip_be(3, IP(10, 77, 0, 230))}};
    in = make_in(make(1, DHCP_REQUEST, MAC1, 0, 0, 0, o2, 2));
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_NAK));
}

Test(dhcp_policy, renewing_unicasts_to_ciaddr)
{
    struct lease l = bound_lease(MAC1, IP(10, 77, 0, 20), LEASE_BOUND);
    struct dhcp_policy_in in = make_in(make(0, DHCP_REQUEST, MAC1, IP(10, 77, 0, 20), 0, 0, NULL, 0));
    in.lease = &l;
    in.link.ifaddrs = NULL; /* unicast, maybe routed: the subnet comes from ciaddr */
    in.link.n_ifaddrs = 0;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_ACK));
    cr_expect(eq(int, d.subnet, 0));
    const struct dhcp_msg *r = reply(&in, &d, d.cand[0]);
    cr_expect(eq(u32, ntohl(r->ciaddr), IP(10, 77, 0, 20)), "ACK copies ciaddr");
    struct dhcp_dest dst = dhcp_policy_destination(&in, &d, d.cand[0], 0, 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_UNICAST_CIADDR));
    cr_expect(eq(u32, ntohl(dst.addr), IP(10, 77, 0, 20)));
    /* unknown client renewing: silent; another subnet's address: NAK */
    in.lease = NULL;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.why, DHCP_WHY_NO_RECORD));
}

/* ---- relays and subnets ---- */

Test(dhcp_policy, relayed_request_takes_the_subnet_of_giaddr)
{
    const uint8_t agent[] = {1, 4, 'p', 'o', 'r', 't', 2, 2, 'r', '1'};
    struct opt o[] = {{DHCP_OPT_RELAY_INFO, sizeof agent, agent}};
    struct dhcp_policy_in in = make_in(make(0, DHCP_DISCOVER, MAC9, 0, IP(10, 88, 0, 1), 0, o, 1));
    in.link.local = IP(10, 99, 0, 1); /* the relay sent to our transit address */
    in.link.ifaddrs = NULL;
    in.link.n_ifaddrs = 0;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_expect(eq(int, d.subnet, 1));
    cr_expect(eq(u32, d.server_id, IP(10, 99, 0, 1)));
    cr_expect(eq(u32, d.lease_s, 7200));
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 88, 0, 100));
    expect_ip_opt(r, DHCP_OPT_ROUTER, IP(10, 88, 0, 1));
    expect_ip_opt(r, DHCP_OPT_SERVER_ID, IP(10, 99, 0, 1));
    cr_expect(eq(u32, ntohl(r->giaddr), IP(10, 88, 0, 1)));
    /* RFC 3046 §2.2: option 82 echoed, last */
    size_t len;
    const uint8_t *ri = dhcp_get_option(r, DHCP_OPT_RELAY_INFO, &len);
    cr_assert(not(eq(ptr, (void *)ri, NULL)));
    cr_expect(eq(sz, len, sizeof agent));
    cr_expect(eq(int, memcmp(ri, agent, sizeof agent), 0));
    cr_expect(eq(u8, rep_buf[r->opt[DHCP_OPT_RELAY_INFO].off + len], DHCP_OPT_END));
    struct dhcp_dest dst = dhcp_policy_destination(&in, &d, IP(10, 88, 0, 100), 0, 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_RELAY));
    cr_expect(eq(u32, ntohl(dst.addr), IP(10, 88, 0, 1)));
    cr_expect(eq(u16, dst.port, 67));

    in = make_in(make(1, DHCP_DISCOVER, MAC9, 0, IP(172, 16, 0, 1), 0, NULL, 0));
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_UNKNOWN_SUBNET));
}

Test(dhcp_policy, direct_request_on_an_unconfigured_interface_is_dropped)
{
    struct dhcp_policy_ifaddr other[] = {{IP(192, 168, 5, 1), 24}};
    struct dhcp_policy_in in = make_in(make(0, DHCP_DISCOVER, MAC9, 0, 0, 0, NULL, 0));
    in.link.ifaddrs = other;
    in.link.n_ifaddrs = 1;
    in.link.local = IP(192, 168, 5, 1);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_UNKNOWN_SUBNET));
    /* a second address of the interface in a configured subnet is found */
    struct dhcp_policy_ifaddr two[] = {{IP(192, 168, 5, 1), 24}, {IP(10, 88, 0, 254), 24}};
    in.link.ifaddrs = two;
    in.link.n_ifaddrs = 2;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_expect(eq(int, d.subnet, 1));
    cr_expect(eq(u32, d.server_id, IP(10, 88, 0, 254)));
}

/* ---- inventory ---- */

static struct inv_host host(const uint8_t mac[6], uint32_t ip, const char *name)
{
    struct inv_host h;
    memset(&h, 0, sizeof h);
    memcpy(h.mac, mac, 6);
    strcpy(h.hostname, name);
    h.ip = ip;
    return h;
}

Test(dhcp_policy, reservation_comes_first_and_is_static)
{
    struct inv_host h = host(MAC9, IP(10, 77, 0, 5), "node05");
    struct lease l = bound_lease(MAC9, IP(10, 77, 0, 120), LEASE_BOUND);
    struct dhcp_policy_in in = make_in(make(0, DHCP_DISCOVER, MAC9, 0, 0, 0, NULL, 0));
    in.host = &h;
    in.lease = &l;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_assert(ge(sz, d.ncand, 2));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 5)));
    cr_expect(d.cand_static[0]);
    cr_expect(eq(u32, d.cand[1], IP(10, 77, 0, 120)));
    cr_expect(not(d.cand_static[1]));
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 77, 0, 5));
    expect_opt_str(r, DHCP_OPT_HOSTNAME, "node05");

    struct lease nl;
    dhcp_policy_make_lease(&cfg, &in, &d, IP(10, 77, 0, 5), LEASE_BOUND, &nl);
    cr_expect(eq(u16, nl.flags, LEASE_F_STATIC | LEASE_F_KNOWN));
    cr_expect(eq(str, nl.hostname, "node05"));

    /* INIT-REBOOT for the old pool address: NAK, it must come back for .5 */
    in = make_in(init_reboot(1, IP(10, 77, 0, 120)));
    in.host = &h;
    in.lease = &l;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_NAK));
    in = make_in(init_reboot(2, IP(10, 77, 0, 5)));
    in.host = &h;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_ACK));
    cr_expect(d.cand_static[0]);
}

Test(dhcp_policy, known_only_ignores_strangers)
{
    cfg.known_only = true;
    struct inv_host h = host(MAC1, 0, "known");
    struct dhcp_policy_in in = make_in(load(0, "bios-ipxe-pxelinux: client firmware DISCOVER"));
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_STRANGER));
    in.host = &h; /* in the inventory without a fixed address: a pool address */
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_expect(d.alloc);
}

/* ---- proxyDHCP ---- */

Test(dhcp_policy, proxy_gives_boot_information_only)
{
    cfg.proxy = true;
    const struct dhcp_msg *m = load(0, "uefi-ovmf-pxebc-shim-grub: client firmware DISCOVER");
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_PROXY_OFFER));
    const struct dhcp_msg *r = reply(&in, &d, IP(10, 77, 0, 99));
    cr_expect(eq(u8, r->msg_type, DHCP_OFFER));
    cr_expect(eq(u32, r->yiaddr, 0), "never an address");
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_LEASE_TIME)));
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_SUBNET_MASK)));
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_ROUTER)));
    expect_file(r, "grubx64.efi");
    cr_expect(eq(u32, ntohl(r->siaddr), SRV));
    expect_ip_opt(r, DHCP_OPT_SERVER_ID, SRV);
    expect_opt_str(r, DHCP_OPT_VENDOR_CLASS, "PXEClient");
    size_t len, sl;
    const uint8_t *v43 = dhcp_get_option(r, DHCP_OPT_VENDOR, &len);
    cr_assert(not(eq(ptr, (void *)v43, NULL)));
    const uint8_t *dc = dhcp_encap_find(v43, len, DHCP_PXE_DISCOVERY_CONTROL, &sl);
    cr_assert(not(eq(ptr, (void *)dc, NULL)));
    cr_expect(eq(u8, dc[0], 8));
    cr_expect(eq(u8, v43[len - 1], 255));
    const uint8_t *uuid = dhcp_get_option(r, DHCP_OPT_CLIENT_UUID, &len);
    cr_assert(not(eq(ptr, (void *)uuid, NULL)), "option 97 echoed");
    cr_expect(eq(sz, len, 17));
    struct dhcp_dest dst = dhcp_policy_destination(&in, &d, 0, 0, 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_BROADCAST));

    /* the installer is not a PXE client: the address server answers it alone */
    in = make_in(load(1, "uefi-ovmf-pxebc-shim-grub: client installer DISCOVER"));
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_NOT_PXE));

    /* a REQUEST on 67 belongs to the address server; on 4011 it is ours */
    in = make_in(load(2, "uefi-ovmf-pxebc-shim-grub: client firmware REQUEST"));
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    in.link.pxe_port = true;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_PROXY_ACK));
    r = reply(&in, &d, 0);
    cr_expect(eq(u8, r->msg_type, DHCP_ACK));
    cr_expect(eq(u32, r->yiaddr, 0));
    expect_file(r, "grubx64.efi");
    dst = dhcp_policy_destination(&in, &d, 0, IP(10, 77, 0, 150), 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_UNICAST_CIADDR));
    cr_expect(eq(u32, ntohl(dst.addr), IP(10, 77, 0, 150)));
    cr_expect(eq(u16, dst.port, 68));
}

Test(dhcp_policy, proxy_without_any_subnet_still_answers)
{
    cfg.proxy = true;
    cfg.nsubnets = 0;
    struct dhcp_policy_ifaddr ifa[] = {{IP(10, 78, 0, 2), 24}};
    struct dhcp_policy_in in = make_in(load(0, "bios-ipxe-pxelinux: client firmware DISCOVER"));
    in.link.local = IP(10, 78, 0, 2);
    in.link.ifaddrs = ifa;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_PROXY_OFFER));
    cr_expect(eq(int, d.subnet, -1));
    cr_expect(eq(u32, d.server_id, IP(10, 78, 0, 2)));
    const struct dhcp_msg *r = reply(&in, &d, 0);
    expect_file(r, "pxelinux.0");
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_IPXE_ENCAP)), "no 175 from a proxy");
}

/* ---- DECLINE, RELEASE, INFORM ---- */

Test(dhcp_policy, decline_quarantines_only_the_clients_address)
{
    struct lease l = bound_lease(MAC1, IP(10, 77, 0, 20), LEASE_BOUND);
    l.subnet = 0;
    struct opt o[] = {{DHCP_OPT_REQUESTED_IP, 4, ip_be(0, IP(10, 77, 0, 20))}, {DHCP_OPT_SERVER_ID, 4, ip_be(1, SRV)}};
    struct dhcp_policy_in in = make_in(make(0, DHCP_DECLINE, MAC1, 0, 0, 0, o, 2));
    in.lease = &l;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_DECLINE));
    cr_expect(eq(u32, d.cand[0], IP(10, 77, 0, 20)));
    cr_expect(eq(int, dhcp_policy_reply_type(d.action), 0), "no reply to a DECLINE");
    l.ip = IP(10, 77, 0, 21);
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_NOT_HELD));
}

Test(dhcp_policy, release_and_inform)
{
    struct lease l = bound_lease(MAC1, IP(10, 77, 0, 20), LEASE_BOUND);
    struct dhcp_policy_in in = make_in(make(0, DHCP_RELEASE, MAC1, IP(10, 77, 0, 20), 0, 0, NULL, 0));
    in.lease = &l;
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_RELEASE));
    in.lease = NULL;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.why, DHCP_WHY_NOT_HELD));

    const char *vc = "PXEClient:Arch:00000:UNDI:002001";
    struct opt o[] = {{DHCP_OPT_VENDOR_CLASS, strlen(vc), vc}};
    in = make_in(make(1, DHCP_INFORM, MAC1, IP(10, 77, 0, 33), 0, 0, o, 1));
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_INFORM));
    const struct dhcp_msg *r = reply(&in, &d, 0);
    cr_expect(eq(u8, r->msg_type, DHCP_ACK));
    cr_expect(eq(u32, r->yiaddr, 0));
    cr_expect(eq(u32, ntohl(r->ciaddr), IP(10, 77, 0, 33)));
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_LEASE_TIME)), "RFC 2131 §4.3.5: no lease time");
    expect_ip_opt(r, DHCP_OPT_SUBNET_MASK, 0xffffff00u);
    expect_file(r, "pxelinux.0");
    struct dhcp_dest dst = dhcp_policy_destination(&in, &d, 0, 0, 68);
    cr_expect(eq(int, dst.kind, DHCP_DEST_UNICAST_CIADDR));
}

Test(dhcp_policy, make_lease_records_client_and_expiry)
{
    const struct dhcp_msg *m = load(0, "bios-ipxe-pxelinux: client firmware REQUEST");
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    struct lease l;
    dhcp_policy_make_lease(&cfg, &in, &d, IP(10, 77, 0, 11), LEASE_BOUND, &l);
    cr_expect(eq(int, lease_validate(&l), LEASE_TABLE_OK));
    cr_expect(eq(u8, l.hw.htype, 1));
    cr_expect(eq(u8, l.hw.hlen, 6));
    cr_expect(eq(int, memcmp(l.hw.chaddr, MAC1, 6), 0));
    cr_expect(eq(u8, l.client_id_len, 7));
    cr_expect(eq(int, memcmp(l.client_id, "\x01\x52\x54\x00\x77\x00\x01", 7), 0));
    cr_expect(eq(i64, l.expires, in.now + 600));
    cr_expect(eq(u16, l.flags, 0));
    dhcp_policy_make_lease(&cfg, &in, &d, IP(10, 77, 0, 11), LEASE_OFFERED, &l);
    cr_expect(eq(i64, l.expires, in.now + DHCP_POLICY_OFFER_HOLD_S));
    cfg.offer_hold_s = 90; /* --dhcp-offer-hold 90 */
    dhcp_policy_make_lease(&cfg, &in, &d, IP(10, 77, 0, 11), LEASE_OFFERED, &l);
    cr_expect(eq(i64, l.expires, in.now + 90));
    cfg.offer_hold_s = 0;

    const char *hn = "web-01\x01" "bad";
    struct opt o[] = {{DHCP_OPT_HOSTNAME, strlen(hn), hn}};
    in = make_in(make(1, DHCP_DISCOVER, MAC9, 0, 0, 0, o, 1));
    dhcp_policy_decide(&cfg, &in, &d);
    dhcp_policy_make_lease(&cfg, &in, &d, IP(10, 77, 0, 12), LEASE_OFFERED, &l);
    cr_expect(eq(str, l.hostname, "web-01bad"));
    cr_expect(eq(int, lease_validate(&l), LEASE_TABLE_OK));
}

Test(dhcp_policy, optional_options_give_way_to_a_small_client_limit)
{
    /* 57 = 576 → 548 bytes: the boot URL (required) and a 253-byte domain
     * (optional) do not both fit; the domain goes, the address options stay */
    memset(subnets[0].domain, 'd', OPTIONS_DOMAIN_MAX);
    subnets[0].domain[OPTIONS_DOMAIN_MAX] = 0;
    cfg.boot_ipxe = "http://{server}:{http_port}/a-rather-long-path/to/the/boot/script/for/this/particular/"
                    "machine/boot.ipxe?mac={mac}";
    const uint8_t mms[2] = {0x02, 0x40};
    const char *vc = "PXEClient:Arch:00000:UNDI:002001";
    struct opt o[] = {{DHCP_OPT_MAX_MSG_SIZE, 2, mms}, {DHCP_OPT_VENDOR_CLASS, strlen(vc), vc},
                      {DHCP_OPT_USER_CLASS, 4, "iPXE"}};
    struct dhcp_policy_in in = make_in(make(0, DHCP_DISCOVER, MAC1, 0, 0, 0, o, 3));
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    size_t len;
    static uint8_t buf[1500];
    cr_assert(eq(int, dhcp_policy_build_reply(&cfg, &in, &d, IP(10, 77, 0, 11), buf, sizeof buf, &len), DHCP_OK));
    cr_expect(le(sz, len, 548));
    struct dhcp_msg r;
    cr_assert(eq(int, dhcp_parse(buf, len, &r), DHCP_OK));
    cr_expect(dhcp_has_option(&r, DHCP_OPT_DNS));
    cr_expect(dhcp_has_option(&r, DHCP_OPT_LEASE_TIME));
    cr_expect(dhcp_has_option(&r, DHCP_OPT_SUBNET_MASK));
    expect_file(&r, "http://10.77.0.1:8080/a-rather-long-path/to/the/boot/script/for/this/particular/"
                    "machine/boot.ipxe?mac=52:54:00:77:00:01");
    cr_expect(dhcp_has_option(&r, DHCP_OPT_T1), "T1 fits when the domain does not");
    cr_expect(not(dhcp_has_option(&r, DHCP_OPT_DOMAIN)));
    /* with room for it (57 = 1472, as iPXE sends) everything goes in */
    const uint8_t big[2] = {0x05, 0xc0};
    o[0].data = big;
    in = make_in(make(1, DHCP_DISCOVER, MAC1, 0, 0, 0, o, 3));
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, dhcp_policy_build_reply(&cfg, &in, &d, IP(10, 77, 0, 11), buf, sizeof buf, &len), DHCP_OK));
    cr_assert(eq(int, dhcp_parse(buf, len, &r), DHCP_OK));
    cr_expect(dhcp_has_option(&r, DHCP_OPT_DOMAIN));
}

Test(dhcp_policy, no_pool_and_no_reservation_means_no_offer)
{
    subnets[0].pool_start = subnets[0].pool_end = 0;
    struct dhcp_policy_in in = make_in(make(0, DHCP_DISCOVER, MAC9, 0, 0, 0, NULL, 0));
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_IGNORE));
    cr_expect(eq(int, d.why, DHCP_WHY_NO_ADDRESS));
    struct inv_host h = host(MAC9, IP(10, 77, 0, 7), "fixed");
    in.host = &h;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_expect(eq(int, d.action, DHCP_POLICY_OFFER));
    cr_expect(eq(sz, d.ncand, 1));
    cr_expect(not(d.alloc));
}

Test(dhcp_policy, config_from_options)
{
    struct options o;
    cr_assert(eq(int, options_defaults(&o), OPTIONS_OK));
    struct dhcp_policy_config c;
    dhcp_policy_config_from_options(&c, &o);
    cr_expect(eq(str, (char *)c.boot_bios, "pxelinux.0"));
    cr_expect(eq(str, (char *)c.boot_efi64, "grubx64.efi"));
    cr_expect(not(eq(ptr, (void *)c.boot_ipxe, NULL)), "iPXE script URL by default");
    cr_expect(eq(u16, c.http_port, o.http_port));
    free(o.boot_ipxe);
    o.boot_ipxe = strdup("none"); /* iPXE then boots like its architecture's PXE ROM */
    dhcp_policy_config_from_options(&c, &o);
    cr_expect(eq(ptr, (void *)c.boot_ipxe, NULL));
    /* the hold times: defaults, then rounded up to whole seconds */
    cr_expect(eq(u32, c.offer_hold_s, DHCP_POLICY_OFFER_HOLD_S));
    cr_expect(eq(u32, c.decline_hold_s, DHCP_POLICY_DECLINE_HOLD_S));
    o.dhcp_offer_hold_ms = 1500;
    o.dhcp_decline_hold_ms = 86400000;
    dhcp_policy_config_from_options(&c, &o);
    cr_expect(eq(u32, c.offer_hold_s, 2));
    cr_expect(eq(u32, c.decline_hold_s, 86400));
    options_free(&o);
}

/* ---- a profile's own loader (loader_bios / loader_efi64 through loader_fn) ---- */

/* The inventory as the rollout layer would answer: MACP has both loaders,
 * MACB only loader_bios, MACE answers true with an empty name (treated as none),
 * anyone else has no profile loader.  Counts calls and remembers the last efi64. */
static const uint8_t MACP[6] = {0x52, 0x54, 0x00, 0xaa, 0x00, 0x01};
static const uint8_t MACB[6] = {0x52, 0x54, 0x00, 0xaa, 0x00, 0x02};
static const uint8_t MACE[6] = {0x52, 0x54, 0x00, 0xaa, 0x00, 0x03};
static int loader_calls;
static bool loader_last_efi64;

static bool fake_loader(void *ctx, const uint8_t mac[6], bool efi64, char *out, size_t outlen)
{
    cr_expect(eq(ptr, ctx, (void *)&loader_calls), "loader_ctx passed through");
    loader_calls++;
    loader_last_efi64 = efi64;
    const char *l = NULL;
    if (!memcmp(mac, MACP, 6))
        l = efi64 ? "profiles/rhel9/shimx64.efi" : "profiles/rhel9/lpxelinux.0";
    else if (!memcmp(mac, MACB, 6) && !efi64)
        l = "profiles/legacy/pxelinux.0";
    else if (!memcmp(mac, MACE, 6))
        l = "";
    if (!l || strlen(l) >= outlen)
        return false;
    memcpy(out, l, strlen(l) + 1);
    return true;
}

static void use_fake_loader(void)
{
    cfg.loader_fn = fake_loader;
    cfg.loader_ctx = &loader_calls;
    loader_calls = 0;
}

static const struct dhcp_msg *pxe_discover_mac(int slot, const uint8_t mac[6], const char *vendor, int arch,
                                               const char *user_class)
{
    struct opt o[3];
    size_t n = 0;
    static uint8_t a[4][2];
    o[n++] = (struct opt){DHCP_OPT_VENDOR_CLASS, strlen(vendor), vendor};
    if (arch >= 0) {
        a[slot][0] = (uint8_t)(arch >> 8), a[slot][1] = (uint8_t)arch;
        o[n++] = (struct opt){DHCP_OPT_CLIENT_ARCH, 2, a[slot]};
    }
    if (user_class)
        o[n++] = (struct opt){DHCP_OPT_USER_CLASS, strlen(user_class), user_class};
    return make(slot, DHCP_DISCOVER, mac, 0, 0, DHCP_FLAG_BROADCAST, o, n);
}

/* OFFER for m, returning the reply (file field and option 67 both checked by expect_file) */
static const struct dhcp_msg *offer_for(const struct dhcp_msg *m, uint32_t yiaddr)
{
    struct dhcp_policy_in in = make_in(m);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_OFFER));
    return reply(&in, &d, yiaddr);
}

Test(dhcp_policy, profile_loader_goes_to_bios_and_x64_uefi_clients)
{
    use_fake_loader();
    /* BIOS PXE ROM (arch 0) */
    const struct dhcp_msg *r = offer_for(pxe_discover_mac(0, MACP, "PXEClient:Arch:00000:UNDI:002001", 0, NULL),
                                         IP(10, 77, 0, 50));
    expect_file(r, "profiles/rhel9/lpxelinux.0");
    expect_opt_str(r, DHCP_OPT_TFTP_SERVER, "10.77.0.1");
    cr_expect(eq(int, loader_calls, 1));
    cr_expect(not(loader_last_efi64));
    /* x64 UEFI, arch 7 and 9, and the arch only in the vendor class string */
    r = offer_for(pxe_discover_mac(0, MACP, "PXEClient:Arch:00007:UNDI:003000", 7, NULL), IP(10, 77, 0, 50));
    expect_file(r, "profiles/rhel9/shimx64.efi");
    cr_expect(loader_last_efi64);
    r = offer_for(pxe_discover_mac(0, MACP, "PXEClient:Arch:00009:UNDI:003000", 9, NULL), IP(10, 77, 0, 50));
    expect_file(r, "profiles/rhel9/shimx64.efi");
    r = offer_for(pxe_discover_mac(0, MACP, "PXEClient:Arch:00007:UNDI:003000", -1, NULL), IP(10, 77, 0, 50));
    expect_file(r, "profiles/rhel9/shimx64.efi");
    cr_expect(eq(int, loader_calls, 4));

    /* the captured OVMF firmware DISCOVER, its MAC given a profile loader */
    const struct dhcp_msg *ovmf = load(1, "uefi-ovmf-pxebc-shim-grub: client firmware DISCOVER");
    cr_assert(eq(u8, ovmf->hlen, 6));
    struct dhcp_msg copy = *ovmf;
    memcpy(copy.chaddr, MACP, 6);
    r = offer_for(&copy, IP(10, 77, 0, 51));
    expect_address_reply(r, DHCP_OFFER, IP(10, 77, 0, 51));
    expect_file(r, "profiles/rhel9/shimx64.efi");

    /* proxyDHCP (67 and 4011) hands out the same file */
    cfg.proxy = true;
    struct dhcp_policy_in in = make_in(&copy);
    struct dhcp_policy_decision d;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_PROXY_OFFER));
    expect_file(reply(&in, &d, 0), "profiles/rhel9/shimx64.efi");
    struct dhcp_msg req = *load(2, "uefi-ovmf-pxebc-shim-grub: client firmware REQUEST");
    memcpy(req.chaddr, MACP, 6);
    in = make_in(&req);
    in.link.pxe_port = true;
    dhcp_policy_decide(&cfg, &in, &d);
    cr_assert(eq(int, d.action, DHCP_POLICY_PROXY_ACK));
    expect_file(reply(&in, &d, 0), "profiles/rhel9/shimx64.efi");
}

Test(dhcp_policy, host_without_profile_loader_gets_the_server_defaults)
{
    use_fake_loader();
    /* no profile loader at all */
    expect_file(offer_for(pxe_discover_mac(0, MAC9, "PXEClient:Arch:00000:UNDI:002001", 0, NULL), IP(10, 77, 0, 60)),
                "pxelinux.0");
    expect_file(offer_for(pxe_discover_mac(0, MAC9, "PXEClient:Arch:00007:UNDI:003000", 7, NULL), IP(10, 77, 0, 60)),
                "grubx64.efi");
    /* loader_bios only: a UEFI boot of the same machine still gets --boot-efi64 */
    expect_file(offer_for(pxe_discover_mac(0, MACB, "PXEClient:Arch:00000:UNDI:002001", 0, NULL), IP(10, 77, 0, 61)),
                "profiles/legacy/pxelinux.0");
    expect_file(offer_for(pxe_discover_mac(0, MACB, "PXEClient:Arch:00007:UNDI:003000", 7, NULL), IP(10, 77, 0, 61)),
                "grubx64.efi");
    cr_expect(loader_last_efi64);
    /* an empty name is no loader */
    expect_file(offer_for(pxe_discover_mac(0, MACE, "PXEClient:Arch:00000:UNDI:002001", 0, NULL), IP(10, 77, 0, 62)),
                "pxelinux.0");
    cr_expect(eq(int, loader_calls, 5));
    /* without the hook (no --profiles): the defaults, as before */
    cfg.loader_fn = NULL;
    expect_file(offer_for(pxe_discover_mac(0, MACP, "PXEClient:Arch:00000:UNDI:002001", 0, NULL), IP(10, 77, 0, 63)),
                "pxelinux.0");
    cr_expect(eq(int, loader_calls, 5));
}

Test(dhcp_policy, profile_loader_leaves_ipxe_http_boot_and_arm64_alone)
{
    use_fake_loader();
    /* iPXE with a script URL configured: the URL, never the profile's loader */
    cfg.boot_ipxe = "http://{server}:{http_port}/boot.ipxe?mac={mac}";
    expect_file(offer_for(pxe_discover_mac(0, MACP, "PXEClient:Arch:00007:UNDI:003000", 7, "iPXE"), IP(10, 77, 0, 70)),
                "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:aa:00:01");
    /* UEFI HTTP boot: --boot-http with {loader} = --boot-efi64 / --boot-arm64 */
    const struct dhcp_msg *r =
        offer_for(pxe_discover_mac(0, MACP, "HTTPClient:Arch:00016:UNDI:003000", 16, NULL), IP(10, 77, 0, 71));
    expect_file(r, "http://10.77.0.1:8080/grubx64.efi");
    expect_opt_str(r, DHCP_OPT_VENDOR_CLASS, "HTTPClient");
    expect_file(offer_for(pxe_discover_mac(0, MACP, "HTTPClient:Arch:00019:UNDI:003000", 19, NULL), IP(10, 77, 0, 72)),
                "http://10.77.0.1:8080/grubaa64.efi");
    /* ARM64 UEFI PXE: --boot-arm64 */
    expect_file(offer_for(pxe_discover_mac(0, MACP, "PXEClient:Arch:00011:UNDI:003000", 11, NULL), IP(10, 77, 0, 73)),
                "grubaa64.efi");
    /* an installer (no PXE markers) gets no boot file */
    r = offer_for(make(0, DHCP_DISCOVER, MACP, 0, 0, 0, NULL, 0), IP(10, 77, 0, 74));
    cr_expect(not(dhcp_has_option(r, DHCP_OPT_BOOTFILE)));
    cr_expect(eq(int, loader_calls, 0), "the hook is not even asked");
}
