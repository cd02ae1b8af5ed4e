/* tests/unit/proto/test_tftp.c — codec, negotiation, file names, netascii (proto/tftp.h). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tftp.h"

struct fixture {
    const char *name;
    const char *hex;
    const char *filename;
    const char *mode;
    long long blksize, tsize, windowsize; /* -1: not in the request */
};

/* Every tftp_rrq entry of /work/shared/fixtures/real-clients.json (raw, mode, opts). */
static const struct fixture fixtures[] = {
    {"bios-ipxe-pxelinux: pxelinux.0",
     "00017078656c696e75782e30006f6374657400626c6b73697a650031343332007473697a65003000",
     "pxelinux.0", "octet", 1432, 0, -1},
    {"bios-ipxe-pxelinux: ldlinux.c32",
     "00016c646c696e75782e633332006f63746574007473697a65003000626c6b73697a65003134303800",
     "ldlinux.c32", "octet", 1408, 0, -1},
    {"bios-ipxe-pxelinux: pxelinux.cfg/01-52-54-00-77-00-01",
     "00017078656c696e75782e6366672f30312d35322d35342d30302d37372d30302d3031006f63746574007473697a65003000626c6b73697a65003134303800",
     "pxelinux.cfg/01-52-54-00-77-00-01", "octet", 1408, 0, -1},
    {"bios-ipxe-pxelinux: menu.c32",
     "00016d656e752e633332006f63746574007473697a65003000626c6b73697a65003134303800",
     "menu.c32", "octet", 1408, 0, -1},
    {"bios-ipxe-pxelinux: libutil.c32",
     "00016c69627574696c2e633332006f63746574007473697a65003000626c6b73697a65003134303800",
     "libutil.c32", "octet", 1408, 0, -1},
    {"bios-ipxe-pxelinux: debian-installer/amd64/linux",
     "000164656269616e2d696e7374616c6c65722f616d6436342f6c696e7578006f63746574007473697a65003000626c6b73697a65003134303800",
     "debian-installer/amd64/linux", "octet", 1408, 0, -1},
    {"bios-ipxe-pxelinux: debian-installer/amd64/initrd.gz",
     "000164656269616e2d696e7374616c6c65722f616d6436342f696e697472642e677a006f63746574007473697a65003000626c6b73697a65003134303800",
     "debian-installer/amd64/initrd.gz", "octet", 1408, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: debian-installer/amd64/bootnetx64.efi",
     "000164656269616e2d696e7374616c6c65722f616d6436342f626f6f746e65747836342e656669006f63746574007473697a65003000626c6b73697a6500313436380077696e646f7773697a65003400",
     "debian-installer/amd64/bootnetx64.efi", "octet", 1468, 0, 4},
    {"uefi-ovmf-pxebc-shim-grub: debian-installer/amd64/revocations_sku.efi",
     "000164656269616e2d696e7374616c6c65722f616d6436342f7265766f636174696f6e735f736b752e656669006f6374657400626c6b73697a65003531320077696e646f7773697a65003400",
     "debian-installer/amd64/revocations_sku.efi", "octet", 512, -1, 4},
    {"uefi-ovmf-pxebc-shim-grub: debian-installer/amd64/revocations_sbat.efi",
     "000164656269616e2d696e7374616c6c65722f616d6436342f7265766f636174696f6e735f736261742e656669006f6374657400626c6b73697a65003531320077696e646f7773697a65003400",
     "debian-installer/amd64/revocations_sbat.efi", "octet", 512, -1, 4},
    {"uefi-ovmf-pxebc-shim-grub: debian-installer/amd64/shim_certificate_0.efi",
     "000164656269616e2d696e7374616c6c65722f616d6436342f7368696d5f63657274696669636174655f302e656669006f6374657400626c6b73697a65003531320077696e646f7773697a65003400",
     "debian-installer/amd64/shim_certificate_0.efi", "octet", 512, -1, 4},
    {"uefi-ovmf-pxebc-shim-grub: debian-installer/amd64/grubx64.efi",
     "000164656269616e2d696e7374616c6c65722f616d6436342f677275627836342e656669006f6374657400626c6b73697a65003531320077696e646f7773697a65003400",
     "debian-installer/amd64/grubx64.efi", "octet", 512, -1, 4},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/grub/x86_64-efi/command.lst",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f677275622f7838365f36342d6566692f636f6d6d616e642e6c7374006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/grub/x86_64-efi/command.lst", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/grub/x86_64-efi/fs.lst",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f677275622f7838365f36342d6566692f66732e6c7374006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/grub/x86_64-efi/fs.lst", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/grub/x86_64-efi/crypto.lst",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f677275622f7838365f36342d6566692f63727970746f2e6c7374006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/grub/x86_64-efi/crypto.lst", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/grub/x86_64-efi/terminal.lst",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f677275622f7838365f36342d6566692f7465726d696e616c2e6c7374006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/grub/x86_64-efi/terminal.lst", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/grub/grub.cfg",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f677275622f677275622e636667006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/grub/grub.cfg", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/grub/grub.cfg-52:54:00:77:00:02",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f677275622f677275622e6366672d35323a35343a30303a37373a30303a3032006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/grub/grub.cfg-52:54:00:77:00:02", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/grub/grub.cfg-52:54:00:77:00:01",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f677275622f677275622e6366672d35323a35343a30303a37373a30303a3031006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/grub/grub.cfg-52:54:00:77:00:01", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/linux",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f6c696e7578006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/linux", "octet", 1024, 0, -1},
    {"uefi-ovmf-pxebc-shim-grub: /debian-installer/amd64/initrd.gz",
     "00012f64656269616e2d696e7374616c6c65722f616d6436342f696e697472642e677a006f6374657400626c6b73697a650031303234007473697a65003000",
     "/debian-installer/amd64/initrd.gz", "octet", 1024, 0, -1},
};

#define NFIX (sizeof fixtures / sizeof fixtures[0])

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static unsigned fixture_bits(const struct fixture *f)
{
    return (f->blksize >= 0 ? TFTP_OPT_BLKSIZE : 0u) | (f->tsize >= 0 ? TFTP_OPT_TSIZE : 0u) |
           (f->windowsize >= 0 ? TFTP_OPT_WINDOWSIZE : 0u);
}

/* ---------------- fixtures: every real client RRQ ---------------- */

Test(tftp_fixtures, all_parse_with_their_options)
{
    cr_assert_eq(NFIX, 21, "the fixture file has 21 TFTP requests");
    for (size_t i = 0; i < NFIX; i++) {
        const struct fixture *f = &fixtures[i];
        uint8_t pkt[512];
        size_t n = unhex(f->hex, pkt, sizeof pkt);
        struct tftp_packet p;
        cr_assert_eq(tftp_parse(pkt, n, &p), TFTP_OK, "%s", f->name);
        cr_assert_eq(p.op, TFTP_OP_RRQ, "%s", f->name);
        cr_assert_str_eq(p.rq.filename, f->filename);
        cr_assert_eq(p.rq.filename_len, strlen(f->filename));
        cr_assert_str_eq(f->mode, "octet");
        cr_assert_eq(p.rq.mode, TFTP_MODE_OCTET);
        cr_assert_eq(p.rq.opts.present, fixture_bits(f), "%s", f->name);
        cr_assert_eq(p.rq.opts.malformed, 0);
        cr_assert_eq(p.rq.opts.unknown, 0);
        if (f->blksize >= 0)
            cr_assert_eq(p.rq.opts.blksize, (uint64_t)f->blksize, "%s", f->name);
        if (f->tsize >= 0)
            cr_assert_eq(p.rq.opts.tsize, (uint64_t)f->tsize);
        if (f->windowsize >= 0)
            cr_assert_eq(p.rq.opts.windowsize, (uint64_t)f->windowsize);
    }
}

Test(tftp_fixtures, filenames_normalise_relative_to_root)
{
    for (size_t i = 0; i < NFIX; i++) {
        const struct fixture *f = &fixtures[i];
        char out[256];
        size_t n;
        cr_assert_eq(tftp_filename_normalize(f->filename, strlen(f->filename), out, sizeof out, &n),
                     TFTP_OK, "%s", f->name);
        const char *want = f->filename[0] == '/' ? f->filename + 1 : f->filename; /* GRUB */
        cr_assert_str_eq(out, want);
        cr_assert_eq(n, strlen(want));
    }
}

/* Negotiates each real request against a 1500-byte MTU link and window max 16,
 * encodes the OACK and reads it back: exactly the options asked, real tsize. */
Test(tftp_fixtures, negotiate_and_oack_roundtrip)
{
    struct tftp_limits lim = {.blksize_max = 0, .blksize_mtu = tftp_blksize_for_mtu(1500),
                              .window_max = 16};
    for (size_t i = 0; i < NFIX; i++) {
        const struct fixture *f = &fixtures[i];
        uint8_t pkt[512], buf[512];
        size_t n = unhex(f->hex, pkt, sizeof pkt), olen;
        struct tftp_packet p, q;
        struct tftp_negotiated neg;
        cr_assert_eq(tftp_parse(pkt, n, &p), TFTP_OK);
        cr_assert_eq(tftp_negotiate(p.op, &p.rq, &lim, 7654321, &neg), TFTP_OK);
        cr_assert_eq(neg.oack.present, fixture_bits(f), "%s", f->name);
        cr_assert_eq(neg.blksize, (uint32_t)f->blksize, "%s", f->name); /* all <= 1468 */
        cr_assert_eq(neg.windowsize, f->windowsize >= 0 ? (uint32_t)f->windowsize : 1u);
        cr_assert_eq(tftp_encode_oack(buf, sizeof buf, &neg.oack, &olen), TFTP_OK);
        cr_assert_eq(tftp_parse(buf, olen, &q), TFTP_OK);
        cr_assert_eq(q.op, TFTP_OP_OACK);
        cr_assert_eq(q.oack.present, fixture_bits(f));
        if (f->tsize >= 0)
            cr_assert_eq(q.oack.tsize, 7654321);
        if (f->blksize >= 0)
            cr_assert_eq(q.oack.blksize, (uint64_t)f->blksize);
        if (f->windowsize >= 0)
            cr_assert_eq(q.oack.windowsize, (uint64_t)f->windowsize);
    }
}

/* Every prefix of every real request: a prefix is valid only where it ends on the
 * NUL closing the mode or an option value (fewer options), else a named reason. */
Test(tftp_fixtures, every_truncation)
{
    size_t checked = 0;
    for (size_t i = 0; i < NFIX; i++) {
        uint8_t pkt[512];
        size_t n = unhex(fixtures[i].hex, pkt, sizeof pkt);
        for (size_t len = 0; len < n; len++) {
            struct tftp_packet p;
            enum tftp_result r = tftp_parse(pkt, len, &p);
            size_t strings = 0;
            for (size_t j = 2; j < len; j++)
                strings += pkt[j] == 0;
            enum tftp_result want;
            if (len <= 2)
                want = TFTP_ETRUNC;
            else if (pkt[len - 1] != 0)
                want = TFTP_ENONUL;
            else if (strings < 2)
                want = TFTP_ETRUNC; /* filename without mode */
            else if (strings % 2)
                want = TFTP_EOPTION; /* option name without value */
            else
                want = TFTP_OK;
            cr_assert_eq(r, want, "%s len %zu: %s", fixtures[i].name, len, tftp_result_str(r));
            if (r == TFTP_OK) {
                unsigned nopts = (unsigned)(strings - 2) / 2;
                cr_assert_eq((unsigned)__builtin_popcount(p.rq.opts.present), nopts);
            }
            checked++;
        }
    }
    cr_assert_gt(checked, 1000);
}

/* ---------------- malformed and edge-case packets ---------------- */

#define PKT(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

Test(tftp_parse, opcode_and_length)
{
    struct tftp_packet p;
    cr_assert_eq(tftp_parse(NULL, 0, &p), TFTP_ETRUNC);
    cr_assert_eq(tftp_parse(PKT("\x00"), &p), TFTP_ETRUNC);
    cr_assert_eq(tftp_parse(PKT("\x00\x00"), &p), TFTP_EOPCODE);
    cr_assert_eq(tftp_parse(PKT("\x00\x07\x00\x01"), &p), TFTP_EOPCODE);
    cr_assert_eq(tftp_parse(PKT("\xff\xff"), &p), TFTP_EOPCODE);
    cr_assert_eq(tftp_parse(PKT("\x01\x01f\0octet\0"), &p), TFTP_EOPCODE);
    cr_assert_eq(tftp_parse(PKT("\x00\x01"), &p), TFTP_ETRUNC);
    cr_assert_eq(tftp_parse(PKT("\x00\x03\x00"), &p), TFTP_ETRUNC);
    cr_assert_eq(tftp_parse(PKT("\x00\x04\x00"), &p), TFTP_ETRUNC);
    cr_assert_eq(tftp_parse(PKT("\x00\x05\x00"), &p), TFTP_ETRUNC);
}

Test(tftp_parse, request_strings)
{
    struct tftp_packet p;
    cr_assert_eq(tftp_parse(PKT("\x00\x01pxelinux.0"), &p), TFTP_ENONUL);
    cr_assert_eq(tftp_parse(PKT("\x00\x01pxelinux.0\0octet"), &p), TFTP_ENONUL);
    cr_assert_eq(tftp_parse(PKT("\x00\x01pxelinux.0\0"), &p), TFTP_ETRUNC);
    cr_assert_eq(tftp_parse(PKT("\x00\x01\0octet\0"), &p), TFTP_EFILENAME);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0mail\0"), &p), TFTP_EMODE);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0binary\0"), &p), TFTP_EMODE);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0\0"), &p), TFTP_EMODE);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octets\0"), &p), TFTP_EMODE);

    cr_assert_eq(tftp_parse(PKT("\x00\x02up.bin\0OCTET\0"), &p), TFTP_OK);
    cr_assert_eq(p.op, TFTP_OP_WRQ);
    cr_assert_eq(p.rq.mode, TFTP_MODE_OCTET);
    cr_assert_str_eq(p.rq.filename, "up.bin");
    cr_assert_eq(p.rq.opts.present, 0);
    cr_assert_eq(tftp_parse(PKT("\x00\x01menu\0NetASCII\0"), &p), TFTP_OK);
    cr_assert_eq(p.rq.mode, TFTP_MODE_NETASCII);
}

Test(tftp_parse, filename_length_limit)
{
    uint8_t pkt[300];
    struct tftp_packet p;
    for (size_t fl = 254; fl <= 257; fl++) {
        pkt[0] = 0;
        pkt[1] = 1;
        memset(pkt + 2, 'a', fl);
        memcpy(pkt + 2 + fl, "\0octet\0", 7);
        enum tftp_result r = tftp_parse(pkt, 2 + fl + 7, &p);
        cr_assert_eq(r, fl <= 255 ? TFTP_OK : TFTP_EFILENAME, "len %zu", fl);
        if (r == TFTP_OK)
            cr_assert_eq(p.rq.filename_len, fl);
    }
}

Test(tftp_parse, option_list_shape)
{
    struct tftp_packet p;
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octet\0blksize\0"), &p), TFTP_EOPTION);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octet\0blksize\0" "1024\0tsize\0"), &p), TFTP_EOPTION);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octet\0\0" "5\0"), &p), TFTP_EOPTION);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octet\0blksize\0" "1024"), &p), TFTP_ENONUL);
    /* NUL padding after the last pair is tolerated */
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octet\0blksize\0" "1024\0\0\0\0"), &p), TFTP_OK);
    cr_assert_eq(p.rq.opts.present, TFTP_OPT_BLKSIZE);
    cr_assert_eq(p.rq.opts.blksize, 1024);
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octet\0\0"), &p), TFTP_OK);
    cr_assert_eq(p.rq.opts.present, 0);
    /* empty value: the pair is complete, the value is not a number */
    cr_assert_eq(tftp_parse(PKT("\x00\x01" "f\0octet\0tsize\0\0"), &p), TFTP_OK);
    cr_assert_eq(p.rq.opts.present, 0);
    cr_assert_eq(p.rq.opts.malformed, TFTP_OPT_TSIZE);
}

static struct tftp_options opts_of(const uint8_t *pkt, size_t len)
{
    struct tftp_packet p;
    cr_assert_eq(tftp_parse(pkt, len, &p), TFTP_OK);
    return p.rq.opts;
}

Test(tftp_parse, option_values_strict_decimal)
{
    static const char *const bad[] = {"-1", "+1", " 1", "1 ", "1k", "0x10", "1e3", "", "\xc2\xb9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t pkt[64];
        size_t n = (size_t)snprintf((char *)pkt + 2, sizeof pkt - 2, "f%coctet%cblksize%c%s", 0,
                                    0, 0, bad[i]) + 2;
        pkt[0] = 0, pkt[1] = 1, pkt[n++] = 0;
        struct tftp_options o = opts_of(pkt, n);
        cr_assert_eq(o.present, 0, "'%s'", bad[i]);
        cr_assert_eq(o.malformed, TFTP_OPT_BLKSIZE, "'%s'", bad[i]);
    }
    struct tftp_options o = opts_of(PKT("\x00\x01" "f\0octet\0blksize\0" "0512\0tsize\0" "0\0"));
    cr_assert_eq(o.present, TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE);
    cr_assert_eq(o.blksize, 512);
    cr_assert_eq(o.tsize, 0);
    o = opts_of(PKT("\x00\x01" "f\0octet\0tsize\0" "18446744073709551615\0"));
    cr_assert_eq(o.tsize, UINT64_MAX);
    o = opts_of(PKT("\x00\x01" "f\0octet\0tsize\0" "18446744073709551616\0")); /* saturates */
    cr_assert_eq(o.tsize, UINT64_MAX);
    o = opts_of(PKT("\x00\x01" "f\0octet\0blksize\0" "99999999999999999999999999\0"));
    cr_assert_eq(o.blksize, UINT64_MAX);
    cr_assert_eq(o.present, TFTP_OPT_BLKSIZE);
}

Test(tftp_parse, option_names_case_duplicates_unknown)
{
    struct tftp_options o = opts_of(PKT("\x00\x01" "f\0octet\0BLKSIZE\0" "1468\0WindowSize\0" "4\0"
                                        "TSize\0" "0\0TIMEOUT\0" "3\0"));
    cr_assert_eq(o.present, TFTP_OPT_BLKSIZE | TFTP_OPT_WINDOWSIZE | TFTP_OPT_TSIZE | TFTP_OPT_TIMEOUT);
    cr_assert_eq(o.blksize, 1468);
    cr_assert_eq(o.windowsize, 4);
    cr_assert_eq(o.timeout, 3);
    o = opts_of(PKT("\x00\x01" "f\0octet\0blksize\0" "1024\0blksize\0" "8\0BlkSize\0" "1468\0"));
    cr_assert_eq(o.blksize, 1024, "first wins");
    /* a malformed first occurrence still decides: the option is ignored */
    o = opts_of(PKT("\x00\x01" "f\0octet\0blksize\0-1\0blksize\0" "1024\0"));
    cr_assert_eq(o.present, 0);
    cr_assert_eq(o.malformed, TFTP_OPT_BLKSIZE);
    o = opts_of(PKT("\x00\x01" "f\0octet\0multicast\0\0rollover\0" "0\0blksize\0" "1432\0blksizes\0" "9\0"));
    cr_assert_eq(o.unknown, 3);
    cr_assert_eq(o.present, TFTP_OPT_BLKSIZE);
    cr_assert_eq(o.blksize, 1432);
}

Test(tftp_parse, data_ack_error_oack)
{
    struct tftp_packet p;
    const uint8_t data[] = {0, 3, 0xff, 0xfe, 'a', 'b', 'c'};
    cr_assert_eq(tftp_parse(data, sizeof data, &p), TFTP_OK);
    cr_assert_eq(p.op, TFTP_OP_DATA);
    cr_assert_eq(p.data.block, 0xfffe);
    cr_assert_eq(p.data.len, 3);
    cr_assert_eq(p.data.data, data + 4);
    cr_assert_eq(tftp_parse(PKT("\x00\x03\x00\x07"), &p), TFTP_OK);
    cr_assert_eq(p.data.len, 0);
    cr_assert_eq(p.data.block, 7);

    cr_assert_eq(tftp_parse(PKT("\x00\x04\x12\x34"), &p), TFTP_OK);
    cr_assert_eq(p.op, TFTP_OP_ACK);
    cr_assert_eq(p.ack.block, 0x1234);
    cr_assert_eq(tftp_parse(PKT("\x00\x04\x00\x00\x00\x00"), &p), TFTP_OK); /* extra ignored */
    cr_assert_eq(p.ack.block, 0);

    cr_assert_eq(tftp_parse(PKT("\x00\x05\x00\x08" "User aborted\0"), &p), TFTP_OK);
    cr_assert_eq(p.op, TFTP_OP_ERROR);
    cr_assert_eq(p.error.code, TFTP_ERR_OPTION);
    cr_assert_eq(p.error.msg_len, 12);
    cr_assert_eq(memcmp(p.error.msg, "User aborted", 12), 0);
    cr_assert_eq(tftp_parse(PKT("\x00\x05\x00\x08" "abc"), &p), TFTP_OK); /* no NUL: still an abort */
    cr_assert_eq(p.error.msg_len, 3);
    cr_assert_eq(tftp_parse(PKT("\x00\x05\x00\x01"), &p), TFTP_OK);
    cr_assert_eq(p.error.code, 1);
    cr_assert_eq(p.error.msg_len, 0);

    cr_assert_eq(tftp_parse(PKT("\x00\x06" "blksize\0" "1468\0tsize\0" "99\0"), &p), TFTP_OK);
    cr_assert_eq(p.op, TFTP_OP_OACK);
    cr_assert_eq(p.oack.present, TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE);
    cr_assert_eq(p.oack.tsize, 99);
    cr_assert_eq(tftp_parse(PKT("\x00\x06"), &p), TFTP_EOPTION);
    cr_assert_eq(tftp_parse(PKT("\x00\x06" "blksize\0" "1468"), &p), TFTP_ENONUL);
    cr_assert_eq(tftp_parse(PKT("\x00\x06" "blksize\0"), &p), TFTP_EOPTION);
}

/* ---------------- encoders ---------------- */

Test(tftp_encode, data_header_and_ack)
{
    uint8_t b[8];
    size_t n = 0;
    cr_assert_eq(tftp_encode_data_header(b, sizeof b, 0xabcd, &n), TFTP_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(b, "\x00\x03\xab\xcd", 4), 0);
    cr_assert_eq(tftp_encode_ack(b, sizeof b, 1, &n), TFTP_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(b, "\x00\x04\x00\x01", 4), 0);
    cr_assert_eq(tftp_encode_ack(b, 3, 1, &n), TFTP_ENOSPACE);
    cr_assert_eq(tftp_encode_data_header(b, 3, 1, &n), TFTP_ENOSPACE);
}

Test(tftp_encode, error)
{
    uint8_t b[64];
    size_t n;
    cr_assert_eq(tftp_encode_error(b, sizeof b, TFTP_ERR_NOT_FOUND, NULL, &n), TFTP_OK);
    cr_assert_eq(n, 4 + strlen("File not found") + 1);
    cr_assert_eq(memcmp(b, "\x00\x05\x00\x01" "File not found\0", n), 0);
    cr_assert_eq(tftp_encode_error(b, sizeof b, TFTP_ERR_ACCESS, "no", &n), TFTP_OK);
    cr_assert_eq(n, 7);
    cr_assert_eq(memcmp(b, "\x00\x05\x00\x02no\0", 7), 0);
    /* truncated to fit, still NUL-terminated and parseable */
    cr_assert_eq(tftp_encode_error(b, 10, TFTP_ERR_ACCESS, "Access violation", &n), TFTP_OK);
    cr_assert_eq(n, 10);
    cr_assert_eq(memcmp(b, "\x00\x05\x00\x02" "Acces\0", 10), 0);
    cr_assert_eq(tftp_encode_error(b, 5, 0, "x", &n), TFTP_OK);
    cr_assert_eq(n, 5);
    cr_assert_eq(tftp_encode_error(b, 4, 0, "x", &n), TFTP_ENOSPACE);
    cr_assert_str_eq(tftp_error_text(TFTP_ERR_OPTION), "Option negotiation failed");
    cr_assert_str_eq(tftp_error_text(999), "Undefined error");
}

Test(tftp_encode, oack_exact_bytes_and_limits)
{
    uint8_t b[128];
    size_t n;
    struct tftp_options o = {.present = TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE | TFTP_OPT_WINDOWSIZE,
                             .blksize = 1468, .tsize = 0, .windowsize = 4, .timeout = 77};
    static const char want[] = "\x00\x06" "blksize\0" "1468\0tsize\0" "0\0windowsize\0" "4\0";
    cr_assert_eq(tftp_encode_oack(b, sizeof b, &o, &n), TFTP_OK);
    cr_assert_eq(n, sizeof want - 1);
    cr_assert_eq(memcmp(b, want, n), 0);
    for (size_t cap = 0; cap < n; cap++)
        cr_assert_eq(tftp_encode_oack(b, cap, &o, &n), TFTP_ENOSPACE, "cap %zu", cap);
    struct tftp_options none = {.blksize = 1024};
    cr_assert_eq(tftp_encode_oack(b, sizeof b, &none, &n), TFTP_EINVAL, "never an empty OACK");
    o.present = TFTP_OPT_TIMEOUT | TFTP_OPT_TSIZE;
    o.tsize = UINT64_MAX;
    cr_assert_eq(tftp_encode_oack(b, sizeof b, &o, &n), TFTP_OK);
    static const char want2[] = "\x00\x06tsize\0" "18446744073709551615\0timeout\0" "77\0";
    cr_assert_eq(n, sizeof want2 - 1);
    cr_assert_eq(memcmp(b, want2, n), 0);
}

Test(tftp_encode, request_roundtrip)
{
    uint8_t b[600];
    size_t n;
    struct tftp_options o = {.present = TFTP_OPT_BLKSIZE | TFTP_OPT_WINDOWSIZE, .blksize = 1432,
                             .windowsize = 16};
    cr_assert_eq(tftp_encode_request(b, sizeof b, TFTP_OP_RRQ, "boot/ipxe.efi",
                                     TFTP_MODE_NETASCII, &o, &n), TFTP_OK);
    struct tftp_packet p;
    cr_assert_eq(tftp_parse(b, n, &p), TFTP_OK);
    cr_assert_eq(p.op, TFTP_OP_RRQ);
    cr_assert_str_eq(p.rq.filename, "boot/ipxe.efi");
    cr_assert_eq(p.rq.mode, TFTP_MODE_NETASCII);
    cr_assert_eq(p.rq.opts.present, o.present);
    cr_assert_eq(p.rq.opts.blksize, 1432);
    cr_assert_eq(p.rq.opts.windowsize, 16);
    cr_assert_eq(tftp_encode_request(b, sizeof b, TFTP_OP_WRQ, "x", TFTP_MODE_OCTET, NULL, &n), TFTP_OK);
    cr_assert_eq(n, 10);
    cr_assert_eq(memcmp(b, "\x00\x02x\0octet\0", 10), 0);
    cr_assert_eq(tftp_encode_request(b, 9, TFTP_OP_WRQ, "x", TFTP_MODE_OCTET, NULL, &n), TFTP_ENOSPACE);
    cr_assert_eq(tftp_encode_request(b, sizeof b, TFTP_OP_ACK, "x", TFTP_MODE_OCTET, NULL, &n), TFTP_EINVAL);
    cr_assert_eq(tftp_encode_request(b, sizeof b, TFTP_OP_RRQ, "", TFTP_MODE_OCTET, NULL, &n), TFTP_EFILENAME);
    char longname[300];
    memset(longname, 'a', 256);
    longname[256] = 0;
    cr_assert_eq(tftp_encode_request(b, sizeof b, TFTP_OP_RRQ, longname, TFTP_MODE_OCTET, NULL, &n),
                 TFTP_EFILENAME);
}

/* ---------------- file names ---------------- */

Test(tftp_filename, normalise)
{
    static const struct {
        const char *in;
        enum tftp_result r;
        const char *out;
    } cases[] = {
        {"pxelinux.0", TFTP_OK, "pxelinux.0"},
        {"/debian-installer/amd64/linux", TFTP_OK, "debian-installer/amd64/linux"},
        {"///a//b/./c", TFTP_OK, "a/b/c"},
        {"\\boot\\x64\\wdsmgfw.efi", TFTP_OK, "boot/x64/wdsmgfw.efi"},
        {"pxelinux.cfg\\01-52-54-00-77-00-01", TFTP_OK, "pxelinux.cfg/01-52-54-00-77-00-01"},
        {"grub/grub.cfg-52:54:00:77:00:01", TFTP_OK, "grub/grub.cfg-52:54:00:77:00:01"},
        {"..foo/bar..", TFTP_OK, "..foo/bar.."},
        {"...", TFTP_OK, "..."},
        {"./x", TFTP_OK, "x"},
        {"..", TFTP_ETRAVERSAL, NULL},
        {"../etc/passwd", TFTP_ETRAVERSAL, NULL},
        {"/a/../../etc/shadow", TFTP_ETRAVERSAL, NULL},
        {"a\\..\\..\\b", TFTP_ETRAVERSAL, NULL},
        {"a/..", TFTP_ETRAVERSAL, NULL},
        {"/", TFTP_EFILENAME, NULL},
        {"./.", TFTP_EFILENAME, NULL},
        {"dir/", TFTP_EFILENAME, NULL},
        {"dir\\", TFTP_EFILENAME, NULL},
        {"a\nb", TFTP_EFILENAME, NULL},
        {"a\x7f", TFTP_EFILENAME, NULL},
        {"", TFTP_EFILENAME, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256];
        size_t n = 0;
        enum tftp_result r = tftp_filename_normalize(cases[i].in, strlen(cases[i].in), out, sizeof out, &n);
        cr_assert_eq(r, cases[i].r, "'%s': %s", cases[i].in, tftp_result_str(r));
        if (r == TFTP_OK) {
            cr_assert_str_eq(out, cases[i].out);
            cr_assert_eq(n, strlen(cases[i].out));
        }
    }
    char out[300], in[300];
    size_t n;
    cr_assert_eq(tftp_filename_normalize("a\0b", 3, out, sizeof out, &n), TFTP_EFILENAME, "NUL");
    memset(in, 'x', 256);
    cr_assert_eq(tftp_filename_normalize(in, 255, out, sizeof out, &n), TFTP_OK);
    cr_assert_eq(n, 255);
    cr_assert_eq(tftp_filename_normalize(in, 256, out, sizeof out, &n), TFTP_EFILENAME);
    cr_assert_eq(tftp_filename_normalize("abcdef", 6, out, 6, &n), TFTP_ENOSPACE);
    cr_assert_eq(tftp_filename_normalize("abcdef", 6, out, 7, &n), TFTP_OK);
}

/* ---------------- negotiation (issue 4 cases) ---------------- */

static struct tftp_request req(const char *pkt, size_t len)
{
    struct tftp_packet p;
    cr_assert_eq(tftp_parse((const uint8_t *)pkt, len, &p), TFTP_OK);
    return p.rq;
}
#define REQ(s) req((s), sizeof(s) - 1)

static const struct tftp_limits open_limits = {.blksize_max = 0, .blksize_mtu = 0, .window_max = 64};

Test(tftp_negotiate, blksize_caps)
{
    struct tftp_negotiated n;
    struct tftp_request rq = REQ("\x00\x01" "f\0octet\0blksize\0" "65464\0");
    cr_assert_eq(tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 1, &n), TFTP_OK);
    cr_assert_eq(n.blksize, 65464);
    cr_assert_eq(n.oack.blksize, 65464);
    struct tftp_limits lim = {.blksize_max = 8192, .window_max = 64};
    tftp_negotiate(TFTP_OP_RRQ, &rq, &lim, 1, &n);
    cr_assert_eq(n.blksize, 8192, "server max");
    lim.blksize_mtu = tftp_blksize_for_mtu(1500);
    tftp_negotiate(TFTP_OP_RRQ, &rq, &lim, 1, &n);
    cr_assert_eq(n.blksize, 1468, "MTU cap");
    cr_assert_eq(n.oack.present, TFTP_OPT_BLKSIZE);

    rq = REQ("\x00\x01" "f\0octet\0blksize\0" "99999999\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 1, &n);
    cr_assert_eq(n.blksize, 65464);
    rq = REQ("\x00\x01" "f\0octet\0blksize\0" "1\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 1, &n);
    cr_assert_eq(n.blksize, 8, "1 clamps to 8");
    cr_assert_eq(n.oack.blksize, 8);
    rq = REQ("\x00\x01" "f\0octet\0blksize\0" "0\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 1, &n);
    cr_assert_eq(n.blksize, 8);
    rq = REQ("\x00\x01" "f\0octet\0blksize\0" "512\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 1, &n);
    cr_assert_eq(n.blksize, 512);
    cr_assert_eq(n.oack.present, TFTP_OPT_BLKSIZE, "512 asked is echoed");
}

Test(tftp_negotiate, blksize_not_a_number_is_ignored)
{
    struct tftp_negotiated n;
    struct tftp_request rq = REQ("\x00\x01" "f\0octet\0blksize\0-1\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 1, &n);
    cr_assert_eq(n.oack.present, 0, "no OACK: start with DATA 1");
    cr_assert_eq(n.blksize, 512);
    rq = REQ("\x00\x01" "f\0octet\0blksize\0garbage\0tsize\0" "0\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 4242, &n);
    cr_assert_eq(n.oack.present, TFTP_OPT_TSIZE);
    cr_assert_eq(n.oack.tsize, 4242);
    cr_assert_eq(n.blksize, 512);
}

Test(tftp_negotiate, windowsize_caps)
{
    struct tftp_negotiated n;
    struct tftp_request rq = REQ("\x00\x01" "f\0octet\0windowsize\0" "64\0");
    struct tftp_limits lim = {.window_max = 16};
    tftp_negotiate(TFTP_OP_RRQ, &rq, &lim, 1, &n);
    cr_assert_eq(n.windowsize, 16);
    cr_assert_eq(n.oack.windowsize, 16);
    cr_assert_eq(n.oack.present, TFTP_OPT_WINDOWSIZE);
    lim.window_max = 0;
    tftp_negotiate(TFTP_OP_RRQ, &rq, &lim, 1, &n);
    cr_assert_eq(n.windowsize, 1, "window_max 0 means lock-step");
    lim.window_max = 100000;
    rq = REQ("\x00\x01" "f\0octet\0windowsize\0" "65535\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &lim, 1, &n);
    cr_assert_eq(n.windowsize, TFTP_WINDOWSIZE_MAX);
    rq = REQ("\x00\x01" "f\0octet\0windowsize\0" "0\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &lim, 1, &n);
    cr_assert_eq(n.windowsize, 1);
    cr_assert_eq(n.oack.windowsize, 1);
}

Test(tftp_negotiate, tsize_is_the_real_size)
{
    struct tftp_negotiated n;
    struct tftp_request rq = REQ("\x00\x01pxelinux.cfg/01-aa\0octet\0tsize\0" "0\0");
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 731, &n); /* a virtual file's size */
    cr_assert_eq(n.oack.present, TFTP_OPT_TSIZE);
    cr_assert_eq(n.oack.tsize, 731);
    rq = REQ("\x00\x01" "f\0octet\0tsize\0" "12345\0"); /* a wrong client guess */
    tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 0, &n);
    cr_assert_eq(n.oack.tsize, 0);
    rq = REQ("\x00\x02up\0octet\0tsize\0" "5000\0"); /* WRQ: the client's size echoed */
    tftp_negotiate(TFTP_OP_WRQ, &rq, &open_limits, 0, &n);
    cr_assert_eq(n.oack.tsize, 5000);
    cr_assert_eq(tftp_negotiate(TFTP_OP_DATA, &rq, &open_limits, 0, &n), TFTP_EINVAL);
}

Test(tftp_negotiate, timeout_range)
{
    struct tftp_negotiated n;
    static const struct {
        const char *v;
        bool ok;
    } cases[] = {{"0", false}, {"1", true}, {"5", true}, {"255", true}, {"256", false}, {"-3", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t pkt[64];
        size_t len = (size_t)snprintf((char *)pkt + 2, sizeof pkt - 2, "f%coctet%ctimeout%c%s", 0, 0,
                                      0, cases[i].v) + 3;
        pkt[0] = 0, pkt[1] = 1, pkt[len - 1] = 0;
        struct tftp_request rq = req((const char *)pkt, len);
        tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 1, &n);
        cr_assert_eq(n.oack.present, cases[i].ok ? TFTP_OPT_TIMEOUT : 0u, "timeout %s", cases[i].v);
        cr_assert_eq(n.timeout_s, cases[i].ok ? (uint32_t)strtoul(cases[i].v, NULL, 10) : 0u);
    }
}

/* Whatever subset the client asks (plus unknown ones), the OACK holds exactly that
 * subset, each once: PXELINUX aborts on an option it did not ask for. */
Test(tftp_negotiate, never_an_option_not_requested)
{
    static const char *const pairs[4][2] = {
        {"blksize", "1408"}, {"tsize", "0"}, {"timeout", "3"}, {"windowsize", "8"}};
    for (unsigned set = 0; set < 16; set++) {
        uint8_t pkt[256], out[256];
        size_t len = 2, olen;
        pkt[0] = 0, pkt[1] = 1;
        memcpy(pkt + len, "f\0octet\0multicast\0\0", 19);
        len += 19;
        for (unsigned i = 0; i < 4; i++) {
            if (!(set & (1u << i)))
                continue;
            for (unsigned j = 0; j < 2; j++) {
                size_t l = strlen(pairs[i][j]) + 1;
                memcpy(pkt + len, pairs[i][j], l);
                len += l;
            }
        }
        struct tftp_request rq = req((const char *)pkt, len);
        struct tftp_negotiated n;
        tftp_negotiate(TFTP_OP_RRQ, &rq, &open_limits, 99, &n);
        cr_assert_eq(n.oack.present, set, "set %u", set);
        if (set == 0) {
            cr_assert_eq(tftp_encode_oack(out, sizeof out, &n.oack, &olen), TFTP_EINVAL);
            cr_assert_eq(n.blksize, 512);
            cr_assert_eq(n.windowsize, 1);
            continue;
        }
        cr_assert_eq(tftp_encode_oack(out, sizeof out, &n.oack, &olen), TFTP_OK);
        struct tftp_packet q;
        cr_assert_eq(tftp_parse(out, olen, &q), TFTP_OK);
        cr_assert_eq(q.oack.present, set);
        cr_assert_eq(q.oack.unknown, 0);
        /* each name exactly once */
        unsigned names = 0;
        for (size_t k = 2; k < olen; k++)
            names += out[k] == 0;
        cr_assert_eq(names, 2u * (unsigned)__builtin_popcount(set));
    }
}

/* OVMF's size probe asks tsize 0, blksize 1468, windowsize 4: all three come back.
 * (Its ERROR 8 after the OACK is handled by the sender: test_tftp_send.c.) */
Test(tftp_negotiate, ovmf_probe_request)
{
    struct tftp_request rq =
        REQ("\x00\x01" "debian-installer/amd64/bootnetx64.efi\0octet\0tsize\0" "0\0blksize\0"
            "1468\0windowsize\0" "4\0");
    struct tftp_limits lim = {.blksize_mtu = tftp_blksize_for_mtu(1500), .window_max = 16};
    struct tftp_negotiated n;
    tftp_negotiate(TFTP_OP_RRQ, &rq, &lim, 1007584, &n);
    cr_assert_eq(n.oack.present, TFTP_OPT_TSIZE | TFTP_OPT_BLKSIZE | TFTP_OPT_WINDOWSIZE);
    cr_assert_eq(n.oack.tsize, 1007584);
    cr_assert_eq(n.blksize, 1468);
    cr_assert_eq(n.windowsize, 4);
}

Test(tftp_negotiate, blksize_for_mtu)
{
    cr_assert_eq(tftp_blksize_for_mtu(1500), 1468);
    cr_assert_eq(tftp_blksize_for_mtu(9000), 8968);
    cr_assert_eq(tftp_blksize_for_mtu(576), 544);
    cr_assert_eq(tftp_blksize_for_mtu(20), 8);
    cr_assert_eq(tftp_blksize_for_mtu(100000), 65464);
}

/* ---------------- netascii ---------------- */

Test(tftp_netascii, encode_simple)
{
    static const uint8_t in[] = "a\nb\rc\r\n";
    uint8_t out[32];
    size_t used;
    struct tftp_netascii_enc st;
    tftp_netascii_enc_init(&st);
    size_t n = tftp_netascii_encode(&st, in, 7, out, sizeof out, &used);
    cr_assert_eq(used, 7);
    cr_assert_eq(n, 11);
    cr_assert_eq(memcmp(out, "a\r\nb\r\0c\r\0\r\n", 11), 0);
    cr_assert_eq(tftp_netascii_size(in, 7), 11);
    cr_assert(tftp_netascii_enc_idle(&st));
    cr_assert_eq(st.in_pos, 7);
    cr_assert_eq(st.out_pos, 11);
}

Test(tftp_netascii, pair_split_at_block_end)
{
    static const uint8_t in[] = "ab\ncd";
    uint8_t out[8];
    size_t used;
    struct tftp_netascii_enc st;
    tftp_netascii_enc_init(&st);
    cr_assert_eq(tftp_netascii_encode(&st, in, 5, out, 3, &used), 3); /* "ab\r" */
    cr_assert_eq(used, 3);
    cr_assert_eq(memcmp(out, "ab\r", 3), 0);
    cr_assert_not(tftp_netascii_enc_idle(&st));
    cr_assert_eq(tftp_netascii_encode(&st, in + used, 2, out, 3, &used), 3); /* "\ncd" */
    cr_assert_eq(memcmp(out, "\ncd", 3), 0);
    cr_assert(tftp_netascii_enc_idle(&st));
}

Test(tftp_netascii, decode_lenient)
{
    struct tftp_netascii_dec d;
    uint8_t out[16];
    tftp_netascii_dec_init(&d);
    size_t n = tftp_netascii_decode(&d, (const uint8_t *)"x\r\ny\r\0z\rq\r", 10, out);
    cr_assert_eq(n, 7);
    cr_assert_eq(memcmp(out, "x\ny\rz\rq", 7), 0);
    cr_assert_eq(tftp_netascii_decode_finish(&d, out), 1);
    cr_assert_eq(out[0], '\r');
    cr_assert_eq(tftp_netascii_decode_finish(&d, out), 0);
}

/* One netascii DATA block of `bs` bytes from the file, feeding input in chunks of
 * `chunk` bytes (as from a mapped window of the file). */
static size_t na_block(struct tftp_netascii_enc *st, const uint8_t *file, size_t flen, size_t chunk,
                       uint8_t *out, size_t bs)
{
    size_t o = 0;
    while (o < bs && !(st->in_pos == flen && tftp_netascii_enc_idle(st))) {
        size_t left = flen - (size_t)st->in_pos, used;
        size_t give = left < chunk ? left : chunk;
        o += tftp_netascii_encode(st, file + st->in_pos, give, out + o, bs - o, &used);
    }
    return o;
}

Test(tftp_netascii, roundtrip_across_blocks)
{
    uint8_t file[700];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof file; i++) {
        x = x * 1103515245u + 12345u;
        unsigned r = (x >> 16) % 8;
        file[i] = r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? 0 : (uint8_t)('a' + (x >> 20) % 26);
    }
    memcpy(file, "\r\n\r\r\n\n", 6);
    file[sizeof file - 1] = '\r'; /* ends with CR: its NUL must come through */
    uint64_t wire_size = tftp_netascii_size(file, 300) + tftp_netascii_size(file + 300, 400);
    cr_assert_eq(wire_size, tftp_netascii_size(file, sizeof file), "size is additive");
    for (size_t bs = 1; bs <= 17; bs++) {
        for (size_t chunk = 1; chunk <= 7; chunk += 3) {
            struct tftp_netascii_enc st;
            struct tftp_netascii_dec dec;
            tftp_netascii_enc_init(&st);
            tftp_netascii_dec_init(&dec);
            uint8_t back[800], blk[32], again[32];
            size_t blen = 0, blocks = 0;
            uint64_t total = 0;
            for (;;) {
                struct tftp_netascii_enc checkpoint = st; /* what a resend starts from */
                size_t n = na_block(&st, file, sizeof file, chunk, blk, bs);
                struct tftp_netascii_enc redo = checkpoint;
                cr_assert_eq(na_block(&redo, file, sizeof file, chunk, again, bs), n);
                cr_assert_eq(memcmp(blk, again, n), 0, "resend from a checkpoint is identical");
                blocks++;
                total += n;
                blen += tftp_netascii_decode(&dec, blk, n, back + blen);
                if (n < bs)
                    break; /* the short (maybe empty) block ends the transfer */
            }
            blen += tftp_netascii_decode_finish(&dec, back + blen);
            cr_assert_eq(total, wire_size, "bs %zu", bs);
            cr_assert_eq(blocks, wire_size / bs + 1, "bs %zu: exact multiple ends with 0 bytes", bs);
            cr_assert_eq(blen, sizeof file);
            cr_assert_eq(memcmp(back, file, sizeof file), 0, "bs %zu chunk %zu", bs, chunk);
        }
    }
}
