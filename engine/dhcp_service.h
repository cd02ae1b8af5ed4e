/* engine/dhcp_service.h — the DHCP service: proto/dhcp + engine/dhcp_policy on
 * the io core, with leases in the shared lease store.
 *
 * Two levels:
 *  - struct dhcp_shared, created once by server_run() before the workers: the
 *    lease table, one address pool per --subnet with a pool, the journal-backed
 *    lease store in --state-dir (loaded, i.e. replayed, at creation), the
 *    inventory reservations marked static in the pools, counters, and a
 *    maintenance thread (lease expiry, quarantine ends, compaction, the
 *    periodic journal sync).  proxyDHCP hands out no address and keeps no store.
 *  - struct dhcp_service, one per worker: its own UDP socket on --dhcp-port
 *    (and 4011 with --proxy-dhcp), SO_REUSEPORT + SO_BROADCAST + IP_PKTINFO
 *    (+ SO_BINDTODEVICE with --interface; relayed requests must then arrive on
 *    that interface too).
 *
 * Several workers on one port: the kernel gives every socket of a
 * SO_REUSEPORT group a copy of each broadcast datagram, so each worker's
 * socket carries a classic BPF filter that keeps a broadcast only when
 * chaddr[5] mod workers is its number (unicast passes), and the group gets a
 * reuseport program that spreads unicast (relayed) datagrams by the same byte.
 * Either way a request is handled by exactly one worker; all lease state is
 * shared, so which one does not matter.
 *
 * Durability (the --fsync-interval-ms contract of lease_journal.h): during a
 * loop turn replies are only queued.  dhcp_service_flush(), the loop's idle
 * hook, first syncs the lease store (group commit: one write, and an fsync as
 * the interval says) when an ACK is queued, then sends every queued reply in
 * sendmmsg() batches.  So an ACK never leaves before its lease is written to
 * the journal; if the sync fails the ACKs are dropped (the clients retry) and
 * OFFERs/NAKs still go.
 */
#ifndef BOOTSTORM_ENGINE_DHCP_SERVICE_H
#define BOOTSTORM_ENGINE_DHCP_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_loop;
struct options;
struct inventory_holder;
struct lease;
struct lease_store;
struct lease_table;
struct dhcp_shared;
struct dhcp_service;

/* Stages reported to the rollout tracker (issue 6). */
enum dhcp_stage {
    DHCP_STAGE_OFFER,
    DHCP_STAGE_ACK,
    DHCP_STAGE_NAK,
    DHCP_STAGE_DECLINE,
};
/* Called from worker threads when an OFFER/ACK/NAK is sent or a DECLINE is
 * recorded; ip is host order (the address offered, acknowledged or declined;
 * 0 for a NAK).  Must not block. */
typedef void (*dhcp_stage_fn)(void *arg, enum dhcp_stage stage, const uint8_t *chaddr, uint8_t hlen,
                              uint32_t ip);

/* Counters (monotonic), for metrics. */
enum dhcp_stat {
    DHCP_STAT_RECEIVED,       /* datagrams */
    DHCP_STAT_MALFORMED,      /* rejected by dhcp_parse_request, or truncated */
    DHCP_STAT_DISCOVER,
    DHCP_STAT_REQUEST,
    DHCP_STAT_DECLINE,
    DHCP_STAT_RELEASE,
    DHCP_STAT_INFORM,
    DHCP_STAT_OTHER_TYPE,     /* a client message of another type */
    DHCP_STAT_OFFERS,         /* replies sent, by kind */
    DHCP_STAT_ACKS,
    DHCP_STAT_NAKS,
    DHCP_STAT_INFORM_ACKS,
    DHCP_STAT_PROXY_OFFERS,
    DHCP_STAT_PROXY_ACKS,
    DHCP_STAT_DECLINED,       /* addresses quarantined */
    DHCP_STAT_RELEASED,
    DHCP_STAT_WITHDRAWN,      /* offers given up when the client chose another server */
    DHCP_STAT_UNKNOWN_SUBNET, /* dropped: no subnet for the relay or interface */
    DHCP_STAT_STRANGER,       /* dropped: --known-only */
    DHCP_STAT_IGNORED,        /* dropped by another rule (see the log) */
    DHCP_STAT_EXHAUSTED,      /* no free address for an OFFER */
    DHCP_STAT_STORE_ERRORS,   /* a lease could not be committed */
    DHCP_STAT_SYNC_FAILED,    /* ACKs not sent because the journal sync failed */
    DHCP_STAT_SENT,
    DHCP_STAT_SEND_ERRORS,
    DHCP_STAT_ARP_SET,        /* --dhcp-arp entries made */
    DHCP_STAT_ARP_FAILED,     /* ... that failed (the reply was broadcast instead) */
    DHCP_STAT_EXPIRED,        /* leases expired and quarantines ended by the maintenance thread */
    DHCP_STAT_COUNT
};
struct dhcp_stats {
    uint64_t v[DHCP_STAT_COUNT];
};
/** Snake-case name for metrics ("received", "offers", ...).  Static. */
const char *dhcp_stat_name(enum dhcp_stat s);

/** Creates the shared state from the options: pools, lease table, the store
 *  in o->state_dir (replayed now), inventory reservations.  inv may be NULL
 *  (no --hosts).  o and inv must outlive it.  Returns 0 or -errno with one
 *  line in err. */
int dhcp_shared_create(const struct options *o, struct inventory_holder *inv, struct dhcp_shared **out,
                       char *err, size_t errlen);
/** Stops the maintenance thread, syncs and closes the store.  No worker may
 *  still use it. */
void dhcp_shared_destroy(struct dhcp_shared *s);

/** Installs the stage callback (fn may be NULL: none).  Safe at any time. */
void dhcp_shared_set_stage_hook(struct dhcp_shared *s, dhcp_stage_fn fn, void *arg);
/** Installs the per-machine loader lookup (struct dhcp_policy_config.loader_fn); call
 *  before the workers start. */
void dhcp_shared_set_loader_hook(struct dhcp_shared *s,
                                 bool (*fn)(void *ctx, const uint8_t mac[6], bool efi64, char *out, size_t outlen),
                                 void *ctx);

/** The hardware address of the Ethernet client holding ip (host order;
 *  offered or bound), lock-free.  False when no client holds it. */
bool dhcp_leases_mac_for_ip(const struct dhcp_shared *s, uint32_t ip, uint8_t mac[6]);
/** The lease holding ip (host order), copied; false if none. */
bool dhcp_leases_lookup_ip(const struct dhcp_shared *s, uint32_t ip, struct lease *out);

/** The lease table (lock-free reads) and the store (NULL in proxy mode). */
struct lease_table *dhcp_shared_table(const struct dhcp_shared *s);
struct lease_store *dhcp_shared_store(const struct dhcp_shared *s);

void dhcp_shared_get_stats(const struct dhcp_shared *s, struct dhcp_stats *out);
/** One line for the start-up message, e.g. "dhcp on :67 (2 subnets, 14 leases)". */
void dhcp_shared_describe(const struct dhcp_shared *s, char *out, size_t len);

struct dhcp_service_config {
    struct dhcp_shared *shared;
    unsigned worker, nworkers; /* this worker's number and how many there are */
    bool quiet;                /* no per-request log lines on stdout */
};

/** Opens the worker's sockets and starts receiving.  0 or -errno with one line in err. */
int dhcp_service_start(struct dhcp_service **out, struct io_loop *loop, const struct dhcp_service_config *cfg,
                       char *err, size_t errlen);
/** The idle hook: picks up a reloaded inventory, syncs the store if an ACK
 *  waits, sends the queued replies, writes the log lines. */
void dhcp_service_flush(struct dhcp_service *s);
/** Sends what is queued, then frees.  Call after the loop stopped running. */
void dhcp_service_free(struct dhcp_service *s);

#endif
