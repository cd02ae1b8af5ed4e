/* Criterion suite for engine/tracker: stage transitions (in order, out of
 * order, repeats, installer DHCP, a reboot mid-install, a reinstall), stalls,
 * failures, the IP → MAC paths, the event ring, the state file and its
 * errors, the TFTP provider hook, and recording from several threads at once;
 * the TFTP done hook (timeouts, aborts, missing files versus firmware's
 * probes) and the journal (a stage survives a crash without tracker_free). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/dhcp_service.h"
#include "engine/tracker.h"

static uint64_t fake_now = 1700000000000ull;
static uint64_t clk(void) { return fake_now; }

static char err[1024];
static char dir[64];
static struct tracker *t;
static struct inventory_holder *holder;

static const uint8_t A[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x01};
static const uint8_t B[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x02};
static const uint8_t X[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99}; /* not in the inventory */

static const char csv[] = "mac,hostname,ip,profile,rack\n"
                          "52:54:00:00:00:02,node-b,10.0.0.12,,r2\n"
                          "52:54:00:00:00:01,node-a,10.0.0.11,,r1\n";

static struct tracker *make(uint32_t stall_ms, unsigned ring, unsigned capacity)
{
    struct tracker_config cfg = {.stall_after_ms = stall_ms, .state_dir = dir, .event_ring = ring,
                                 .capacity = capacity, .inventory = holder, .no_thread = true, .clock_ms = clk};
    struct tracker *tr = NULL;
    int rc = tracker_create(&tr, &cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "tracker_create: %d %s", rc, err);
    return tr;
}

static void setup(void)
{
    strcpy(dir, "/tmp/test_tracker.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct inventory *inv = NULL;
    cr_assert_eq(inventory_parse("hosts.csv", csv, strlen(csv), &inv, err, sizeof err), 0, "%s", err);
    holder = inventory_holder_new(inv);
    fake_now = 1700000000000ull;
    t = make(60000, 0, 0);
}

static void teardown(void)
{
    tracker_free(t);
    inventory_holder_free(holder);
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, TRACKER_STATE_FILE);
    unlink(p);
    snprintf(p, sizeof p, "%s/%s", dir, TRACKER_JOURNAL_FILE);
    unlink(p);
    cr_assert_eq(rmdir(dir), 0, "rmdir %s: %s (a file left behind)", dir, strerror(errno));
}

TestSuite(tracker, .init = setup, .fini = teardown);

static struct tracker_host get(const uint8_t *mac)
{
    struct tracker_host h;
    cr_assert(tracker_get(t, mac, &h), "host not found");
    return h;
}

static int rec(const uint8_t *mac, enum tracker_stage s)
{
    fake_now += 1000;
    return tracker_record(t, mac, s, 0);
}

Test(tracker, stage_names_round_trip)
{
    for (int s = 0; s < TRACKER_STAGE_COUNT; s++)
        cr_assert_eq(tracker_stage_parse(tracker_stage_name((enum tracker_stage)s)), s);
    cr_assert_str_eq(tracker_stage_name(TRACKER_STAGE_INSTALLER_DHCP), "installer_dhcp");
    cr_assert_eq(tracker_stage_parse("bogus"), TRACKER_ERR_STAGE);
    cr_assert_str_eq(tracker_fail_name(TRACKER_FAIL_HTTP_4XX), "http_4xx");
}

Test(tracker, classify_paths)
{
    static const struct { const char *p; enum tracker_stage s; } cases[] = {
        {"pxelinux.0", TRACKER_STAGE_LOADER},
        {"EFI/BOOT/grubx64.efi", TRACKER_STAGE_LOADER},
        {"undionly.kpxe", TRACKER_STAGE_LOADER},
        {"ldlinux.c32", TRACKER_STAGE_LOADER},
        {"pxelinux.cfg/01-52-54-00-00-00-01", TRACKER_STAGE_CONFIG},
        {"pxelinux.cfg/default", TRACKER_STAGE_CONFIG},
        {"grub/grub.cfg-01-52-54-00-00-00-01", TRACKER_STAGE_CONFIG},
        {"boot.ipxe", TRACKER_STAGE_CONFIG},
        {"images/centos9/vmlinuz", TRACKER_STAGE_KERNEL},
        {"debian-installer/amd64/linux", TRACKER_STAGE_KERNEL},
        {"images/centos9/initrd.img", TRACKER_STAGE_INITRD},
        {"debian-installer/amd64/initrd.gz", TRACKER_STAGE_INITRD},
        {"ks/52:54:00:00:00:01", TRACKER_STAGE_KICKSTART},
        {"preseed/node-a.cfg", TRACKER_STAGE_KICKSTART},
        {"ks.cfg", TRACKER_STAGE_KICKSTART},
        {"centos9/images/install.img", TRACKER_STAGE_STAGE2},
        {"centos9/LiveOS/squashfs.img", TRACKER_STAGE_STAGE2},
        {"centos9/BaseOS/Packages/b/bash-5.1-6.el9.x86_64.rpm", TRACKER_STAGE_PACKAGES},
        {"centos9/BaseOS/repodata/repomd.xml", TRACKER_STAGE_PACKAGES},
        {"debian/pool/main/b/bash/bash_5.2_amd64.deb", TRACKER_STAGE_PACKAGES},
        {"centos9/.treeinfo", TRACKER_STAGE_NONE},
        {"api/hosts/52:54:00:00:00:01/installed", TRACKER_STAGE_NONE},
        {"", TRACKER_STAGE_NONE},
        {"notes.txt", TRACKER_STAGE_NONE},
        /* directories count only as whole components */
        {"mypool/main/x.txt", TRACKER_STAGE_NONE},
        {"x/subrepodata/y.xml", TRACKER_STAGE_NONE},
        {"repodata", TRACKER_STAGE_NONE},
        {"pool/main/x.txt", TRACKER_STAGE_PACKAGES},
        {"a/LIVEOS/b/c.bin", TRACKER_STAGE_STAGE2},
        {"PXELINUX.CFG/default", TRACKER_STAGE_CONFIG},
        {"pxelinux.cfgx/default", TRACKER_STAGE_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(tracker_classify_path(cases[i].p), cases[i].s, "%s: got %s, want %s", cases[i].p,
                     tracker_stage_name(tracker_classify_path(cases[i].p)), tracker_stage_name(cases[i].s));
}

Test(tracker, inventory_hosts_exist_before_they_are_seen)
{
    struct tracker_host h = get(A);
    cr_assert(h.known);
    cr_assert_str_eq(h.hostname, "node-a");
    cr_assert_str_eq(h.rack, "r1");
    cr_assert_str_eq(h.mac_str, "52:54:00:00:00:01");
    cr_assert_eq(h.ip, 0x0a00000bu);
    cr_assert_eq(h.stage, TRACKER_STAGE_NONE);
    cr_assert_not(tracker_get(t, X, &h));
    struct tracker_counts c;
    tracker_counts(t, &c);
    cr_assert_eq(c.hosts, 2);
    cr_assert_eq(c.stage[TRACKER_STAGE_NONE], 2);
}

Test(tracker, full_install_in_order)
{
    uint64_t start = fake_now;
    static const enum tracker_stage walk[] = {
        TRACKER_STAGE_DISCOVER, TRACKER_STAGE_OFFERED, TRACKER_STAGE_ACKED, TRACKER_STAGE_LOADER,
        TRACKER_STAGE_CONFIG, TRACKER_STAGE_KERNEL, TRACKER_STAGE_INITRD, TRACKER_STAGE_ACKED /* installer */,
        TRACKER_STAGE_KICKSTART, TRACKER_STAGE_STAGE2, TRACKER_STAGE_PACKAGES, TRACKER_STAGE_POSTINSTALL,
        TRACKER_STAGE_INSTALLED,
    };
    for (size_t i = 0; i < sizeof walk / sizeof walk[0]; i++) {
        cr_assert_eq(rec(A, walk[i]), TRACKER_CHANGED, "step %zu", i);
        struct tracker_host h = get(A);
        enum tracker_stage want = i == 7 ? TRACKER_STAGE_INSTALLER_DHCP : walk[i];
        cr_assert_eq(h.stage, want, "step %zu: %s", i, tracker_stage_name(h.stage));
        cr_assert_eq(h.since_ms, fake_now);
        cr_assert_eq(h.ts[want], fake_now);
    }
    struct tracker_host h = get(A);
    for (int s = 1; s < TRACKER_STAGE_COUNT; s++)
        cr_assert_eq(h.ts[s], start + 1000u * (unsigned)s, "stage %s", tracker_stage_name((enum tracker_stage)s));
    cr_assert_not(h.stalled);
    cr_assert_not(h.failed);
    cr_assert_eq(h.cycles, 1);
    /* every stage after the first took one second: one observation each, in the "1" bucket (le=1) */
    for (unsigned s = TRACKER_STAGE_OFFERED; s < TRACKER_STAGE_COUNT; s++) {
        struct tracker_hist hist;
        tracker_histogram(t, s, &hist);
        cr_assert_eq(hist.count, 1, "stage %u", s);
        cr_assert_eq(hist.sum_ms, 1000);
        cr_assert_eq(hist.bucket[2], 1); /* bounds 0.1, 0.5, 1 */
    }
    struct tracker_hist whole;
    tracker_histogram(t, TRACKER_STAGE_COUNT, &whole);
    cr_assert_eq(whole.count, 1);
    cr_assert_eq(whole.sum_ms, 12000);
    struct tracker_counts c;
    tracker_counts(t, &c);
    cr_assert_eq(c.stage[TRACKER_STAGE_INSTALLED], 1);
    cr_assert_eq(c.stage[TRACKER_STAGE_NONE], 1);
}

Test(tracker, repeats_keep_the_first_time)
{
    rec(A, TRACKER_STAGE_DISCOVER);
    uint64_t first = fake_now;
    cr_assert_eq(rec(A, TRACKER_STAGE_DISCOVER), TRACKER_SAME);
    rec(A, TRACKER_STAGE_LOADER);
    cr_assert_eq(rec(A, TRACKER_STAGE_LOADER), TRACKER_SAME);
    /* a chained loader's DHCP (iPXE after pxelinux) is a repeat, not a new stage */
    cr_assert_eq(rec(A, TRACKER_STAGE_DISCOVER), TRACKER_SAME);
    struct tracker_host h = get(A);
    cr_assert_eq(h.ts[TRACKER_STAGE_DISCOVER], first);
    cr_assert_eq(h.stage, TRACKER_STAGE_LOADER);
    cr_assert_eq(h.seen_ms, fake_now);
    cr_assert_lt(h.progress_ms, fake_now, "a repeat is not progress");
}

Test(tracker, out_of_order_fills_in_without_going_back)
{
    rec(A, TRACKER_STAGE_INITRD); /* initrd before kernel (parallel fetch) */
    uint64_t t_initrd = fake_now;
    cr_assert_eq(rec(A, TRACKER_STAGE_KERNEL), TRACKER_CHANGED);
    struct tracker_host h = get(A);
    cr_assert_eq(h.stage, TRACKER_STAGE_INITRD);
    cr_assert_eq(h.since_ms, t_initrd);
    cr_assert_eq(h.ts[TRACKER_STAGE_KERNEL], fake_now);
    /* the installer used a static address: no DHCP seen, kickstart next */
    cr_assert_eq(rec(A, TRACKER_STAGE_KICKSTART), TRACKER_CHANGED);
    cr_assert_eq(get(A).stage, TRACKER_STAGE_KICKSTART);
    cr_assert_eq(get(A).ts[TRACKER_STAGE_INSTALLER_DHCP], 0);
    /* a late DHCP renewal mid-install changes nothing */
    cr_assert_eq(rec(A, TRACKER_STAGE_ACKED), TRACKER_SAME);
    cr_assert_eq(get(A).stage, TRACKER_STAGE_KICKSTART);
}

Test(tracker, installer_dhcp_is_the_ack_after_the_kernel)
{
    rec(A, TRACKER_STAGE_ACKED);
    rec(A, TRACKER_STAGE_KERNEL);
    cr_assert_eq(rec(A, TRACKER_STAGE_DISCOVER), TRACKER_SAME);
    cr_assert_eq(rec(A, TRACKER_STAGE_OFFERED), TRACKER_SAME);
    cr_assert_eq(rec(A, TRACKER_STAGE_ACKED), TRACKER_CHANGED);
    struct tracker_host h = get(A);
    cr_assert_eq(h.stage, TRACKER_STAGE_INSTALLER_DHCP);
    cr_assert_eq(h.ts[TRACKER_STAGE_INSTALLER_DHCP], fake_now);
    cr_assert_lt(h.ts[TRACKER_STAGE_ACKED], h.ts[TRACKER_STAGE_KERNEL]);
}

Test(tracker, reboot_mid_install_starts_a_new_cycle)
{
    rec(A, TRACKER_STAGE_DISCOVER);
    rec(A, TRACKER_STAGE_LOADER);
    rec(A, TRACKER_STAGE_KERNEL);
    rec(A, TRACKER_STAGE_KICKSTART);
    tracker_record(t, A, TRACKER_STAGE_PACKAGES, 5000);
    cr_assert_eq(get(A).bytes, 5000);
    /* power cycle: firmware DHCP again (ignored mid-install), then the loader */
    cr_assert_eq(rec(A, TRACKER_STAGE_DISCOVER), TRACKER_SAME);
    uint64_t t_discover = fake_now;
    rec(A, TRACKER_STAGE_ACKED);
    uint64_t t_ack = fake_now;
    cr_assert_eq(rec(A, TRACKER_STAGE_LOADER), TRACKER_CHANGED);
    struct tracker_host h = get(A);
    cr_assert_eq(h.cycles, 2);
    cr_assert_eq(h.stage, TRACKER_STAGE_LOADER);
    cr_assert_eq(h.ts[TRACKER_STAGE_DISCOVER], t_discover, "this boot's DHCP is carried over");
    cr_assert_eq(h.ts[TRACKER_STAGE_ACKED], t_ack);
    cr_assert_eq(h.ts[TRACKER_STAGE_KERNEL], 0);
    cr_assert_eq(h.ts[TRACKER_STAGE_PACKAGES], 0);
    cr_assert_eq(h.bytes, 0);
    cr_assert_eq(h.failures, 1);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_RESTART);
    cr_assert_str_eq(h.fail_reason, "rebooted during packages");
    cr_assert_not(h.failed, "it is progressing again");
}

Test(tracker, installed_host_booting_again_stays_installed)
{
    rec(A, TRACKER_STAGE_KERNEL);
    rec(A, TRACKER_STAGE_INSTALLED);
    cr_assert_eq(rec(A, TRACKER_STAGE_DISCOVER), TRACKER_SAME);
    cr_assert_eq(rec(A, TRACKER_STAGE_ACKED), TRACKER_SAME);
    cr_assert_eq(rec(A, TRACKER_STAGE_LOADER), TRACKER_SAME);
    cr_assert_eq(rec(A, TRACKER_STAGE_CONFIG), TRACKER_SAME);
    cr_assert_eq(get(A).stage, TRACKER_STAGE_INSTALLED);
    cr_assert_eq(get(A).cycles, 1);
    /* ... but one that fetches a kernel is being installed again */
    cr_assert_eq(rec(A, TRACKER_STAGE_KERNEL), TRACKER_CHANGED);
    struct tracker_host h = get(A);
    cr_assert_eq(h.cycles, 2);
    cr_assert_eq(h.stage, TRACKER_STAGE_KERNEL);
    cr_assert_eq(h.ts[TRACKER_STAGE_INSTALLED], 0);
    cr_assert_eq(h.ts[TRACKER_STAGE_ACKED], fake_now - 3000, "the DHCP of this boot");
}

Test(tracker, reinstall_resets)
{
    rec(A, TRACKER_STAGE_INSTALLED);
    cr_assert_eq(tracker_reset(t, A), TRACKER_CHANGED);
    struct tracker_host h = get(A);
    cr_assert_eq(h.stage, TRACKER_STAGE_NONE);
    cr_assert_eq(h.cycles, 2);
    for (int s = 0; s < TRACKER_STAGE_COUNT; s++)
        cr_assert_eq(h.ts[s], 0);
    cr_assert_eq(rec(A, TRACKER_STAGE_DISCOVER), TRACKER_CHANGED);
    cr_assert_eq(get(A).stage, TRACKER_STAGE_DISCOVER);
}

Test(tracker, stall_after_no_progress)
{
    rec(A, TRACKER_STAGE_KERNEL);
    rec(B, TRACKER_STAGE_INSTALLED);
    fake_now += 58999; /* 59.999 s since A's kernel */
    tracker_tick(t, fake_now);
    cr_assert_not(get(A).stalled);
    fake_now += 1;
    tracker_tick(t, fake_now);
    cr_assert(get(A).stalled);
    cr_assert_not(get(B).stalled, "installed hosts do not stall");
    struct tracker_counts c;
    tracker_counts(t, &c);
    cr_assert_eq(c.stalled, 1);
    /* repeats are not progress; bytes are */
    rec(A, TRACKER_STAGE_KERNEL);
    cr_assert(get(A).stalled);
    tracker_record(t, A, TRACKER_STAGE_NONE, 100);
    cr_assert_not(get(A).stalled);
    /* hosts never seen never stall */
    cr_assert_eq(tracker_stall_after_ms(t), 60000);
}

Test(tracker, failures_and_their_reason)
{
    rec(A, TRACKER_STAGE_KERNEL);
    char longr[300];
    memset(longr, 'x', sizeof longr - 1);
    longr[sizeof longr - 1] = 0;
    cr_assert_eq(tracker_fail(t, A, TRACKER_FAIL_HTTP_4XX, "HTTP 404 GET /images/vmlinuz"), TRACKER_CHANGED);
    struct tracker_host h = get(A);
    cr_assert(h.failed);
    cr_assert_eq(h.fail_ms, fake_now);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_HTTP_4XX);
    cr_assert_str_eq(h.fail_reason, "HTTP 404 GET /images/vmlinuz");
    tracker_fail(t, A, TRACKER_FAIL_OTHER, longr);
    h = get(A);
    cr_assert_eq(strlen(h.fail_reason), TRACKER_REASON_MAX - 1);
    cr_assert_eq(h.failures, 2);
    rec(A, TRACKER_STAGE_INITRD);
    h = get(A);
    cr_assert_not(h.failed, "progress after the failure");
    cr_assert_eq(h.failures, 2, "the failure stays on record");
    struct tracker_stats st;
    tracker_get_stats(t, &st);
    cr_assert_eq(st.failures[TRACKER_FAIL_HTTP_4XX], 1);
    cr_assert_eq(st.failures[TRACKER_FAIL_OTHER], 1);
    cr_assert_eq(tracker_fail(t, A, (enum tracker_fail_kind)77, "odd kind"), TRACKER_CHANGED);
    cr_assert_eq(get(A).fail_kind, TRACKER_FAIL_OTHER);
}

static bool resolve(void *ctx, uint32_t ip, uint8_t mac[6])
{
    (void)ctx;
    if (ip != 0x0a000063u) /* 10.0.0.99 */
        return false;
    memcpy(mac, X, 6);
    return true;
}

Test(tracker, addresses_to_hosts)
{
    /* the inventory's fixed address */
    cr_assert_eq(tracker_record_ip(t, 0x0a00000bu, TRACKER_STAGE_LOADER, 0), TRACKER_CHANGED);
    cr_assert_eq(get(A).stage, TRACKER_STAGE_LOADER);
    /* an acknowledged address */
    cr_assert_eq(tracker_set_ip(t, B, 0x0a000050u), TRACKER_CHANGED);
    cr_assert_eq(tracker_set_ip(t, B, 0x0a000050u), TRACKER_SAME);
    cr_assert_eq(tracker_record_ip(t, 0x0a000050u, TRACKER_STAGE_KERNEL, 0), TRACKER_CHANGED);
    cr_assert_eq(get(B).stage, TRACKER_STAGE_KERNEL);
    cr_assert_eq(get(B).ip, 0x0a000050u);
    /* unknown until the resolver says */
    cr_assert_eq(tracker_record_ip(t, 0x0a000063u, TRACKER_STAGE_CONFIG, 0), TRACKER_ERR_NO_MAC);
    tracker_set_ip_resolver(t, resolve, NULL);
    cr_assert_eq(tracker_record_ip(t, 0x0a000063u, TRACKER_STAGE_CONFIG, 0), TRACKER_CHANGED);
    struct tracker_host h = get(X);
    cr_assert_not(h.known);
    cr_assert_str_eq(h.hostname, "");
    cr_assert_eq(h.ip, 0x0a000063u);
    uint8_t mac[6];
    cr_assert(tracker_mac_for_ip(t, 0x0a000063u, mac));
    cr_assert_eq(memcmp(mac, X, 6), 0);
    cr_assert_not(tracker_mac_for_ip(t, 0x0a0000feu, mac));
    cr_assert(tracker_resolve_id(t, "node-b", mac));
    cr_assert_eq(memcmp(mac, B, 6), 0);
    cr_assert(tracker_resolve_id(t, "52-54-00-00-00-01", mac));
    cr_assert_eq(memcmp(mac, A, 6), 0);
    cr_assert_not(tracker_resolve_id(t, "nobody", mac));
    struct tracker_stats st;
    tracker_get_stats(t, &st);
    cr_assert_eq(st.no_mac, 2);
}

Test(tracker, bad_arguments)
{
    static const uint8_t zero[6] = {0}, bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(tracker_record(t, zero, TRACKER_STAGE_LOADER, 0), TRACKER_ERR_MAC);
    cr_assert_eq(tracker_record(t, bcast, TRACKER_STAGE_LOADER, 0), TRACKER_ERR_MAC);
    cr_assert_eq(tracker_record(t, A, TRACKER_STAGE_COUNT, 0), TRACKER_ERR_STAGE);
    cr_assert_eq(tracker_record(t, A, (enum tracker_stage)-1, 0), TRACKER_ERR_STAGE);
    cr_assert_eq(tracker_record_ip(t, 0, TRACKER_STAGE_LOADER, 0), TRACKER_ERR_NO_MAC);
    cr_assert_eq(tracker_fail(t, zero, TRACKER_FAIL_OTHER, "x"), TRACKER_ERR_MAC);
    cr_assert_eq(tracker_reset(t, zero), TRACKER_ERR_MAC);
}

Test(tracker, full_table_refuses_new_macs_but_keeps_known_ones)
{
    tracker_free(t);
    t = make(0, 0, 16); /* 16 slots, 12 usable, 2 taken by the inventory */
    uint8_t m[6] = {0x02, 0, 0, 0, 1, 0};
    int ok = 0, full = 0;
    for (int i = 0; i < 20; i++) {
        m[5] = (uint8_t)i;
        int rc = tracker_record(t, m, TRACKER_STAGE_DISCOVER, 0);
        ok += rc == TRACKER_CHANGED;
        full += rc == TRACKER_ERR_FULL;
    }
    cr_assert_eq(ok, 10);
    cr_assert_eq(full, 10);
    cr_assert_eq(tracker_record(t, A, TRACKER_STAGE_DISCOVER, 0), TRACKER_CHANGED, "inventory hosts were reserved");
    struct tracker_stats st;
    tracker_get_stats(t, &st);
    cr_assert_eq(st.full, 10);
    cr_assert_eq(st.used, 12);
}

struct visit_acc {
    char macs[8][18];
    char racks[8][TRACKER_RACK_MAX];
    int n;
};

static bool visit(void *ctx, const struct tracker_host *h)
{
    struct visit_acc *a = ctx;
    strcpy(a->macs[a->n], h->mac_str);
    strcpy(a->racks[a->n], h->rack);
    return ++a->n < 3; /* stops after three */
}

Test(tracker, foreach_inventory_order_then_strangers_by_mac)
{
    static const uint8_t s1[6] = {0x02, 0, 0, 0, 0, 0x20}, s2[6] = {0x02, 0, 0, 0, 0, 0x10};
    tracker_record(t, s1, TRACKER_STAGE_DISCOVER, 0);
    tracker_record(t, s2, TRACKER_STAGE_DISCOVER, 0);
    struct tracker_counts c;
    tracker_counts(t, &c);
    cr_assert_eq(c.hosts, 4);
    cr_assert_eq(c.stage[TRACKER_STAGE_DISCOVER], 2);
    struct visit_acc a = {.n = 0};
    tracker_foreach(t, visit, &a);
    cr_assert_eq(a.n, 3, "stopped when asked");
    cr_assert_str_eq(a.macs[0], "52:54:00:00:00:02"); /* file order */
    cr_assert_str_eq(a.racks[0], "r2");
    cr_assert_str_eq(a.macs[1], "52:54:00:00:00:01");
    cr_assert_str_eq(a.macs[2], "02:00:00:00:00:10"); /* strangers by MAC */
    cr_assert_str_eq(a.racks[2], "");
}

Test(tracker, events_in_order_and_lost_when_lapped)
{
    tracker_free(t);
    t = make(0, 16, 0);
    struct tracker_cursor cur;
    tracker_cursor_init(t, &cur);
    uint32_t ids[64];
    bool lost = true;
    cr_assert_eq(tracker_events_read(t, &cur, ids, 64, &lost), 0);
    cr_assert_not(lost);
    rec(A, TRACKER_STAGE_DISCOVER);
    rec(B, TRACKER_STAGE_DISCOVER);
    rec(A, TRACKER_STAGE_DISCOVER); /* a repeat: no event */
    rec(A, TRACKER_STAGE_OFFERED);
    size_t n = tracker_events_read(t, &cur, ids, 64, &lost);
    cr_assert_eq(n, 3);
    cr_assert_not(lost);
    struct tracker_host ha = get(A), hb = get(B), h;
    cr_assert_eq(ids[0], ha.id);
    cr_assert_eq(ids[1], hb.id);
    cr_assert_eq(ids[2], ha.id);
    cr_assert(tracker_get_id(t, ids[1], &h));
    cr_assert_str_eq(h.hostname, "node-b");
    cr_assert_not(tracker_get_id(t, 1u << 30, &h));
    /* a reader that does not read for more than the ring loses events, and is told */
    for (int i = 0; i < 40; i++)
        tracker_fail(t, A, TRACKER_FAIL_OTHER, "again");
    n = tracker_events_read(t, &cur, ids, 64, &lost);
    cr_assert(lost);
    cr_assert_eq(n, 16);
    cr_assert_eq(cur.next, tracker_events_head(t));
    /* a partial read continues where it stopped */
    rec(B, TRACKER_STAGE_OFFERED);
    rec(B, TRACKER_STAGE_ACKED);
    cr_assert_eq(tracker_events_read(t, &cur, ids, 1, &lost), 1);
    cr_assert_eq(tracker_events_read(t, &cur, ids, 64, &lost), 1);
    cr_assert_not(lost);
}

Test(tracker, state_survives_a_restart)
{
    rec(A, TRACKER_STAGE_DISCOVER);
    tracker_set_ip(t, A, 0x0a000033u);
    rec(A, TRACKER_STAGE_KERNEL);
    tracker_record(t, A, TRACKER_STAGE_NONE, 12345);
    tracker_fail(t, A, TRACKER_FAIL_HTTP_4XX, "HTTP 404 GET /x y%z,w");
    rec(X, TRACKER_STAGE_INSTALLED);
    fake_now += 120000;
    tracker_tick(t, fake_now); /* A stalls */
    struct tracker_host before = get(A);
    cr_assert(before.stalled);
    tracker_free(t); /* writes the file */
    t = make(60000, 0, 0);
    struct tracker_host after = get(A);
    cr_assert_eq(after.stage, TRACKER_STAGE_KERNEL);
    cr_assert_eq(after.ip, 0x0a000033u);
    cr_assert_eq(after.bytes, 12345);
    cr_assert(after.stalled);
    cr_assert(after.failed);
    cr_assert_eq(after.failures, 1);
    cr_assert_eq(after.fail_kind, TRACKER_FAIL_HTTP_4XX);
    cr_assert_str_eq(after.fail_reason, "HTTP 404 GET /x y%z,w");
    for (int s = 0; s < TRACKER_STAGE_COUNT; s++)
        cr_assert_eq(after.ts[s], before.ts[s]);
    cr_assert_eq(after.since_ms, before.since_ms);
    cr_assert_eq(after.progress_ms, before.progress_ms);
    cr_assert_eq(get(X).stage, TRACKER_STAGE_INSTALLED);
    cr_assert_eq(tracker_record_ip(t, 0x0a000033u, TRACKER_STAGE_INITRD, 0), TRACKER_CHANGED, "address indexed");
}

static void write_state(const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, TRACKER_STATE_FILE);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void load_bad(const char *text, const char *want)
{
    tracker_free(t);
    t = NULL;
    write_state(text);
    struct tracker_config cfg = {.state_dir = dir, .no_thread = true, .clock_ms = clk};
    struct tracker *tr = NULL;
    int rc = tracker_create(&tr, &cfg, err, sizeof err);
    cr_assert_eq(rc, -EINVAL, "rc %d for %s", rc, text);
    cr_assert_null(tr);
    cr_assert_not_null(strstr(err, want), "err '%s' lacks '%s'", err, want);
}

Test(tracker, bad_state_files_are_refused_with_file_and_line)
{
    load_bad("hello\n", "hosts.state:1: not a bootstorm hosts.state file");
    load_bad("# bootstorm hosts.state 1\n52:54:00:00:00:01 stage=warp\n", "hosts.state:2: unknown stage");
    load_bad("# bootstorm hosts.state 1\n\nzz stage=kernel\n", "hosts.state:3: not a MAC address");
    load_bad("# bootstorm hosts.state 1\n52:54:00:00:00:01 stage=kernel bytes=12x\n", ":2: a field whose value");
    load_bad("# bootstorm hosts.state 1\n52:54:00:00:00:01 bytes=1\n", ":2: no stage= field");
    load_bad("# bootstorm hosts.state 1\n52:54:00:00:00:01 stage=kernel fail=1,nope,x\n", ":2: bad fail field");
    load_bad("# bootstorm hosts.state 1\n52:54:00:00:00:01 stage=kernel fail=1,other,%G1\n", ":2: bad fail field");
    load_bad("# bootstorm hosts.state 1\n52:54:00:00:00:01 stage=kernel colour=3\n", ":2: unknown field");
    load_bad("# bootstorm hosts.state 1\n52:54:00:00:00:01 stage=kernel ip=10.0.0\n", ":2: bad ip");
    /* a good file still loads (and teardown needs a tracker) */
    write_state("# bootstorm hosts.state 1\n52:54:00:00:00:01 stage=stage2 stage2=5 bytes=7\n");
    t = make(0, 0, 0);
    cr_assert_eq(get(A).stage, TRACKER_STAGE_STAGE2);
    cr_assert_eq(get(A).ts[TRACKER_STAGE_STAGE2], 5);
    cr_assert_eq(get(A).bytes, 7);
}

Test(tracker, dhcp_hook)
{
    tracker_dhcp_hook(t, DHCP_STAGE_OFFER, A, 6, 0x0a000077u);
    struct tracker_host h = get(A);
    cr_assert_eq(h.stage, TRACKER_STAGE_OFFERED);
    cr_assert_neq(h.ts[TRACKER_STAGE_DISCOVER], 0);
    tracker_dhcp_hook(t, DHCP_STAGE_ACK, A, 6, 0x0a000077u);
    h = get(A);
    cr_assert_eq(h.stage, TRACKER_STAGE_ACKED);
    cr_assert_eq(h.ip, 0x0a000077u);
    cr_assert_eq(tracker_record_ip(t, 0x0a000077u, TRACKER_STAGE_LOADER, 0), TRACKER_CHANGED);
    tracker_dhcp_hook(t, DHCP_STAGE_NAK, B, 6, 0);
    h = get(B);
    cr_assert(h.failed);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_DHCP_NAK);
    tracker_dhcp_hook(t, DHCP_STAGE_DECLINE, B, 6, 0x0a000078u);
    h = get(B);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_DHCP_DECLINE);
    cr_assert_not_null(strstr(h.fail_reason, "10.0.0.120"), "%s", h.fail_reason);
    uint8_t ib[16] = {1, 2, 3};
    tracker_dhcp_hook(t, DHCP_STAGE_OFFER, ib, 16, 0); /* InfiniBand: not tracked */
    struct tracker_counts c;
    tracker_counts(t, &c);
    cr_assert_eq(c.hosts, 2);
}

#define THREADS 4
#define HOSTS_PER 200

static void *hammer(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < HOSTS_PER; i++) {
        uint8_t m[6] = {0x02, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
        /* every thread records every host: stages race, bytes add up */
        tracker_record(t, m, (enum tracker_stage)(TRACKER_STAGE_DISCOVER + k), 10);
        tracker_record(t, m, TRACKER_STAGE_NONE, 1);
    }
    return NULL;
}

Test(tracker, concurrent_recording)
{
    tracker_free(t);
    t = make(0, 1 << 12, 2048);
    pthread_t th[THREADS];
    for (int k = 0; k < THREADS; k++)
        pthread_create(&th[k], NULL, hammer, (void *)(intptr_t)k);
    for (int k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    struct tracker_counts c;
    tracker_counts(t, &c);
    cr_assert_eq(c.hosts, HOSTS_PER + 2);
    for (int i = 0; i < HOSTS_PER; i++) {
        uint8_t m[6] = {0x02, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
        struct tracker_host h = get(m);
        cr_assert_eq(h.bytes, THREADS * 11u);
        cr_assert_eq(h.stage, TRACKER_STAGE_DISCOVER + THREADS - 1, "furthest stage wins");
        for (int k = 0; k < THREADS; k++)
            cr_assert_neq(h.ts[TRACKER_STAGE_DISCOVER + k], 0);
    }
}

static int inner_calls;
static bool inner_open(void *ctx, const char *path, uint32_t ip_be, struct vfile **out)
{
    (void)ip_be;
    inner_calls++;
    if (strcmp(path, "pxelinux.cfg/01-52-54-00-00-00-01") != 0)
        return false;
    *out = vfile_new_copy(ctx, 4);
    return *out != NULL;
}

Test(tracker, tftp_requests_through_the_vfile_provider)
{
    struct vfile_provider inner = {inner_open, "menu"};
    struct tracker_vfiles tv = {t, &inner};
    struct vfile *f = NULL;
    uint32_t a_be = htonl(0x0a00000bu); /* node-a's fixed address */
    cr_assert_not(tracker_vfile_open(&tv, "pxelinux.0", a_be, &f), "a disk file: the inner provider says no");
    cr_assert_eq(get(A).stage, TRACKER_STAGE_LOADER);
    cr_assert(tracker_vfile_open(&tv, "pxelinux.cfg/01-52-54-00-00-00-01", a_be, &f));
    cr_assert_not_null(f);
    cr_assert_eq(f->size, 4);
    vfile_unref(f);
    cr_assert_eq(get(A).stage, TRACKER_STAGE_CONFIG);
    cr_assert_eq(inner_calls, 2);
    /* no inner provider: recorded all the same, never virtual */
    struct tracker_vfiles bare = {t, NULL};
    cr_assert_not(tracker_vfile_open(&bare, "images/vmlinuz", a_be, &f));
    cr_assert_eq(get(A).stage, TRACKER_STAGE_KERNEL);
    /* an address nobody knows changes nothing */
    cr_assert_not(tracker_vfile_open(&bare, "images/initrd.img", htonl(0x0a0000f0u), &f));
    cr_assert_eq(get(A).stage, TRACKER_STAGE_KERNEL);
}

/* ---- the TFTP done hook ---- */

static const uint32_t A_IP = 0x0a00000bu; /* node-a's fixed address, 10.0.0.11 */

static void tftp_end(const char *path, enum tftp_done_outcome o, uint16_t code, bool oack, uint64_t bytes,
                     uint64_t size)
{
    fake_now += 1000;
    struct tftp_done_info d = {.client_ip = htonl(A_IP), .client_port = 2070, .path = path, .outcome = o,
                               .error_code = code, .oack = oack, .bytes = bytes, .size = size, .blksize = 1408,
                               .window = 1, .reason = "x"};
    tracker_tftp_done(t, &d);
}

static struct tracker_stats stats(void)
{
    struct tracker_stats st;
    tracker_get_stats(t, &st);
    return st;
}

Test(tracker, tftp_timeout_is_a_failure_with_its_bytes)
{
    rec(A, TRACKER_STAGE_KERNEL);
    tftp_end("images/vmlinuz", TFTP_DONE_TIMEOUT, 0, true, 2816, 300000);
    struct tracker_host h = get(A);
    cr_assert(h.failed);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_TFTP_TIMEOUT);
    cr_assert_eq(h.fail_ms, fake_now);
    cr_assert_str_eq(h.fail_reason, "tftp timeout on images/vmlinuz after 2816 of 300000 bytes");
    cr_assert_eq(h.bytes, 2816);
    cr_assert_eq(h.stage, TRACKER_STAGE_KERNEL, "a failure does not move the stage");
    cr_assert_eq(stats().failures[TRACKER_FAIL_TFTP_TIMEOUT], 1);
    /* the retry succeeds: bytes are progress, the host is no longer failed */
    tftp_end("images/vmlinuz", TFTP_DONE_COMPLETE, 0, true, 300000, 300000);
    h = get(A);
    cr_assert_not(h.failed);
    cr_assert_eq(h.bytes, 302816);
    cr_assert_eq(h.failures, 1);
}

Test(tracker, tftp_size_probe_is_counted_not_failed)
{
    rec(A, TRACKER_STAGE_ACKED);
    /* OVMF: RRQ with tsize, OACK, then ERROR 8 before any data */
    tftp_end("grubx64.efi", TFTP_DONE_CLIENT_ABORT, 8, true, 0, 1500000);
    struct tracker_host h = get(A);
    cr_assert_not(h.failed);
    cr_assert_eq(h.fail_ms, 0);
    cr_assert_eq(h.failures, 0);
    cr_assert_eq(stats().tftp_size_probes, 1);
    cr_assert_eq(stats().failures[TRACKER_FAIL_TFTP_ABORT], 0);
    /* an abort after data is real */
    tftp_end("grubx64.efi", TFTP_DONE_CLIENT_ABORT, 0, true, 14080, 1500000);
    h = get(A);
    cr_assert(h.failed);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_TFTP_ABORT);
    cr_assert_str_eq(h.fail_reason, "tftp aborted by client (ERROR 0) on grubx64.efi after 14080 bytes");
    cr_assert_eq(h.bytes, 14080);
    /* so is an ERROR with nothing negotiated: no OACK, nothing to probe */
    tftp_end("pxelinux.0", TFTP_DONE_CLIENT_ABORT, 0, false, 0, 42000);
    cr_assert_eq(get(A).failures, 2);
    cr_assert_eq(stats().tftp_size_probes, 1);
}

Test(tracker, tftp_missing_files_required_or_optional)
{
    rec(A, TRACKER_STAGE_LOADER);
    /* what shim, grub and pxelinux probe for (from the fixtures' captures) */
    const char *optional[] = {
        "debian-installer/amd64/revocations_sku.efi", "debian-installer/amd64/revocations_sbat.efi",
        "debian-installer/amd64/shim_certificate_0.efi", "/debian-installer/amd64/grub/x86_64-efi/command.lst",
        "/debian-installer/amd64/grub/grub.cfg-52:54:00:77:00:02", "pxelinux.cfg/01-52-54-00-00-00-01",
        "pxelinux.cfg/C0A8", "autoexec.ipxe",
    };
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        tftp_end(optional[i], TFTP_DONE_NOT_FOUND, 1, false, 0, 0);
    struct tracker_host h = get(A);
    cr_assert_not(h.failed);
    cr_assert_eq(h.failures, 0);
    cr_assert_eq(stats().tftp_optional_missing, sizeof optional / sizeof optional[0]);
    /* a kernel, an initrd or a loader the boot needs is a failure */
    tftp_end("/debian-installer/amd64/linux", TFTP_DONE_NOT_FOUND, 1, false, 0, 0);
    h = get(A);
    cr_assert(h.failed);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_TFTP_ERROR);
    cr_assert_str_eq(h.fail_reason, "tftp debian-installer/amd64/linux: file not found (ERROR 1)");
    tftp_end("ldlinux.c32", TFTP_DONE_NOT_FOUND, 1, false, 0, 0);
    cr_assert_eq(get(A).failures, 2);
    cr_assert_eq(stats().failures[TRACKER_FAIL_TFTP_ERROR], 2);
}

Test(tracker, tftp_refusals_writes_and_strangers)
{
    rec(A, TRACKER_STAGE_LOADER);
    /* a traversal attempt names no boot file: the service counts it, not the host */
    tftp_end("../../etc/passwd", TFTP_DONE_REFUSED, 2, false, 0, 0);
    cr_assert_eq(get(A).failures, 0);
    /* a kernel the server may not read is */
    tftp_end("images/vmlinuz", TFTP_DONE_REFUSED, 2, false, 0, 0);
    struct tracker_host h = get(A);
    cr_assert(h.failed);
    cr_assert_str_eq(h.fail_reason, "tftp images/vmlinuz refused: x (ERROR 2)");
    /* our own error on any file */
    tftp_end("boot/odd.bin", TFTP_DONE_REFUSED, 0, false, 0, 0);
    cr_assert_eq(get(A).failures, 2);
    /* writes, superseded and server-ended transfers fail nobody; their reads count */
    struct tftp_done_info w = {.client_ip = htonl(A_IP), .path = "up.log", .write = true,
                               .outcome = TFTP_DONE_TIMEOUT, .bytes = 999};
    tracker_tftp_done(t, &w);
    tftp_end("images/vmlinuz", TFTP_DONE_SUPERSEDED, 0, true, 1408, 300000);
    tftp_end("images/vmlinuz", TFTP_DONE_FAILED, 0, true, 1408, 300000);
    tftp_end("images/vmlinuz", TFTP_DONE_UNACKED, 0, true, 297184, 300000);
    h = get(A);
    cr_assert_eq(h.failures, 2);
    cr_assert_eq(h.bytes, 1408 + 1408 + 297184);
    /* an address no host has is no one's failure */
    struct tftp_done_info s = {.client_ip = htonl(0x0a0000f0u), .path = "images/vmlinuz",
                               .outcome = TFTP_DONE_TIMEOUT};
    tracker_tftp_done(t, &s);
    cr_assert_eq(stats().failures[TRACKER_FAIL_TFTP_TIMEOUT], 0);
    tracker_tftp_done(t, NULL);
}

/* ---- the journal ---- */

static void copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char a[160], b[160], buf[65536];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    FILE *in = fopen(a, "r");
    cr_assert_not_null(in, "%s", a);
    FILE *out = fopen(b, "w");
    cr_assert_not_null(out);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

static void remove_dir(const char *d)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", d, TRACKER_STATE_FILE);
    unlink(p);
    snprintf(p, sizeof p, "%s/%s", d, TRACKER_JOURNAL_FILE);
    unlink(p);
    rmdir(d);
}

/* What a kill -9 leaves: the two files as they are now, opened by a new tracker. */
static struct tracker *crash_copy(char *crash_dir)
{
    strcpy(crash_dir, "/tmp/test_tracker_crash.XXXXXX");
    cr_assert_not_null(mkdtemp(crash_dir));
    copy_file(dir, crash_dir, TRACKER_STATE_FILE);
    copy_file(dir, crash_dir, TRACKER_JOURNAL_FILE);
    struct tracker_config cfg = {.state_dir = crash_dir, .inventory = holder, .no_thread = true, .clock_ms = clk};
    struct tracker *tr = NULL;
    cr_assert_eq(tracker_create(&tr, &cfg, err, sizeof err), 0, "%s", err);
    return tr;
}

Test(tracker, journal_keeps_a_stage_without_a_clean_stop)
{
    rec(A, TRACKER_STAGE_LOADER);
    tracker_tick(t, fake_now); /* journal: loader */
    rec(A, TRACKER_STAGE_KERNEL);
    tracker_fail(t, A, TRACKER_FAIL_TFTP_TIMEOUT, "tftp timeout on images/initrd.img after 0 of 5 bytes");
    cr_assert_eq(tracker_journal_flush(t), 0);
    cr_assert_eq(tracker_journal_flush(t), 0, "nothing new: nothing written");
    struct tracker_stats st = stats();
    cr_assert_eq(st.journal_writes, 2);
    cr_assert_eq(st.journal_errors, 0);
    char crash[64];
    struct tracker *tr = crash_copy(crash);
    struct tracker_host h;
    cr_assert(tracker_get(tr, A, &h));
    cr_assert_eq(h.stage, TRACKER_STAGE_KERNEL);
    cr_assert_eq(h.ts[TRACKER_STAGE_LOADER], get(A).ts[TRACKER_STAGE_LOADER]);
    cr_assert_eq(h.ts[TRACKER_STAGE_KERNEL], get(A).ts[TRACKER_STAGE_KERNEL]);
    cr_assert_eq(h.fail_kind, TRACKER_FAIL_TFTP_TIMEOUT);
    cr_assert_str_eq(h.fail_reason, "tftp timeout on images/initrd.img after 0 of 5 bytes");
    cr_assert(h.failed);
    cr_assert_eq(h.failures, 1);
    tracker_free(tr);
    remove_dir(crash);
}

Test(tracker, journal_lines_replace_each_other_and_a_torn_tail_is_dropped)
{
    rec(A, TRACKER_STAGE_KERNEL);
    tracker_fail(t, A, TRACKER_FAIL_OTHER, "first");
    tracker_journal_flush(t);
    tracker_reset(t, A); /* a reinstall: the kernel time and the failed flag go */
    rec(A, TRACKER_STAGE_LOADER);
    tracker_journal_flush(t);
    char p[160];
    snprintf(p, sizeof p, "%s/%s", dir, TRACKER_JOURNAL_FILE);
    FILE *f = fopen(p, "a");
    cr_assert_not_null(f);
    fputs("52:54:00:00:00:02 stage=installed cycle=1 ip=10.0", f); /* a crash mid-append */
    fclose(f);
    char crash[64];
    struct tracker *tr = crash_copy(crash);
    struct tracker_host h;
    cr_assert(tracker_get(tr, A, &h));
    cr_assert_eq(h.stage, TRACKER_STAGE_LOADER);
    cr_assert_eq(h.ts[TRACKER_STAGE_KERNEL], 0, "the later line replaced the earlier one");
    cr_assert_not(h.failed);
    cr_assert_eq(h.cycles, 2);
    cr_assert(tracker_get(tr, B, &h));
    cr_assert_eq(h.stage, TRACKER_STAGE_NONE, "the torn line is not applied");
    tracker_free(tr);
    remove_dir(crash);
}

Test(tracker, snapshot_starts_a_new_epoch_and_older_journals_are_ignored)
{
    rec(A, TRACKER_STAGE_KERNEL);
    tracker_journal_flush(t);
    /* keep the journal of this epoch, as a crash between the snapshot's rename
     * and the journal's reset would */
    char crash[64];
    strcpy(crash, "/tmp/test_tracker_crash.XXXXXX");
    cr_assert_not_null(mkdtemp(crash));
    copy_file(dir, crash, TRACKER_JOURNAL_FILE);
    rec(A, TRACKER_STAGE_INITRD);
    cr_assert_eq(tracker_save(t, err, sizeof err), 0, "%s", err);
    copy_file(dir, crash, TRACKER_STATE_FILE);
    struct tracker_config cfg = {.state_dir = crash, .inventory = holder, .no_thread = true, .clock_ms = clk};
    struct tracker *tr = NULL;
    cr_assert_eq(tracker_create(&tr, &cfg, err, sizeof err), 0, "%s", err);
    struct tracker_host h;
    cr_assert(tracker_get(tr, A, &h));
    cr_assert_eq(h.stage, TRACKER_STAGE_INITRD, "the old journal did not take the host back to kernel");
    tracker_free(tr);
    remove_dir(crash);
    /* compaction in the tick: only when the journal has something */
    uint64_t snaps = stats().snapshots;
    fake_now += 5000;
    tracker_tick(t, fake_now);
    cr_assert_eq(stats().snapshots, snaps, "nothing journaled: no rewrite");
    rec(A, TRACKER_STAGE_INSTALLER_DHCP);
    fake_now += 5000;
    tracker_tick(t, fake_now);
    cr_assert_eq(stats().snapshots, snaps + 1);
    /* a journal that is not one */
    tracker_free(t);
    t = NULL;
    char jp[160];
    snprintf(jp, sizeof jp, "%s/%s", dir, TRACKER_JOURNAL_FILE);
    FILE *f = fopen(jp, "w");
    cr_assert_not_null(f);
    fputs("hello\n", f);
    fclose(f);
    struct tracker_config c2 = {.state_dir = dir, .no_thread = true, .clock_ms = clk};
    cr_assert_eq(tracker_create(&tr, &c2, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "hosts.journal:1: not a bootstorm hosts.journal file"), "%s", err);
    unlink(jp);
    t = make(0, 0, 0);
}

Test(tracker, the_thread_journals_a_stage_within_a_few_ticks)
{
    tracker_free(t);
    struct tracker_config cfg = {.state_dir = dir, .inventory = holder}; /* the real thread and clock */
    cr_assert_eq(tracker_create(&t, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tracker_record(t, A, TRACKER_STAGE_KERNEL, 0), TRACKER_CHANGED);
    char p[160], line[2048];
    snprintf(p, sizeof p, "%s/%s", dir, TRACKER_JOURNAL_FILE);
    bool found = false;
    /* well under the 2 s snapshot interval: 20 journal periods at most */
    for (int i = 0; i < 20 && !found; i++) {
        usleep(TRACKER_JOURNAL_MS * 1000);
        FILE *f = fopen(p, "r");
        cr_assert_not_null(f);
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "52:54:00:00:00:01 stage=kernel ", 31))
                found = true;
        fclose(f);
    }
    cr_assert(found, "no journal line for the kernel stage within 1 s");
}
