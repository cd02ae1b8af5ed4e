/* engine/tracker.h — per-host rollout progress: which machine is at which
 * stage of its install, since when, what failed, and who is stuck.
 *
 * Every host has a slot, keyed by its hardware address: the hosts of the
 * inventory (claimed up front, so strangers cannot crowd them out) and every
 * other MAC the services see.  A slot keeps, for the current install cycle, a
 * wall-clock timestamp (ms since the epoch) per stage, the furthest stage,
 * bytes served so far, the last failure (time, kind, reason) and whether it
 * is stalled (no progress for stall_after_ms).
 *
 * Cost on the hot paths (DHCP replies, TFTP requests, HTTP responses): no
 * lock, no allocation, no system call.  The slot table is preallocated open
 * addressing (a slot is claimed by CAS on its key); every field is an atomic;
 * a byte count is one atomic add; the IP → slot index that TFTP/HTTP requests
 * go through is lock-free too.  A stage change pushes one entry into a
 * lock-free broadcast ring of events, which each worker reads at its own pace
 * (tracker_events_read) to feed its Server-Sent Events streams.  Readers may
 * see a host between two fields of one update; the version number lets them
 * notice and re-read.
 *
 * A background thread (unless cfg.no_thread) every TRACKER_TICK_MS marks
 * stalled hosts, publishes byte progress as events (at most once a second
 * per host) and picks up a reloaded inventory.
 *
 * Durability: every TRACKER_JOURNAL_MS the thread drains the event ring (one
 * atomic load when nothing changed) and appends the new state of every host
 * that changed to <state-dir>/hosts.journal, one full host line each, then
 * fdatasync: a stage is on disk within ~TRACKER_JOURNAL_MS of being reached,
 * and no recording path ever makes a system call for it.  Every snapshot
 * interval (when the journal is not empty) and in tracker_free, the whole
 * table is written to <state-dir>/hosts.state (temp file, fsync, rename,
 * fsync of the directory) with a new epoch, and the journal starts again
 * under that epoch.  tracker_create loads hosts.state, then replays the
 * journal when its epoch is the state file's (an older journal was folded
 * into the snapshot already; a torn last line, from a crash mid-append, is
 * ignored), so a restart — even after kill -9 — keeps every host's state.
 *
 * How events map to stages (the rules the services rely on):
 *  - a stage seen for the first time in a cycle gets its timestamp; repeats
 *    keep the first one; a stage below the furthest one (out of order) still
 *    gets its timestamp but does not move the host back;
 *  - DHCP after the kernel or initrd was fetched and before the kickstart is
 *    the installer's DHCP (the ACK is recorded as TRACKER_STAGE_INSTALLER_DHCP);
 *  - a boot loader fetched after the kernel or initrd by a host that is not
 *    installed means the machine rebooted mid-install: a new cycle starts
 *    (failure TRACKER_FAIL_RESTART, DHCP times of that boot carried over);
 *  - an installed host that boots again (DHCP, loader, menu) stays installed;
 *    if it fetches a kernel, initrd or kickstart it is being reinstalled and
 *    a new cycle starts; tracker_reset starts one explicitly (reinstall API);
 *  - progress (for stalls) is a new stage timestamp or bytes served; a host
 *    counts as failed while its last failure is newer than its last progress;
 *  - TFTP transfer ends (tracker_tftp_done) add their bytes; a timeout, a
 *    client abort after data, or a required file missing/refused is a
 *    failure; firmware's normal probes are only counted (see there). */
#ifndef BOOTSTORM_ENGINE_TRACKER_H
#define BOOTSTORM_ENGINE_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/dhcp_service.h"
#include "engine/inventory.h"
#include "engine/tftp_service.h"
#include "engine/vfile.h"

enum tracker_stage {
    TRACKER_STAGE_NONE = 0,        /* in the inventory, not seen in this cycle */
    TRACKER_STAGE_DISCOVER,        /* firmware DHCPDISCOVER */
    TRACKER_STAGE_OFFERED,
    TRACKER_STAGE_ACKED,
    TRACKER_STAGE_LOADER,          /* boot loader (pxelinux.0, grubx64.efi, ...) */
    TRACKER_STAGE_CONFIG,          /* loader configuration / menu / iPXE script */
    TRACKER_STAGE_KERNEL,
    TRACKER_STAGE_INITRD,
    TRACKER_STAGE_INSTALLER_DHCP,  /* the installer's own DHCP */
    TRACKER_STAGE_KICKSTART,       /* kickstart / preseed */
    TRACKER_STAGE_STAGE2,          /* install.img, squashfs */
    TRACKER_STAGE_PACKAGES,        /* repository files (bytes so far) */
    TRACKER_STAGE_POSTINSTALL,     /* the %post callback arrived */
    TRACKER_STAGE_INSTALLED,       /* ... and was accepted */
    TRACKER_STAGE_COUNT
};

enum tracker_fail_kind {
    TRACKER_FAIL_DHCP_NAK,
    TRACKER_FAIL_DHCP_DECLINE,
    TRACKER_FAIL_TFTP_TIMEOUT,
    TRACKER_FAIL_TFTP_ABORT,       /* the client sent ERROR */
    TRACKER_FAIL_TFTP_ERROR,       /* we sent ERROR (not found, access) */
    TRACKER_FAIL_HTTP_4XX,
    TRACKER_FAIL_HTTP_5XX,
    TRACKER_FAIL_CALLBACK,         /* the installed callback was refused */
    TRACKER_FAIL_RESTART,          /* rebooted mid-install */
    TRACKER_FAIL_OTHER,
    TRACKER_FAIL_COUNT
};

/* Results of the recording calls. */
enum tracker_result {
    TRACKER_CHANGED = 1,           /* a new stage, failure or reset */
    TRACKER_SAME = 0,              /* a repeat, or bytes only */
    TRACKER_ERR_NO_MAC = -1,       /* an address no lease or inventory entry maps to a MAC */
    TRACKER_ERR_FULL = -2,         /* no free slot for a new MAC */
    TRACKER_ERR_STAGE = -3,        /* not a stage (or NONE where one is needed) */
    TRACKER_ERR_MAC = -4,          /* not an Ethernet address (all zero, wrong length) */
};

#define TRACKER_REASON_MAX 96      /* failure reason, NUL included (longer is cut) */
#define TRACKER_RACK_MAX 64
#define TRACKER_TICK_MS 250
#define TRACKER_JOURNAL_MS 50
#define TRACKER_STATE_FILE "hosts.state"
#define TRACKER_JOURNAL_FILE "hosts.journal"

/* Lowercase names ("discover", ..., "installer_dhcp", "installed"; "none"). */
const char *tracker_stage_name(enum tracker_stage s);
/* The stage named s, or TRACKER_ERR_STAGE. */
int tracker_stage_parse(const char *s);
const char *tracker_fail_name(enum tracker_fail_kind k); /* "dhcp_nak", ... */

/* Which stage a requested file is, from its path (no leading '/', as the
 * services normalise it), or TRACKER_STAGE_NONE.  By name: pxelinux.cfg/...,
 * grub.cfg*, *.ipxe, boot.ipxe → config; *.0, *.efi, *.kpxe, *.pxe, *.lkrn,
 * *.c32 → loader; vmlinuz*, vmlinux*, linux, bzImage → kernel; initrd*,
 * initramfs* → initrd; ks/..., preseed/..., *.ks, ks.cfg, preseed.cfg,
 * *kickstart* → kickstart; install.img, squashfs.img, *.squashfs, LiveOS/...
 * → stage2; *.rpm, *.deb, *.udeb, repodata/, Packages/, pool/ → packages.
 * api/... is never a stage. */
enum tracker_stage tracker_classify_path(const char *path);

/* IP (host order) → MAC, e.g. the DHCP lease table.  Must not block. */
typedef bool (*tracker_ip_resolver_fn)(void *ctx, uint32_t ip, uint8_t mac[6]);

struct tracker_config {
    unsigned capacity;             /* host slots (rounded up to a power of two);
                                      0 = 8192; at least twice the inventory */
    uint32_t stall_after_ms;       /* 0: never stalled */
    const char *state_dir;         /* NULL: nothing is written or loaded */
    uint32_t snapshot_interval_ms; /* full rewrite (journal compaction); 0 = 2000 */
    unsigned event_ring;           /* events kept for slow readers (power of two); 0 = 16384 */
    struct inventory_holder *inventory; /* borrowed, may be NULL; must outlive the tracker */
    bool no_thread;                /* tests: no background thread, call tracker_tick */
    uint64_t (*clock_ms)(void);    /* tests: the clock; NULL: tracker_now_ms */
};

struct tracker;

/* Creates the table and loads <state_dir>/hosts.state when it exists.
 * Returns 0, -ENOMEM, -EINVAL (a bad state file: err says "FILE:LINE: why"),
 * or the errno of reading it. */
int tracker_create(struct tracker **out, const struct tracker_config *cfg, char *err, size_t errlen);
/* Stops the thread and writes the final snapshot.  No recording call may run. */
void tracker_free(struct tracker *t);
/* Plugs in an IP → MAC lookup, tried after the tracker's own index (addresses
 * it saw acknowledged, the inventory's fixed addresses).  Call before the
 * services start. */
void tracker_set_ip_resolver(struct tracker *t, tracker_ip_resolver_fn fn, void *ctx);
/* The inventory (names, racks, fixed addresses).  Call before the services
 * start; reloads published through the holder are picked up by the tick. */
void tracker_set_inventory(struct tracker *t, struct inventory_holder *h);

/* ---- recording (any thread) ---- */

/* Records that the host reached stage (see the rules above) and adds bytes
 * to its count.  stage NONE: bytes only. */
int tracker_record(struct tracker *t, const uint8_t mac[6], enum tracker_stage stage, uint64_t bytes);
/* The same for a request from ip (host order). */
int tracker_record_ip(struct tracker *t, uint32_t ip, enum tracker_stage stage, uint64_t bytes);
/* The host's address (from DHCP), also indexed for tracker_record_ip. */
int tracker_set_ip(struct tracker *t, const uint8_t mac[6], uint32_t ip);
/* Records a failure: time, kind and reason (cut at TRACKER_REASON_MAX - 1). */
int tracker_fail(struct tracker *t, const uint8_t mac[6], enum tracker_fail_kind kind, const char *reason);
int tracker_fail_ip(struct tracker *t, uint32_t ip, enum tracker_fail_kind kind, const char *reason);
/* Starts a new install cycle: stages and bytes cleared (reinstall). */
int tracker_reset(struct tracker *t, const uint8_t mac[6]);
/* A host's id as the API takes it: a MAC (':' or '-', either case) or a
 * hostname of the inventory.  False when it is neither. */
bool tracker_resolve_id(struct tracker *t, const char *id, uint8_t mac[6]);
/* The MAC of an address, as tracker_record_ip finds it. */
bool tracker_mac_for_ip(struct tracker *t, uint32_t ip, uint8_t mac[6]);

/* ---- hooks for the services ---- */

/* The DHCP service's stage hook (a dhcp_stage_fn; arg is the tracker):
 * OFFER → discover + offered, ACK → acked (or installer_dhcp) and the
 * address, NAK and DECLINE → failures.  Only Ethernet (hlen 6) is tracked. */
void tracker_dhcp_hook(void *arg, enum dhcp_stage stage, const uint8_t *chaddr, uint8_t hlen, uint32_t ip);
/* A tracker_ip_resolver_fn over the DHCP lease table (ctx: struct dhcp_shared). */
bool tracker_dhcp_resolver(void *dhcp_shared, uint32_t ip, uint8_t mac[6]);

/* The TFTP service asks its vfile provider first for every read request, so
 * a provider in front of the real one sees them all: it records the stage
 * the path names (tracker_classify_path) for the client's address, then
 * hands the request to inner (NULL: none, every file comes from disk).
 * Make one with ctx = a struct tracker_vfiles that outlives the services. */
struct tracker_vfiles {
    struct tracker *tracker;
    const struct vfile_provider *inner;
};
bool tracker_vfile_open(void *tracker_vfiles, const char *path, uint32_t client_ip_be, struct vfile **out);

/* The TFTP service's done hook (a tftp_done_fn; arg is the tracker), once
 * per transfer end or refused read request, off the per-packet path:
 *  - the bytes acknowledged go to the host's count (progress);
 *  - a timeout is a failure ("tftp timeout on PATH after N of M bytes");
 *  - a client ERROR is a failure ("tftp aborted by client (ERROR c) on PATH
 *    after N bytes") unless nothing was delivered after an OACK: that is
 *    firmware's size probe (OVMF asks tsize, reads the OACK, sends ERROR 8),
 *    counted as stats.tftp_size_probes;
 *  - not found: a failure for a file the boot needs (loader, kernel, initrd,
 *    ...), but loaders probe for files that may not exist — configs in search
 *    order (pxelinux.cfg/..., grub.cfg-...), grub's *.lst and modules, shim's
 *    revocations_*.efi and shim_certificate_*.efi — counted as
 *    stats.tftp_optional_missing;
 *  - refused (access, traversal, I/O): a failure for a stage path, or
 *    whatever the path when the error is ours (ERROR 0);
 *  - superseded and server-ended reads (file changed, stopping): their bytes
 *    only; write requests: nothing. */
void tracker_tftp_done(void *arg, const struct tftp_done_info *d);

/* ---- reading ---- */

struct tracker_host {
    uint32_t id;                   /* slot number (events carry it) */
    uint8_t mac[6];
    char mac_str[18];
    char hostname[INV_NAME_MAX];   /* "" when not in the inventory */
    char rack[TRACKER_RACK_MAX];   /* inventory variable "rack", "" when none */
    bool known;                    /* in the inventory */
    uint32_t ip;                   /* host order; 0: unknown */
    enum tracker_stage stage;      /* furthest stage of this cycle */
    uint64_t ts[TRACKER_STAGE_COUNT]; /* ms since the epoch; 0: not reached */
    uint64_t since_ms;             /* when the current stage was reached */
    uint64_t progress_ms;          /* last progress (stage or bytes) */
    uint64_t seen_ms;              /* last time anything was heard */
    uint64_t bytes;                /* served in this cycle */
    bool stalled, failed;
    uint64_t fail_ms;              /* 0: never failed */
    enum tracker_fail_kind fail_kind;
    char fail_reason[TRACKER_REASON_MAX];
    uint32_t failures;             /* in all cycles */
    uint32_t cycles;               /* install cycles started */
    uint64_t version;              /* grows with every change */
};

/* Copies the host with that MAC; false when there is none (not seen, not in
 * the inventory). */
bool tracker_get(struct tracker *t, const uint8_t mac[6], struct tracker_host *out);
/* The same by slot number. */
bool tracker_get_id(struct tracker *t, uint32_t id, struct tracker_host *out);

/* Every host: the inventory's in file order, then the others by MAC.
 * Stop early by returning false. */
typedef bool (*tracker_visit_fn)(void *ctx, const struct tracker_host *h);
void tracker_foreach(struct tracker *t, tracker_visit_fn fn, void *ctx);

struct tracker_counts {
    uint64_t hosts;
    uint64_t stage[TRACKER_STAGE_COUNT];
    uint64_t stalled, failed;
};
void tracker_counts(struct tracker *t, struct tracker_counts *out);

/* Latency histograms, observed when a stage is reached in order: seconds
 * from the previous stage; for TRACKER_STAGE_INSTALLED also a separate
 * whole-install histogram (first stage → installed, stage = COUNT). */
#define TRACKER_HIST_BUCKETS 14
extern const double tracker_hist_bounds[TRACKER_HIST_BUCKETS]; /* seconds, ascending; +Inf implied */
struct tracker_hist {
    uint64_t bucket[TRACKER_HIST_BUCKETS + 1]; /* non-cumulative; last: above every bound */
    uint64_t count;
    uint64_t sum_ms;
};
/* stage in 1..COUNT-1, or COUNT for the whole install. */
void tracker_histogram(struct tracker *t, unsigned stage, struct tracker_hist *out);

struct tracker_stats {
    uint64_t failures[TRACKER_FAIL_COUNT];
    uint64_t events;               /* pushed into the ring */
    uint64_t full;                 /* MACs not tracked: the table was full */
    uint64_t no_mac;               /* requests whose address mapped to no MAC */
    uint64_t tftp_size_probes;     /* client aborts right after the OACK (not failures) */
    uint64_t tftp_optional_missing; /* optional files not found (not failures) */
    uint64_t journal_writes, journal_errors;
    uint64_t snapshots, snapshot_errors;
    uint64_t capacity, used;
};
void tracker_get_stats(struct tracker *t, struct tracker_stats *out);
uint32_t tracker_stall_after_ms(const struct tracker *t);

/* ---- events (one reader per worker) ---- */

struct tracker_cursor {
    uint64_t next;                 /* next event sequence number to read */
};
/* A cursor at the current end (only events from now on). */
void tracker_cursor_init(struct tracker *t, struct tracker_cursor *c);
/* Up to max host ids changed since the cursor, in order (a host may appear
 * more than once).  *lost is set when the reader fell more than the ring
 * behind: events were lost and the reader should resend everything.
 * Returns how many were stored. */
size_t tracker_events_read(struct tracker *t, struct tracker_cursor *c, uint32_t *ids, size_t max, bool *lost);
/* The sequence number the next event will get. */
uint64_t tracker_events_head(struct tracker *t);

/* ---- periodic work and durability ---- */

/* What the thread does every TRACKER_TICK_MS; now_ms is wall-clock time.
 * Exposed for tests (cfg.no_thread). */
void tracker_tick(struct tracker *t, uint64_t now_ms);
/* Appends the hosts changed since the last call to the journal (what the
 * thread does every TRACKER_JOURNAL_MS).  0 or -errno. */
int tracker_journal_flush(struct tracker *t);
/* Writes <state-dir>/hosts.state now (a new epoch) and empties the journal.
 * 0 or -errno (err says why). */
int tracker_save(struct tracker *t, char *err, size_t errlen);
/* Wall-clock milliseconds, as the tracker stamps them (CLOCK_REALTIME_COARSE:
 * the resolution is the kernel's tick, 1-4 ms). */
uint64_t tracker_now_ms(void);

#endif
