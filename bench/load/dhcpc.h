/* bench/load/dhcpc.h — DHCP client messages sent as a relay agent.
 *
 * bootstorm-load plays the machines AND the relay between them and the
 * server: every message carries giaddr (RFC 2131 §4.1, RFC 1542 §4), so the
 * server picks the subnet from giaddr and answers to giaddr:67 — no broadcast
 * and no raw sockets, which is what makes a storm on loopback possible.  One
 * UDP socket bound to giaddr:67 carries every machine's exchange; replies are
 * matched to machines by xid (and checked against chaddr by the caller). */
#ifndef BOOTSTORM_LOAD_DHCPC_H
#define BOOTSTORM_LOAD_DHCPC_H

#include "bench/load/ev.h"
#include "proto/dhcp.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Who is asking: the machine's firmware (PXE options, client-id 01+MAC) or
 * the installer that DHCPs again (vendor class "d-i", an RFC 4361 client-id:
 * 0xff, IAID, DUID-LL — another client-id for the same hardware address). */
enum dhcpc_role { DHCPC_FIRMWARE, DHCPC_INSTALLER };

struct dhcpc_identity {
    uint8_t mac[6];
    uint8_t uuid[16]; /* option 97 (firmware) */
    uint16_t arch;    /* option 93: 0 BIOS, 7 x64 UEFI (RFC 4578 §2.1) */
    enum dhcpc_role role;
};

/* Builds a DISCOVER or REQUEST (type) from a relay: hops 1, giaddr set.
 * requested_ip/server_id (network order) go into options 50/54 when non-zero.
 * Returns DHCP_OK or a DHCP_E* code from the encoder. */
int dhcpc_build(uint8_t *buf, size_t cap, uint8_t type, uint32_t xid, const struct dhcpc_identity *id,
                uint32_t giaddr, uint32_t requested_ip, uint32_t server_id, uint16_t secs, size_t *len);

/* PXE vendor class for an architecture: "PXEClient:Arch:00000:UNDI:002001". */
void dhcpc_vendor_class(uint16_t arch, char *out, size_t cap);

struct dhcpc_relay;
/* A parsed reply (valid during the call only). */
typedef void (*dhcpc_reply_fn)(void *arg, const struct dhcp_msg *m);

struct dhcpc_relay {
    struct ev_handler h;
    struct sockaddr_in server; /* where requests go (server:67) */
    uint32_t giaddr;
    dhcpc_reply_fn on_reply;
    void *arg;
    uint64_t sent, send_errors, received, malformed, not_reply;
};

/* Binds giaddr:port (67: where servers send relayed replies; needs root or
 * CAP_NET_BIND_SERVICE).  Returns 0, or -1 with *why set. */
int dhcpc_relay_open(struct dhcpc_relay *r, uint32_t giaddr, uint16_t port, const struct sockaddr_in *server,
                     dhcpc_reply_fn fn, void *arg, char *why, size_t whylen);
/* Sends one message to the server; false when the kernel refused it. */
bool dhcpc_relay_send(struct dhcpc_relay *r, const uint8_t *pkt, size_t len);
void dhcpc_relay_close(struct dhcpc_relay *r);

#endif
