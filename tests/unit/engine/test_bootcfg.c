/* Criterion suite for engine/bootcfg: template variables and their order,
 * the PXELINUX, GRUB and iPXE files for a host before and after install, the
 * generic menus, the kickstart with the install-once callback, and the
 * loader's configuration names (PXELINUX search order, GRUB names). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/bootcfg.h"

static char dir[64], err[512];
static struct profile_set *ps;
static struct inventory *inv;
static const struct bootcfg_server srv = { .addr = 0x0a000001, .http_port = 8080, .pxelinux_ui = false, .timeout_s = 3 };

static void put(const char *name, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    strcpy(dir, "/tmp/test_bootcfg.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    put("debian.conf", "label = Debian 12\n"
                       "kernel = debian-installer/amd64/linux\n"
                       "initrd = debian-installer/amd64/initrd.gz\n"
                       "append = auto=true priority=critical url={{base_url}}/preseed/{{mac}}.cfg hostname={{hostname}} --- quiet\n"
                       "kickstart = debian.ks\n");
    put("debian.ks", "d-i netcfg/get_hostname string {{hostname}}\n"
                     "{{#if ip}}\n"
                     "d-i netcfg/get_ipaddress string {{ip}}\n"
                     "d-i netcfg/get_netmask string {{netmask}}\n"
                     "d-i netcfg/get_gateway string {{gateway}}\n"
                     "d-i netcfg/get_nameservers string {{dns_all}}\n"
                     "{{else}}\n"
                     "# dhcp\n"
                     "{{/if}}\n"
                     "d-i partman-auto/disk string /dev/{{disk|sda}}\n"
                     "d-i preseed/late_command string curl -fsS -X POST '{{callback_url}}'\n");
    put("live.conf", "label = Rescue 'live'\nkernel = live/vmlinuz\nappend = boot=live {{rack}}\nlocal_after_install = no\n");
    struct profile_set *s = NULL;
    int rc = profile_set_load(dir, &s, NULL, NULL);
    cr_assert_eq(rc, 0);
    ps = s;
    const char *csv = "mac,hostname,ip,profile,rack,disk,gateway\n"
                      "52:54:00:12:34:56,node1,10.0.0.5,debian,r01,nvme0n1,\n"
                      "52:54:00:12:34:57,node2,,debian,r02,,\n"
                      "52:54:00:12:34:58,live1,10.0.0.7,live,r03,,10.0.0.254\n";
    cr_assert_eq(inventory_parse("hosts.csv", csv, strlen(csv), &inv, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    profile_set_free(ps);
    inventory_free(inv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(bootcfg, .init = setup, .fini = teardown);

static struct bootcfg_host host(const char *name, bool installed)
{
    const struct inv_host *ih = inventory_find_hostname(inv, name);
    cr_assert_not_null(ih);
    struct bootcfg_host h = {
        .host = ih,
        .profile = profile_find(ps, ih->profile),
        .installed = installed,
        .ip = ih->ip,
        .token = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        .net = { .netmask = 0xffffff00, .prefix = 24, .gateway = 0x0a000001, .dns = { 0x0a000002, 0x08080808 },
                 .ndns = 2, .domain = "lab.example" },
    };
    return h;
}

static const char *var(struct bootcfg_vars *v, const char *name)
{
    return bootcfg_var(v, name, strlen(name));
}

Test(bootcfg, variables)
{
    struct bootcfg_host h = host("node1", false);
    struct bootcfg_vars v;
    bootcfg_vars_init(&v, &srv, &h);
    cr_expect_str_eq(var(&v, "hostname"), "node1");
    cr_expect_str_eq(var(&v, "ip"), "10.0.0.5");
    cr_expect_str_eq(var(&v, "mac"), "52:54:00:12:34:56");
    cr_expect_str_eq(var(&v, "mac_dashes"), "52-54-00-12-34-56");
    cr_expect_str_eq(var(&v, "server"), "10.0.0.1");
    cr_expect_str_eq(var(&v, "http_port"), "8080");
    cr_expect_str_eq(var(&v, "base_url"), "http://10.0.0.1:8080");
    cr_expect_str_eq(var(&v, "profile"), "debian");
    cr_expect_str_eq(var(&v, "label"), "Debian 12");
    cr_expect_str_eq(var(&v, "netmask"), "255.255.255.0");
    cr_expect_str_eq(var(&v, "prefix"), "24");
    cr_expect_str_eq(var(&v, "dns"), "10.0.0.2");
    cr_expect_str_eq(var(&v, "dns_all"), "10.0.0.2 8.8.8.8");
    cr_expect_str_eq(var(&v, "domain"), "lab.example");
    cr_expect_str_eq(var(&v, "rack"), "r01");
    cr_expect_str_eq(var(&v, "disk"), "nvme0n1");
    cr_expect_str_eq(var(&v, "callback_url"), "http://10.0.0.1:8080/api/hosts/52:54:00:12:34:56/installed?token="
                                              "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    /* an empty cell counts as undefined: the subnet's router shows through */
    cr_expect_str_eq(var(&v, "gateway"), "10.0.0.1");
    cr_expect_null(var(&v, "role"));
    h = host("live1", false);
    bootcfg_vars_init(&v, &srv, &h);
    cr_expect_str_eq(var(&v, "gateway"), "10.0.0.254", "inventory column overrides the subnet's router");
    h = host("node2", false);
    h.net.gateway = 0;
    bootcfg_vars_init(&v, &srv, &h);
    cr_expect_null(var(&v, "ip"), "pool host: no ip");
    h.token = NULL;
    bootcfg_vars_init(&v, &srv, &h);
    cr_expect_null(var(&v, "token"));
    cr_expect_null(var(&v, "callback_url"));
}

static char *render(int (*fn)(const struct bootcfg_server *, const struct bootcfg_host *, struct template_buf *, char *,
                              size_t),
                    const struct bootcfg_host *h)
{
    struct template_buf b = { 0 };
    int rc = fn(&srv, h, &b, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return b.data;
}

Test(bootcfg, pxelinux_host)
{
    struct bootcfg_host h = host("node1", false);
    char *s = render(bootcfg_pxelinux_host, &h);
    cr_expect_str_eq(s, "# bootstorm: node1 52:54:00:12:34:56 profile debian\n"
                        "PROMPT 0\n"
                        "TIMEOUT 30\n"
                        "DEFAULT install\n"
                        "MENU TITLE node1 (10.0.0.5)\n"
                        "LABEL install\n"
                        "  MENU LABEL Install Debian 12 on node1\n"
                        "  KERNEL debian-installer/amd64/linux\n"
                        "  INITRD debian-installer/amd64/initrd.gz\n"
                        "  APPEND auto=true priority=critical url=http://10.0.0.1:8080/preseed/52:54:00:12:34:56.cfg "
                        "hostname=node1 --- quiet\n"
                        "  IPAPPEND 2\n"
                        "LABEL local\n"
                        "  MENU LABEL Boot from local disk\n"
                        "  LOCALBOOT 0\n");
    free(s);
    h.installed = true;
    s = render(bootcfg_pxelinux_host, &h);
    cr_expect(strstr(s, "DEFAULT local\n"), "%s", s);
    cr_expect(strstr(s, "(installed)"));
    cr_expect(strstr(s, "LABEL install\n"), "the install entry stays, it is only no longer the default");
    free(s);
    /* local_after_install = no: installed changes nothing */
    h = host("live1", true);
    s = render(bootcfg_pxelinux_host, &h);
    cr_expect(strstr(s, "DEFAULT install\n"), "%s", s);
    cr_expect(strstr(s, "  APPEND boot=live r03\n"), "%s", s);
    cr_expect_null(strstr(s, "INITRD"));
    free(s);
}

Test(bootcfg, pxelinux_ui_and_no_profile)
{
    struct bootcfg_server ui = srv;
    ui.pxelinux_ui = true;
    struct bootcfg_host h = host("node1", false);
    h.profile = NULL;
    struct template_buf b = { 0 };
    cr_assert_eq(bootcfg_pxelinux_host(&ui, &h, &b, err, sizeof err), 0);
    cr_expect_str_eq(b.data, "# bootstorm: node1 52:54:00:12:34:56 profile (none)\n"
                             "UI menu.c32\nPROMPT 0\nTIMEOUT 30\nDEFAULT local\nMENU TITLE node1 (10.0.0.5)\n"
                             "LABEL local\n  MENU LABEL Boot from local disk\n  LOCALBOOT 0\n");
    template_buf_free(&b);
}

Test(bootcfg, pxelinux_generic_menu)
{
    struct template_buf b = { 0 };
    int rc = bootcfg_pxelinux_menu(&srv, ps, &b, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_str_eq(b.data, "# bootstorm: generic menu, machines not in the inventory\n"
                             "PROMPT 1\nTIMEOUT 150\nDEFAULT local\nMENU TITLE bootstorm\n"
                             "LABEL debian\n  MENU LABEL Debian 12\n  KERNEL debian-installer/amd64/linux\n"
                             "  INITRD debian-installer/amd64/initrd.gz\n"
                             "  APPEND auto=true priority=critical url=http://10.0.0.1:8080/preseed/.cfg hostname= --- quiet\n"
                             "  IPAPPEND 2\n"
                             "LABEL live\n  MENU LABEL Rescue 'live'\n  KERNEL live/vmlinuz\n  APPEND boot=live \n  IPAPPEND 2\n"
                             "LABEL local\n  MENU LABEL Boot from local disk\n  LOCALBOOT 0\n");
    template_buf_free(&b);
}

Test(bootcfg, grub_host_and_menu)
{
    struct bootcfg_host h = host("node1", false);
    char *s = render(bootcfg_grub_host, &h);
    cr_expect_str_eq(s, "# bootstorm: node1 52:54:00:12:34:56 profile debian\n"
                        "set timeout=3\n"
                        "set default=install\n"
                        "menuentry 'Install Debian 12 on node1' --id install {\n"
                        "    linux /debian-installer/amd64/linux auto=true priority=critical "
                        "url=http://10.0.0.1:8080/preseed/52:54:00:12:34:56.cfg hostname=node1 --- quiet\n"
                        "    initrd /debian-installer/amd64/initrd.gz\n"
                        "}\n"
                        "menuentry 'Boot from local disk' --id local {\n"
                        "    insmod part_gpt\n"
                        "    insmod part_msdos\n"
                        "    insmod fat\n"
                        "    insmod chain\n"
                        "    for f in /EFI/debian/shimx64.efi /EFI/ubuntu/shimx64.efi /EFI/redhat/shimx64.efi "
                        "/EFI/centos/shimx64.efi /EFI/rocky/shimx64.efi /EFI/almalinux/shimx64.efi "
                        "/EFI/BOOT/BOOTX64.EFI; do\n"
                        "        if search --no-floppy --set=root --file $f; then chainloader $f; boot; fi\n"
                        "    done\n"
                        "    exit\n"
                        "}\n");
    free(s);
    h.installed = true;
    s = render(bootcfg_grub_host, &h);
    cr_expect(strstr(s, "set default=local\n"), "%s", s);
    free(s);
    struct template_buf b = { 0 };
    cr_assert_eq(bootcfg_grub_menu(&srv, ps, &b, err, sizeof err), 0, "%s", err);
    /* a quote in a label is closed, escaped and reopened for GRUB's shell */
    cr_expect(strstr(b.data, "menuentry 'Rescue '\\''live'\\''' --id live {\n    linux /live/vmlinuz boot=live\n}\n"),
              "%s", b.data);
    cr_expect(strstr(b.data, "set default=local\n"));
    template_buf_free(&b);
}

Test(bootcfg, ipxe_host)
{
    struct bootcfg_host h = host("node1", false);
    char *s = render(bootcfg_ipxe_host, &h);
    cr_expect_str_eq(s, "#!ipxe\n"
                        "# bootstorm: node1 52:54:00:12:34:56 profile debian\n"
                        "echo bootstorm: installing Debian 12 on node1\n"
                        "kernel http://10.0.0.1:8080/debian-installer/amd64/linux initrd=initrd.gz auto=true "
                        "priority=critical url=http://10.0.0.1:8080/preseed/52:54:00:12:34:56.cfg hostname=node1 --- quiet\n"
                        "initrd http://10.0.0.1:8080/debian-installer/amd64/initrd.gz\n"
                        "boot\n");
    free(s);
    h.installed = true;
    s = render(bootcfg_ipxe_host, &h);
    cr_expect_str_eq(s, "#!ipxe\n"
                        "# bootstorm: node1 52:54:00:12:34:56 profile debian (installed)\n"
                        "echo bootstorm: node1 is installed: booting from the local disk\n"
                        "iseq ${platform} efi && exit ||\n"
                        "sanboot --no-describe --drive 0x80 || exit\n");
    free(s);
}

Test(bootcfg, kickstart)
{
    struct bootcfg_host h = host("node1", false);
    char *s = render(bootcfg_kickstart, &h);
    cr_expect_str_eq(s, "d-i netcfg/get_hostname string node1\n"
                        "d-i netcfg/get_ipaddress string 10.0.0.5\n"
                        "d-i netcfg/get_netmask string 255.255.255.0\n"
                        "d-i netcfg/get_gateway string 10.0.0.1\n"
                        "d-i netcfg/get_nameservers string 10.0.0.2 8.8.8.8\n"
                        "d-i partman-auto/disk string /dev/nvme0n1\n"
                        "d-i preseed/late_command string curl -fsS -X POST "
                        "'http://10.0.0.1:8080/api/hosts/52:54:00:12:34:56/installed?token="
                        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'\n");
    free(s);
    h = host("node2", false);
    s = render(bootcfg_kickstart, &h);
    cr_expect(strstr(s, "# dhcp\n"), "%s", s);
    cr_expect(strstr(s, "/dev/sda\n"), "an empty cell takes the template's default: %s", s);
    free(s);
    /* no token: the template needs callback_url, so rendering fails and says where */
    h.token = NULL;
    struct template_buf b = { 0 };
    cr_expect_eq(bootcfg_kickstart(&srv, &h, &b, err, sizeof err), -EINVAL);
    char want[256];
    snprintf(want, sizeof want, "%s/debian.ks:11: undefined variable \"callback_url\" (give it a default: {{callback_url|...}})", dir);
    cr_expect_str_eq(err, want);
    template_buf_free(&b);
    h = host("live1", false);
    cr_expect_eq(bootcfg_kickstart(&srv, &h, &b, err, sizeof err), -ENOENT);
    template_buf_free(&b);
}

Test(bootcfg, append_line_break_rejected)
{
    const char *csv = "mac,hostname,rack\n52:54:00:00:00:09,evil,\"r1\nKERNEL other\"\n";
    struct inventory *bad;
    cr_assert_eq(inventory_parse("x.csv", csv, strlen(csv), &bad, err, sizeof err), 0, "%s", err);
    struct bootcfg_host h = { .host = inventory_host(bad, 0), .profile = profile_find(ps, "live") };
    struct template_buf b = { 0 };
    cr_expect_eq(bootcfg_pxelinux_host(&srv, &h, &b, err, sizeof err), -EINVAL);
    cr_expect(strstr(err, "append for evil renders to more than one line"), "%s", err);
    template_buf_free(&b);
    inventory_free(bad);
}

Test(bootcfg, pxelinux_search_order)
{
    /* the example of syslinux's doc/pxelinux.txt */
    uint8_t uuid[16] = { 0xb8, 0x94, 0x59, 0x08, 0xd6, 0xa6, 0x41, 0xa9, 0x61, 0x1d, 0x74, 0xa6, 0xab, 0x80, 0xb8, 0x3d };
    uint8_t mac[6] = { 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd };
    char names[BOOTCFG_SEARCH_MAX][BOOTCFG_NAME_LEN];
    size_t n = bootcfg_pxelinux_search_order(uuid, mac, 0xc000025b, names);
    const char *want[] = { "b8945908-d6a6-41a9-611d-74a6ab80b83d", "01-88-99-aa-bb-cc-dd", "C000025B", "C000025",
                           "C00002", "C0000", "C000", "C00", "C0", "C", "default" };
    cr_assert_eq(n, 11);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(names[i], want[i]);
    n = bootcfg_pxelinux_search_order(NULL, mac, 0, names);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(names[0], "01-88-99-aa-bb-cc-dd");
    cr_expect_str_eq(names[1], "default");

    /* and back: what each name refers to */
    struct bootcfg_name nm;
    cr_expect_eq(bootcfg_pxelinux_name(want[0], &nm), BOOTCFG_NAME_UUID);
    cr_expect_arr_eq(nm.uuid, uuid, 16);
    cr_expect_eq(bootcfg_pxelinux_name(want[1], &nm), BOOTCFG_NAME_MAC);
    cr_expect_arr_eq(nm.mac, mac, 6);
    cr_expect_eq(bootcfg_pxelinux_name("01-88-99-AA-BB-CC-DD", &nm), BOOTCFG_NAME_MAC);
    cr_expect_eq(bootcfg_pxelinux_name("C000025B", &nm), BOOTCFG_NAME_IP);
    cr_expect_eq(nm.ip, 0xc000025b);
    cr_expect_eq(bootcfg_pxelinux_name("c000025b", &nm), BOOTCFG_NAME_IP);
    cr_expect_eq(bootcfg_pxelinux_name("C00002", &nm), BOOTCFG_NAME_IP_PREFIX);
    cr_expect_eq(nm.ip, 0xc0000200);
    cr_expect_eq(nm.digits, 6);
    cr_expect_eq(bootcfg_pxelinux_name("default", &nm), BOOTCFG_NAME_DEFAULT);
    cr_expect_eq(bootcfg_pxelinux_name("C000025B0", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_pxelinux_name("01-88-99-aa-bb-cc", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_pxelinux_name("01-88:99:aa:bb:cc:dd", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_pxelinux_name("02-88-99-aa-bb-cc-dd", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_pxelinux_name("menu.c32", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_pxelinux_name("", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_pxelinux_name("b8945908-d6a6-41a9-611d-74a6ab80b83", &nm), BOOTCFG_NAME_OTHER);
}

Test(bootcfg, grub_names)
{
    struct bootcfg_name nm;
    cr_expect_eq(bootcfg_grub_name("grub.cfg", &nm), BOOTCFG_NAME_DEFAULT);
    cr_expect_eq(bootcfg_grub_name("grub.cfg-01-52-54-00-12-34-56", &nm), BOOTCFG_NAME_MAC);
    cr_expect_eq(nm.mac[5], 0x56);
    cr_expect_eq(bootcfg_grub_name("grub.cfg-0A000005", &nm), BOOTCFG_NAME_IP);
    cr_expect_eq(nm.ip, 0x0a000005);
    cr_expect_eq(bootcfg_grub_name("grub.cfg-0A0", &nm), BOOTCFG_NAME_IP_PREFIX);
    cr_expect_eq(bootcfg_grub_name("grub.cfg-", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_grub_name("grub.cfgx", &nm), BOOTCFG_NAME_OTHER);
    cr_expect_eq(bootcfg_grub_name("x86_64-efi/command.lst", &nm), BOOTCFG_NAME_OTHER);
}
