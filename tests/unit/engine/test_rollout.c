/* Criterion suite for engine/rollout: the TFTP names it answers, the HTTP
 * routes, the install-once callback and its token, admin checks, durability of
 * the installed state across a restart (and a torn journal line), reloads that
 * keep the old inventory on a bad row, unknown machines, the IP resolver and
 * bootstorm check's file checks. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/options.h"
#include "engine/rollout.h"
#include "proto/http.h"

static char dir[64], path[8][160], err[OPTIONS_ERR_MAX];
enum { P_HOSTS, P_PROFILES, P_TFTP, P_HTTP, P_STATE };
static struct options o;
static struct rollout *r;

static void put(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(text, f);
    fclose(f);
}

static const char *HOSTS = "mac,hostname,ip,profile,rack\n"
                           "52:54:00:12:34:56,node1,10.0.0.5,debian,r01\n"
                           "52:54:00:12:34:57,node2,,,r02\n";

static void setup(void)
{
    strcpy(dir, "/tmp/test_rollout.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *sub[] = { "hosts.csv", "profiles", "tftp", "http", "state" };
    for (int i = 0; i < 5; i++)
        snprintf(path[i], sizeof path[i], "%s/%s", dir, sub[i]);
    for (int i = 1; i < 4; i++)
        cr_assert_eq(mkdir(path[i], 0755), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/tftp/d-i", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/http/d-i", dir);
    mkdir(p, 0755);
    put("tftp/d-i/linux", "k");
    put("tftp/d-i/initrd.gz", "i");
    put("http/d-i/linux", "k");
    put("http/d-i/initrd.gz", "i");
    put("hosts.csv", HOSTS);
    put("profiles/debian.conf", "label = Debian 12\nkernel = d-i/linux\ninitrd = d-i/initrd.gz\n"
                                "append = auto=true url={{base_url}}/preseed/{{mac}}.cfg\n"
                                "kickstart = debian.ks\nloader_efi64 = bootnetx64.efi\n");
    put("profiles/debian.ks", "hostname {{hostname}}\nip {{ip|dhcp}}\nrack {{rack|none}}\ngw {{gateway}}\n"
                              "dns {{dns}}\nserver {{server}}\ncallback {{callback_url}}\n");
}

static void teardown(void)
{
    rollout_free(r);
    r = NULL;
    options_free(&o);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(rollout, .init = setup, .fini = teardown);

static char problems[16][1024];
static int nproblems;

static void collect(void *ctx, const char *msg)
{
    (void)ctx;
    if (nproblems < 16)
        snprintf(problems[nproblems], sizeof problems[0], "%s", msg);
    nproblems++;
}

/* Parses a serve command line with the test's files plus extra knobs. */
static void opts(int extra_argc, const char **extra)
{
    const char *argv[32] = { "serve",       "--hosts",      path[P_HOSTS], "--profiles",   path[P_PROFILES],
                             "--tftp-root", path[P_TFTP],   "--http-root", path[P_HTTP],   "--state-dir",
                             path[P_STATE], "--http-port",  "8080",        "--listen",     "10.0.0.1",
                             "--subnet",    "10.0.0.0/24,pool=10.0.0.100-10.0.0.200,router=10.0.0.254,dns=10.0.0.2" };
    int argc = 17;
    for (int i = 0; i < extra_argc; i++)
        argv[argc++] = extra[i];
    options_free(&o);
    int rc = options_parse(&o, OPTIONS_CMD_SERVE, argc, (char **)argv, NULL, err, sizeof err);
    cr_assert_eq(rc, OPTIONS_OK, "%s", err);
}

static char lastlog[1024];
static int nlogs;

static void logline(void *ctx, const char *line)
{
    (void)ctx;
    snprintf(lastlog, sizeof lastlog, "%s", line);
    nlogs++;
}

static void start(int extra_argc, const char **extra)
{
    opts(extra_argc, extra);
    nproblems = 0;
    rollout_free(r);
    r = NULL;
    int rc = rollout_create(&r, &o, 0, collect, NULL);
    cr_assert_eq(rc, 0, "rc %d: %s", rc, problems[0]);
    rollout_set_log(r, logline, NULL);
    nlogs = 0;
}

static const uint8_t MAC1[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };

/* A TFTP read of a virtual file; NULL when it falls through to the disk. */
static char *tftp(const char *name, const char *client)
{
    struct vfile *f = NULL;
    if (!rollout_vfile_open(r, name, inet_addr(client), &f))
        return NULL;
    cr_assert_not_null(f);
    char *s = strndup((const char *)f->data, f->size);
    vfile_unref(f);
    return s;
}

struct resp {
    int status;
    char *body;
    const char *type;
};

static struct resp http(int method, const char *p, const char *query, const char *body, const char *peer,
                        const char *auth)
{
    struct http_dyn_request req = { .method = method, .path = p, .query = query ? query : "", .body = body,
                                    .body_len = body ? strlen(body) : 0, .peer_ip = inet_addr(peer),
                                    .auth = auth ? auth : "" };
    struct http_dyn_response resp = { 0 };
    struct resp out = { 0 };
    if (!rollout_http_route(r, &req, &resp))
        return out;
    out.status = resp.status;
    out.type = resp.content_type;
    out.body = strndup(resp.body ? resp.body : "", resp.body_len);
    free(resp.body);
    return out;
}

#define GET(p, q, peer) http(HTTP_METHOD_GET, p, q, NULL, peer, NULL)
#define POST(p, q, body, peer, auth) http(HTTP_METHOD_POST, p, q, body, peer, auth)

/* The token the host's kickstart carries. */
static void kickstart_token(char tok[65])
{
    struct resp ks = GET("ks/node1", NULL, "10.0.0.5");
    cr_assert_eq(ks.status, 200);
    const char *t = strstr(ks.body, "token=");
    cr_assert_not_null(t, "%s", ks.body);
    snprintf(tok, 65, "%.64s", t + 6);
    free(ks.body);
}

Test(rollout, tftp_names)
{
    start(0, NULL);
    cr_expect_eq(rollout_host_count(r), 2);
    cr_expect_eq(rollout_profile_count(r), 1);
    char *s = tftp("pxelinux.cfg/01-52-54-00-12-34-56", "10.0.0.5");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "DEFAULT install\n"), "%s", s);
    cr_expect(strstr(s, "MENU TITLE node1 (10.0.0.5)\n"), "%s", s);
    cr_expect(strstr(s, "APPEND auto=true url=http://10.0.0.1:8080/preseed/52:54:00:12:34:56.cfg\n"), "%s", s);
    free(s);
    s = tftp("pxelinux.cfg/0A000005", "10.0.0.5"); /* its hex IP */
    cr_assert_not_null(s);
    cr_expect(strstr(s, "node1"));
    free(s);
    cr_expect_null(tftp("pxelinux.cfg/0A00000", "10.0.0.5"), "a prefix is the disk's");
    cr_expect_null(tftp("pxelinux.cfg/b8945908-d6a6-41a9-611d-74a6ab80b83d", "10.0.0.5"));
    cr_expect_null(tftp("pxelinux.cfg/01-52-54-00-99-99-99", "10.0.0.5"), "unknown MAC, no default profile");
    cr_expect_null(tftp("pxelinux.0", "10.0.0.5"));
    cr_expect_null(tftp("xpxelinux.cfg/default", "10.0.0.5"));
    s = tftp("pxelinux.cfg/default", "10.0.0.9");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "LABEL debian\n"), "%s", s);
    free(s);
    s = tftp("boot/pxelinux.cfg/01-52-54-00-12-34-56", "10.0.0.5"); /* pxelinux.0 in a subdirectory */
    cr_assert_not_null(s);
    free(s);
    /* Debian's GRUB asks only for grub.cfg: the asker's own, by its address */
    s = tftp("debian-installer/amd64/grub/grub.cfg", "10.0.0.5");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "# bootstorm: node1 "), "%s", s);
    cr_expect(strstr(s, "set default=install\n"), "%s", s);
    cr_expect(strstr(s, "linux /d-i/linux auto=true url=http://10.0.0.1:8080/preseed/52:54:00:12:34:56.cfg\n"), "%s", s);
    free(s);
    s = tftp("grub/grub.cfg-01-52-54-00-12-34-56", "10.0.0.77");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "node1"));
    free(s);
    /* an unknown asker gets the generic menu */
    s = tftp("grub/grub.cfg", "10.0.0.77");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "generic menu"), "%s", s);
    free(s);
}

static bool lease_resolver(void *ctx, uint32_t ip, uint8_t mac[6])
{
    (void)ctx;
    if (ip != 0x0a000063) /* 10.0.0.99: node2's lease */
        return false;
    const uint8_t m[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x57 };
    memcpy(mac, m, 6);
    return true;
}

Test(rollout, ip_resolver_for_pool_hosts)
{
    start(0, NULL);
    cr_expect_null(tftp("pxelinux.cfg/0A000063", "10.0.0.99"));
    rollout_set_ip_resolver(r, lease_resolver, NULL);
    char *s = tftp("pxelinux.cfg/0A000063", "10.0.0.99");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "MENU TITLE node2 (10.0.0.99)\n"), "%s", s);
    cr_expect(strstr(s, "DEFAULT local\n"), "node2 has no profile and there is no default: %s", s);
    free(s);
    s = tftp("grub.cfg", "10.0.0.99");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "node2"));
    free(s);
}

Test(rollout, kickstart_and_ipxe_over_http)
{
    start(0, NULL);
    struct resp a = GET("ks/52:54:00:12:34:56", NULL, "10.0.0.5");
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_expect_str_eq(a.type, "text/plain; charset=utf-8");
    cr_expect(strstr(a.body, "hostname node1\nip 10.0.0.5\nrack r01\ngw 10.0.0.254\ndns 10.0.0.2\nserver 10.0.0.1\n"),
              "%s", a.body);
    cr_expect(strstr(a.body, "callback http://10.0.0.1:8080/api/hosts/52:54:00:12:34:56/installed?token="), "%s", a.body);
    struct resp b = GET("preseed/52-54-00-12-34-56.cfg", NULL, "10.0.0.5");
    cr_expect_eq(b.status, 200);
    cr_expect_str_eq(a.body, b.body);
    free(b.body);
    b = GET("ks/node1", NULL, "10.0.0.77");
    cr_expect_str_eq(a.body, b.body, "by hostname, from any address");
    free(b.body);
    b = GET("preseed/.cfg", NULL, "10.0.0.5");
    cr_expect_eq(b.status, 200, "empty id: the asker, by its address");
    cr_expect_str_eq(a.body, b.body);
    free(b.body);
    free(a.body);
    a = GET("ks/node9", NULL, "10.0.0.5");
    cr_expect_eq(a.status, 404);
    free(a.body);
    a = GET("ks/node2", NULL, "10.0.0.5");
    cr_expect_eq(a.status, 404, "no profile: no kickstart");
    free(a.body);
    a = POST("ks/node1", NULL, NULL, "10.0.0.5", NULL);
    cr_expect_eq(a.status, 405);
    free(a.body);
    a = GET("boot.ipxe", "mac=52%3A54%3A00%3A12%3A34%3A56", "10.0.0.5");
    cr_assert_eq(a.status, 200);
    cr_expect(strstr(a.body, "#!ipxe\n") == a.body);
    cr_expect(strstr(a.body, "kernel http://10.0.0.1:8080/d-i/linux initrd=initrd.gz auto=true"), "%s", a.body);
    cr_expect(strstr(a.body, "initrd http://10.0.0.1:8080/d-i/initrd.gz\nboot\n"), "%s", a.body);
    free(a.body);
    a = GET("boot.ipxe", "", "10.0.0.5");
    cr_expect_eq(a.status, 200, "no mac: the asker's fixed address");
    free(a.body);
    a = GET("index.html", NULL, "10.0.0.5");
    cr_expect_eq(a.status, 0, "other paths fall through to the file tree");
    a = GET("api/status", NULL, "10.0.0.5");
    cr_expect_eq(a.status, 0);
    a = GET("api/hosts/node1", NULL, "10.0.0.5");
    cr_assert_eq(a.status, 200);
    cr_expect_str_eq(a.type, "application/json");
    cr_expect_str_eq(a.body, "{\"mac\":\"52:54:00:12:34:56\",\"hostname\":\"node1\",\"ip\":\"10.0.0.5\","
                             "\"profile\":\"debian\",\"known\":true,\"installed\":false}\n");
    free(a.body);
    char loader[64];
    cr_expect(rollout_loader(r, MAC1, true, loader, sizeof loader));
    cr_expect_str_eq(loader, "bootnetx64.efi");
    cr_expect_not(rollout_loader(r, MAC1, false, loader, sizeof loader));
}

Test(rollout, installed_callback_and_restart)
{
    start(0, NULL);
    char tok[65];
    kickstart_token(tok);
    struct resp a = POST("api/hosts/52:54:00:12:34:56/installed", "token=0000", NULL, "10.0.0.5", NULL);
    cr_expect_eq(a.status, 403);
    free(a.body);
    cr_expect_eq(nlogs, 1);
    cr_expect_str_eq(lastlog, "refused installed callback for 52:54:00:12:34:56 (node1) from 10.0.0.5: wrong token");
    a = POST("api/hosts/52:54:00:12:34:56/installed", NULL, NULL, "10.0.0.5", NULL);
    cr_expect_eq(a.status, 403, "no token");
    free(a.body);
    cr_expect_not(rollout_installed(r, MAC1));
    /* another host's token does not work either */
    char q[80];
    snprintf(q, sizeof q, "token=%s", tok);
    a = POST("api/hosts/52:54:00:12:34:57/installed", q, NULL, "10.0.0.5", NULL);
    cr_expect_eq(a.status, 403);
    free(a.body);
    a = GET("api/hosts/52:54:00:12:34:56/installed", q, "10.0.0.5");
    cr_expect_eq(a.status, 405);
    free(a.body);
    a = POST("api/hosts/52:54:00:12:34:56/installed", q, NULL, "10.0.0.5", NULL);
    cr_expect_eq(a.status, 200, "%s", a.body);
    cr_expect(strstr(a.body, "\"installed\":true"), "%s", a.body);
    free(a.body);
    cr_expect(rollout_installed(r, MAC1));
    char *s = tftp("pxelinux.cfg/01-52-54-00-12-34-56", "10.0.0.5");
    cr_expect(strstr(s, "DEFAULT local\n"), "%s", s);
    free(s);
    a = GET("boot.ipxe", "mac=52:54:00:12:34:56", "10.0.0.5");
    cr_expect(strstr(a.body, "sanboot --no-describe --drive 0x80"), "%s", a.body);
    free(a.body);

    /* restart: the state is in the journal */
    start(0, NULL);
    cr_expect(rollout_installed(r, MAC1));
    s = tftp("grub.cfg", "10.0.0.5");
    cr_expect(strstr(s, "set default=local\n"), "%s", s);
    free(s);
    /* the token in the body works too */
    rollout_set_installed(r, MAC1, false);
    a = POST("api/hosts/node1/installed", NULL, tok, "10.0.0.5", NULL);
    cr_expect_eq(a.status, 200, "%s", a.body);
    free(a.body);
    cr_expect(rollout_installed(r, MAC1));
}

Test(rollout, torn_journal_line)
{
    start(0, NULL);
    cr_assert_eq(rollout_set_installed(r, MAC1, true), 0);
    rollout_free(r);
    r = NULL;
    /* a crash in the middle of an append (never acknowledged) */
    char jp[200];
    snprintf(jp, sizeof jp, "%s/installed", path[P_STATE]);
    FILE *f = fopen(jp, "a");
    fputs("reinstall 52:54:00:12:3", f);
    fclose(f);
    start(0, NULL);
    cr_expect(rollout_installed(r, MAC1), "the torn line is ignored");
    const uint8_t mac2[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x57 };
    cr_assert_eq(rollout_set_installed(r, mac2, true), 0);
    start(0, NULL);
    cr_expect(rollout_installed(r, MAC1));
    cr_expect(rollout_installed(r, mac2), "the next line was not glued to the torn one");
    f = fopen(jp, "r");
    char line[128];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cr_expect(!strncmp(line, "installed 52:54:00:12:34:5", 26), "line %d: %s", n, line);
        n++;
    }
    fclose(f);
    cr_expect_eq(n, 2);
}

Test(rollout, admin_calls)
{
    const char *extra[] = { "--admin-allow", "10.0.0.0/24", "--admin-token", "s3cret-admin" };
    start(4, extra);
    cr_assert_eq(rollout_set_installed(r, MAC1, true), 0);
    struct resp a = POST("api/hosts/52:54:00:12:34:56/reinstall", NULL, NULL, "192.168.1.1", "Bearer s3cret-admin");
    cr_expect_eq(a.status, 403, "outside --admin-allow");
    free(a.body);
    a = POST("api/hosts/52:54:00:12:34:56/reinstall", NULL, NULL, "10.0.0.9", NULL);
    cr_expect_eq(a.status, 401, "no token");
    free(a.body);
    a = POST("api/hosts/52:54:00:12:34:56/reinstall", NULL, NULL, "10.0.0.9", "Bearer s3cret-admiN");
    cr_expect_eq(a.status, 401, "wrong token");
    free(a.body);
    cr_expect(rollout_installed(r, MAC1));
    a = POST("api/hosts/52:54:00:12:34:56/reinstall", NULL, NULL, "10.0.0.9", "Bearer s3cret-admin");
    cr_expect_eq(a.status, 200, "%s", a.body);
    free(a.body);
    cr_expect_not(rollout_installed(r, MAC1));
    a = POST("api/reload", NULL, NULL, "192.168.1.1", "Bearer s3cret-admin");
    cr_expect_eq(a.status, 403);
    free(a.body);
    a = GET("api/reload", NULL, "10.0.0.9");
    cr_expect_eq(a.status, 405);
    free(a.body);
}

Test(rollout, reload_keeps_old_on_bad_row)
{
    start(0, NULL); /* default --admin-allow: loopback */
    put("hosts.csv", "mac,hostname,ip,profile,rack\n52:54:00:12:34:56,node1,10.0.0.5,debian,r01\nbad-mac,node3,,,\n");
    struct resp a = POST("api/reload", NULL, NULL, "127.0.0.1", NULL);
    cr_expect_eq(a.status, 422);
    cr_expect(strstr(a.body, "hosts.csv:3: mac \"bad-mac\": not a MAC address"), "%s", a.body);
    free(a.body);
    cr_expect_eq(rollout_host_count(r), 2, "the old inventory stays");
    a = GET("ks/node2", NULL, "10.0.0.5");
    cr_expect_eq(a.status, 404);
    free(a.body);
    /* a reference to a missing profile is a bad row too */
    put("hosts.csv", "mac,hostname,profile\n52:54:00:12:34:56,node1,centos\n");
    char e[512];
    cr_expect_eq(rollout_reload(r, e, sizeof e), -EINVAL);
    cr_expect(strstr(e, "hosts.csv:2: profile \"centos\": no such file"), "%s", e);
    /* a good file goes in */
    put("hosts.csv", "mac,hostname,ip,profile\n52:54:00:12:34:56,node1,10.0.0.5,debian\n"
                     "52:54:00:12:34:99,node3,10.0.0.6,debian\n");
    a = POST("api/reload", NULL, NULL, "127.0.0.1", NULL);
    cr_expect_eq(a.status, 200, "%s", a.body);
    free(a.body);
    cr_expect_eq(rollout_host_count(r), 2);
    char *s = tftp("pxelinux.cfg/01-52-54-00-12-34-99", "10.0.0.6");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "node3"));
    free(s);
}

Test(rollout, unknown_machines)
{
    const char *def[] = { "--default-profile", "debian" };
    start(2, def);
    char *s = tftp("pxelinux.cfg/01-52-54-00-99-99-99", "10.0.0.150");
    cr_assert_not_null(s);
    cr_expect(strstr(s, "MENU TITLE host-525400999999\n"), "%s", s);
    free(s);
    struct resp a = GET("ks/52:54:00:99:99:99", NULL, "10.0.0.150");
    cr_expect_eq(a.status, 200);
    cr_expect(strstr(a.body, "hostname host-525400999999\nip dhcp\n"), "%s", a.body);
    free(a.body);
    a = GET("api/hosts/52:54:00:99:99:99", NULL, "10.0.0.150");
    cr_expect(strstr(a.body, "\"known\":false"), "%s", a.body);
    free(a.body);
    /* node2 has no profile of its own: the default applies */
    a = GET("ks/node2", NULL, "10.0.0.5");
    cr_expect_eq(a.status, 200);
    free(a.body);
    const char *ko[] = { "--default-profile", "debian", "--known-only" };
    start(3, ko);
    cr_expect_null(tftp("pxelinux.cfg/01-52-54-00-99-99-99", "10.0.0.150"));
    cr_expect_null(tftp("pxelinux.cfg/default", "10.0.0.150"), "--known-only: nothing for strangers");
    a = GET("ks/52:54:00:99:99:99", NULL, "10.0.0.150");
    cr_expect_eq(a.status, 404);
    free(a.body);
}

Test(rollout, create_reports_every_problem)
{
    put("hosts.csv", "mac,hostname,profile\n52:54:00:12:34:56,node1,centos\n");
    put("profiles/broken.conf", "kernel = ../x\n");
    const char *def[] = { "--default-profile", "nope" };
    opts(2, def);
    nproblems = 0;
    cr_expect_eq(rollout_create(&r, &o, 0, collect, NULL), -EINVAL);
    cr_expect_null(r);
    cr_expect_eq(nproblems, 3, "%d: %s | %s", nproblems, problems[0], problems[1]);
    /* check mode goes on and renders what loaded */
    nproblems = 0;
    cr_expect_eq(rollout_create(&r, &o, ROLLOUT_KEEP_GOING | ROLLOUT_READ_ONLY, collect, NULL), -EINVAL);
    cr_assert_not_null(r);
    struct stat st;
    char sp[200];
    snprintf(sp, sizeof sp, "%s/secret", path[P_STATE]);
    cr_expect_neq(stat(sp, &st), 0, "read-only: no secret made");
    cr_expect_eq(rollout_set_installed(r, MAC1, true), -EROFS);
}

Test(rollout, check_files)
{
    put("profiles/other.conf", "kernel = missing/vmlinuz\nloader_bios = lpxelinux.0\n");
    put("tftp/bootnetx64.efi", "loader");
    start(0, NULL);
    nproblems = 0;
    unsigned n = rollout_check(r, collect, NULL);
    cr_expect_eq(n, 3, "%s | %s | %s | %s", problems[0], problems[1], problems[2], problems[3]);
    cr_assert_eq(nproblems, 3);
    char want[3][512];
    snprintf(want[0], 512, "%s/other.conf: kernel missing/vmlinuz: no such file under --tftp-root %s", path[P_PROFILES], path[P_TFTP]);
    snprintf(want[1], 512, "%s/other.conf: kernel missing/vmlinuz: no such file under --http-root %s", path[P_PROFILES], path[P_HTTP]);
    snprintf(want[2], 512, "%s/other.conf: loader_bios lpxelinux.0: no such file under --tftp-root %s", path[P_PROFILES], path[P_TFTP]);
    for (int i = 0; i < 3; i++)
        cr_expect_str_eq(problems[i], want[i]);
    /* a kickstart that needs a column some host lacks */
    put("profiles/debian.ks", "disk {{disk}}\n");
    char e[256];
    cr_assert_eq(rollout_reload(r, e, sizeof e), 0, "%s", e);
    nproblems = 0;
    rollout_check(r, collect, NULL);
    char w[512];
    snprintf(w, sizeof w, "%s:2: node1: kickstart: %s/debian.ks:1: undefined variable \"disk\" (give it a default: {{disk|...}})",
             path[P_HOSTS], path[P_PROFILES]);
    bool found = false;
    for (int i = 0; i < nproblems && i < 16; i++)
        found |= !strcmp(problems[i], w);
    cr_expect(found, "want %s, first: %s", w, problems[0]);
}

Test(rollout, render_by_id)
{
    start(0, NULL);
    struct template_buf b = { 0 };
    char e[256];
    cr_assert_eq(rollout_render(r, "node1", ROLLOUT_IPXE, &b, e, sizeof e), 0, "%s", e);
    cr_expect(strstr(b.data, "#!ipxe\n") == b.data);
    template_buf_free(&b);
    cr_expect_eq(rollout_render(r, "nobody", ROLLOUT_PXELINUX, &b, e, sizeof e), -ENOENT);
    cr_expect_str_eq(e, "nobody: not in the inventory (and no --default-profile for unknown machines)");
    cr_expect_str_eq(rollout_what_name(ROLLOUT_GRUB), "grub");
    template_buf_free(&b);
}
