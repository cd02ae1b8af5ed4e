/* engine/dhcp_policy.h — what the DHCP server answers, as pure functions.
 *
 * Given a parsed request (proto/dhcp), where it arrived, the client's
 * inventory entry and lease (copies taken by the caller) and the configuration,
 * dhcp_policy_decide() says what to do: the reply type, the subnet, the server
 * identifier and the addresses worth trying, in order.  dhcp_policy_build_reply()
 * then writes the reply for the address the caller actually obtained.  Nothing
 * here does I/O, takes a lock, allocates or reads a clock: the service
 * (engine/dhcp_service.c) claims addresses in the pools, commits leases and
 * sends; this module is what the unit tests pin down.
 *
 * Addresses: every IPv4 address in this header is in HOST byte order, as in
 * struct options, struct lease and struct inv_host (proto/dhcp.h keeps network
 * order; the conversion happens inside).
 *
 * Rules implemented (RFC 2131 unless noted):
 *  - Subnet (§4.3.1, RFC 3046): from giaddr when relayed; else from ciaddr when
 *    set (a RENEWING client unicasts from anywhere); else from the addresses of
 *    the receiving interface.  No match: ignored (DHCP_WHY_UNKNOWN_SUBNET).
 *  - Identity: leases and reservations are keyed on htype + chaddr, never on
 *    option 61 (PXE ROM, iPXE and the installer send different client-ids).
 *  - DISCOVER (§4.3.1): the reservation, else the client's current or previous
 *    address, else the requested address (50), else any free pool address.
 *  - REQUEST (§4.3.2): SELECTING (54 present: ours → ACK the requested address;
 *    another server's → withdraw our offer, silent); INIT-REBOOT (50, no 54):
 *    wrong network → NAK, a record that disagrees → NAK, no record → silent;
 *    RENEWING/REBINDING (ciaddr): the same with ciaddr.
 *  - DECLINE (§4.3.3) quarantines, RELEASE (§4.3.4) frees, INFORM (§4.3.5)
 *    answers options without an address or lease time.
 *  - Boot file (RFC 4578 §2.1 arch; PXE 2.1; UEFI 2.x HTTP boot): HTTPClient →
 *    --boot-http URL + option 60 "HTTPClient"; iPXE → --boot-ipxe URL (+ option
 *    175 with no-pxedhcp = 1); arch 0 → --boot-bios; 7/9 → --boot-efi64;
 *    11 → --boot-arm64; in the BOOTP 'file' field and option 67, next server in
 *    siaddr and option 66.  Clients without PXE markers get no boot file.
 *  - --known-only: a MAC missing from the inventory is ignored (DHCP_WHY_STRANGER).
 *  - proxyDHCP (PXE 2.1 §2.2.3): only PXE/HTTP clients; DISCOVER on 67 →
 *    OFFER without yiaddr, REQUEST/INFORM on 4011 → ACK without yiaddr, both
 *    with option 60 "PXEClient", 43 (discovery control = 8: use the boot file
 *    given) and 97 echoed.  Never an address.
 */
#ifndef BOOTSTORM_ENGINE_DHCP_POLICY_H
#define BOOTSTORM_ENGINE_DHCP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/inventory.h"
#include "engine/lease_table.h"
#include "engine/options.h"
#include "proto/dhcp.h"

#define DHCP_POLICY_MAX_CANDIDATES 4
#define DHCP_POLICY_OFFER_HOLD_S 60      /* an OFFERed address is held this long (--dhcp-offer-hold) */
#define DHCP_POLICY_DECLINE_HOLD_S 3600  /* a DECLINEd address stays out this long (--dhcp-decline-hold) */
#define DHCP_POLICY_BOOT_MAX 256         /* longest boot file / URL after expansion, NUL included */

/* The configuration the decisions read.  Strings and the subnet array are
 * borrowed (they must outlive every call); NULL or "" boot strings mean none. */
struct dhcp_policy_config {
    const struct options_subnet *subnets;
    size_t nsubnets;
    uint32_t next_server;     /* 0: the server identifier (our address on that subnet) */
    const char *boot_bios, *boot_efi64, *boot_arm64; /* TFTP paths */
    const char *boot_ipxe, *boot_http;               /* URL templates, see options.h */
    uint16_t http_port;
    bool known_only;
    bool proxy;
    uint32_t offer_hold_s;    /* --dhcp-offer-hold; 0: DHCP_POLICY_OFFER_HOLD_S */
    uint32_t decline_hold_s;  /* --dhcp-decline-hold; 0: DHCP_POLICY_DECLINE_HOLD_S */
    /* A machine's own boot file (its profile's loader_bios / loader_efi64, engine/rollout):
     * true with out filled when it has one, for BIOS (efi64 false) or x64 UEFI clients;
     * NULL: only --boot-bios / --boot-efi64.  Called on worker threads: must not block. */
    bool (*loader_fn)(void *ctx, const uint8_t mac[6], bool efi64, char *out, size_t outlen);
    void *loader_ctx;
};

/** Fills c from the parsed options (borrowing their strings). */
void dhcp_policy_config_from_options(struct dhcp_policy_config *c, const struct options *o);

/* One IPv4 address of an interface. */
struct dhcp_policy_ifaddr {
    uint32_t addr;
    uint8_t prefix;
};

/* Where a request arrived (filled by the service from IP_PKTINFO). */
struct dhcp_policy_link {
    uint32_t local;                          /* ipi_spec_dst: the address it was sent to, or
                                                the interface's for a broadcast; 0 unknown */
    const struct dhcp_policy_ifaddr *ifaddrs; /* addresses of the receiving interface */
    size_t n_ifaddrs;
    const uint32_t *own;                     /* every address of this host (server-id check) */
    size_t n_own;
    bool pxe_port;                           /* arrived on 4011 (proxyDHCP) */
};

/* Everything a decision depends on.  host and lease are copies the caller
 * looked up by chaddr (NULL: none); now is unix seconds. */
struct dhcp_policy_in {
    const struct dhcp_msg *req;
    struct dhcp_policy_link link;
    const struct inv_host *host;
    const struct lease *lease;
    int64_t now;
};

enum dhcp_policy_action {
    DHCP_POLICY_IGNORE = 0,  /* no reply, no change (why says which rule) */
    DHCP_POLICY_OFFER,       /* hold an address (candidates, then the pool), send OFFER */
    DHCP_POLICY_ACK,         /* bind candidates[0]; ACK once durable; NAK if it cannot be had */
    DHCP_POLICY_NAK,
    DHCP_POLICY_INFORM,      /* ACK without yiaddr, lease time or lease change */
    DHCP_POLICY_PROXY_OFFER, /* proxyDHCP OFFER on 67: boot information only */
    DHCP_POLICY_PROXY_ACK,   /* proxyDHCP ACK on 4011: boot information only */
    DHCP_POLICY_DECLINE,     /* quarantine candidates[0]; no reply */
    DHCP_POLICY_RELEASE,     /* the client gives candidates[0] back; no reply */
    DHCP_POLICY_WITHDRAW,    /* SELECTING another server: our offer lapses; no reply */
};

enum dhcp_policy_why {
    DHCP_WHY_OK = 0,
    DHCP_WHY_UNKNOWN_SUBNET,  /* no configured subnet for giaddr/ciaddr/interface */
    DHCP_WHY_STRANGER,        /* --known-only and chaddr is not in the inventory */
    DHCP_WHY_NOT_PXE,         /* proxyDHCP: not a PXE/HTTP boot client */
    DHCP_WHY_NOT_FOR_PORT,    /* a message type this port does not serve */
    DHCP_WHY_OTHER_SERVER,    /* server identifier names another server */
    DHCP_WHY_NO_RECORD,       /* INIT-REBOOT/RENEWING for a client we know nothing of (§4.3.2: silent) */
    DHCP_WHY_WRONG_NET,       /* requested/ciaddr outside the client's subnet (NAK) */
    DHCP_WHY_WRONG_ADDR,      /* our record names another address (NAK) */
    DHCP_WHY_NO_ADDRESS,      /* nothing to offer: no pool and no reservation */
    DHCP_WHY_NOT_HELD,        /* DECLINE/RELEASE of an address the client does not hold */
    DHCP_WHY_MALFORMED,       /* a REQUEST/INFORM without the fields its state needs */
    DHCP_WHY_COUNT
};

/** "ok", "unknown subnet", ...  Static. */
const char *dhcp_policy_why_name(enum dhcp_policy_why why);
const char *dhcp_policy_action_name(enum dhcp_policy_action a);

struct dhcp_policy_decision {
    enum dhcp_policy_action action;
    enum dhcp_policy_why why;
    int subnet;                /* index into cfg->subnets, -1 none (proxy without one) */
    uint32_t server_id;        /* option 54 and the reply's source address */
    uint32_t cand[DHCP_POLICY_MAX_CANDIDATES]; /* addresses to try, best first */
    bool cand_static[DHCP_POLICY_MAX_CANDIDATES]; /* cand[i] is the host's reservation */
    size_t ncand;
    bool alloc;                /* OFFER: then any free address of the subnet's pool */
    uint32_t lease_s;          /* lease time to grant */
};

/** Selects the subnet and the server identifier; false when no subnet fits
 *  (proxy mode always succeeds: subnet may be -1). */
bool dhcp_policy_select(const struct dhcp_policy_config *cfg, const struct dhcp_msg *req,
                        const struct dhcp_policy_link *link, int *subnet, uint32_t *server_id);

/** The decision for one request; *d is always fully written. */
void dhcp_policy_decide(const struct dhcp_policy_config *cfg, const struct dhcp_policy_in *in,
                        struct dhcp_policy_decision *d);

/* The boot information a client gets. */
enum dhcp_boot_kind {
    DHCP_BOOT_NONE = 0, /* not a network-boot client (an installer, an OS) */
    DHCP_BOOT_BIOS,     /* arch 0 */
    DHCP_BOOT_EFI64,    /* arch 7, 9 */
    DHCP_BOOT_ARM64,    /* arch 11 */
    DHCP_BOOT_IPXE,     /* user class iPXE (or option 175 sent) */
    DHCP_BOOT_HTTP,     /* vendor class HTTPClient (arch 15, 16, 19) */
};

struct dhcp_policy_boot {
    enum dhcp_boot_kind kind;
    uint32_t next_server;           /* siaddr / option 66 */
    char file[DHCP_POLICY_BOOT_MAX]; /* "" : none (the kind has no file configured) */
};

/** Which client this is (by 60, 77, 175, 93, or the arch in "PXEClient:Arch:NNNNN"). */
enum dhcp_boot_kind dhcp_policy_boot_kind(const struct dhcp_msg *req);
const char *dhcp_boot_kind_name(enum dhcp_boot_kind k);

/** The boot file for req with the template placeholders expanded: {server}
 *  (server_id), {http_port}, {mac}, {ip} (ip; "" when 0), {hostname} (the
 *  inventory's, "" without), {loader} (--boot-efi64 / --boot-arm64 by arch).
 *  A file that does not fit DHCP_POLICY_BOOT_MAX is left empty. */
void dhcp_policy_boot(const struct dhcp_policy_config *cfg, const struct dhcp_msg *req,
                      const struct inv_host *host, uint32_t server_id, uint32_t ip,
                      struct dhcp_policy_boot *out);

/** Expands placeholders of tmpl into out (cap bytes, NUL-terminated).  Unknown
 *  "{...}" are copied as they are.  Returns the length, or -1 when it does not fit. */
struct dhcp_policy_vars {
    uint32_t server, ip;
    uint16_t http_port;
    const char *mac, *hostname, *loader;
};
int dhcp_policy_expand(const char *tmpl, const struct dhcp_policy_vars *v, char *out, size_t cap);

/** The reply's message type for an action (DHCP_OFFER, DHCP_ACK, DHCP_NAK), 0
 *  for actions that send nothing. */
uint8_t dhcp_policy_reply_type(enum dhcp_policy_action a);

/**
 * Writes the reply for decision d into buf (cap bytes; DHCP_MIN_LEN at least).
 * yiaddr is the address obtained for an OFFER/ACK (ignored otherwise).
 * Options: 53, 54 first, then in the client's option 55 order: 51/58/59
 * (OFFER/ACK), 1, 28, 3, 6, 15, 12 (the inventory name), boot information
 * (siaddr, 'file', 66, 67; 60 "HTTPClient"; 175 for iPXE; 60/43/97 in proxy
 * replies); option 82 echoed last.  Optional options that do not fit the
 * client's maximum message size are left out rather than failing the reply.
 * Returns DHCP_OK and *len, or a DHCP_E* from the encoder.
 */
int dhcp_policy_build_reply(const struct dhcp_policy_config *cfg, const struct dhcp_policy_in *in,
                            const struct dhcp_policy_decision *d, uint32_t yiaddr, uint8_t *buf,
                            size_t cap, size_t *len);

/** Where the reply goes: dhcp_reply_destination(), except that a request
 *  that came to 4011 is answered at its source (peer_addr/peer_port, host
 *  order; broadcast to peer_port when the source is 0.0.0.0). */
struct dhcp_dest dhcp_policy_destination(const struct dhcp_policy_in *in, const struct dhcp_policy_decision *d,
                                         uint32_t yiaddr, uint32_t peer_addr, uint16_t peer_port);

/** The lease to commit for ip in state (LEASE_OFFERED, LEASE_BOUND,
 *  LEASE_RELEASED, LEASE_EXPIRED): key from chaddr, client-id and host name
 *  copied (host name: option 12, else the inventory's, else the old lease's),
 *  flags STATIC/KNOWN, expiry by state (offer hold, lease time, now). */
void dhcp_policy_make_lease(const struct dhcp_policy_config *cfg, const struct dhcp_policy_in *in,
                            const struct dhcp_policy_decision *d, uint32_t ip, uint8_t state,
                            struct lease *out);

/** Subnet helpers. */
uint32_t dhcp_policy_mask(uint8_t prefix);
bool dhcp_policy_in_subnet(const struct options_subnet *s, uint32_t ip);
bool dhcp_policy_in_pool(const struct options_subnet *s, uint32_t ip);

#endif
