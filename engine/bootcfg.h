/* engine/bootcfg.h — what a host is served: its PXELINUX and GRUB menus, its
 * iPXE script and its kickstart, rendered in memory from the inventory, the
 * host's profile and the install-once state.  Pure functions: no I/O, no
 * globals; the caller (engine/rollout) supplies everything.
 *
 * Template variables (profile append lines and kickstarts), first match wins:
 *   hostname, ip, mac (aa:bb:cc:dd:ee:ff), mac_dashes (aa-bb-cc-dd-ee-ff),
 *   server (our address as the host sees it), http_port, base_url
 *   (http://server:port), profile, token (the host's install-once token),
 *   callback_url (http://server:port/api/hosts/MAC/installed?token=TOKEN)
 *     -- these cannot be overridden;
 *   the inventory's extra columns (rack, role, disk, ... and any of the next;
 *     an empty cell counts as not set);
 *   netmask, prefix, gateway, dns (the first name server), dns_all (all of
 *   them, blank-separated), domain -- from the --subnet holding the host's ip;
 *   label, kernel, initrd -- from the profile.
 * A variable with no value (a host in the pool has no ip; a subnet without a
 * router has no gateway) is undefined: use {{#if ip}} or {{gateway|...}}.
 *
 * In the generic menu (pxelinux.cfg/default, not per host) every host
 * variable is the empty string: an append line written for per-host menus
 * (url=.../preseed/{{mac}}.cfg) still renders, and /preseed/.cfg or /ks/ with
 * an empty id names the asking machine by its address. */
#ifndef BOOTSTORM_ENGINE_BOOTCFG_H
#define BOOTSTORM_ENGINE_BOOTCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/inventory.h"
#include "engine/profile.h"
#include "engine/template.h"

#define BOOTCFG_DNS_MAX 4

/* The host's network, from its subnet (all host byte order; 0: unknown). */
struct bootcfg_net {
    uint32_t netmask;
    uint8_t prefix;
    uint32_t gateway;
    uint32_t dns[BOOTCFG_DNS_MAX];
    unsigned ndns;
    const char *domain;          /* NULL or "": none */
};

/* The server as one client sees it. */
struct bootcfg_server {
    uint32_t addr;               /* our address on the client's network, host byte order */
    uint16_t http_port;
    bool pxelinux_ui;            /* "UI menu.c32": the module is in the TFTP root */
    unsigned timeout_s;          /* per-host menus: seconds before the default boots */
};

struct bootcfg_host {
    const struct inv_host *host; /* NULL: generic menu context */
    const struct profile *profile; /* NULL: no profile, the menu offers the local disk only */
    bool installed;              /* the host reported "installed" */
    uint32_t ip;                 /* the host's address (inventory or lease), 0: unknown */
    const char *token;           /* install-once token, NULL: token/callback_url undefined */
    struct bootcfg_net net;
};

/* Template variable lookup (template_lookup_fn) over one host. */
struct bootcfg_vars {
    const struct bootcfg_server *srv;
    const struct bootcfg_host *h;
    char ip[16], netmask[16], prefix[4], gateway[16], dns[16], dns_all[BOOTCFG_DNS_MAX * 16];
    char server[16], http_port[6], base_url[32], mac_dashes[18], callback_url[192];
};
void bootcfg_vars_init(struct bootcfg_vars *v, const struct bootcfg_server *srv, const struct bootcfg_host *h);
const char *bootcfg_var(void *vars, const char *name, size_t len);

/* Each appends to out and returns 0, -EINVAL with "FILE:LINE: problem" (or a
 * plain reason) in err, or -ENOMEM. */

/* pxelinux.cfg/<host>: the host's own entry, default unless installed (then
 * LOCALBOOT 0, when the profile says local_after_install), short timeout. */
int bootcfg_pxelinux_host(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                          char *err, size_t errlen);
/* pxelinux.cfg/default: one entry per profile, plus the local disk (the default). */
int bootcfg_pxelinux_menu(const struct bootcfg_server *srv, const struct profile_set *ps, struct template_buf *out,
                          char *err, size_t errlen);
/* grub.cfg for one host: linux/initrd from the TFTP root; installed hosts
 * default to an `exit` entry, so the firmware goes on to the next boot device. */
int bootcfg_grub_host(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                      char *err, size_t errlen);
/* grub.cfg for a client bootstorm does not know: every profile, local default. */
int bootcfg_grub_menu(const struct bootcfg_server *srv, const struct profile_set *ps, struct template_buf *out,
                      char *err, size_t errlen);
/* iPXE script: kernel and initrd over http://server:port/; installed: exit on
 * UEFI, sanboot of the first disk on BIOS. */
int bootcfg_ipxe_host(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                      char *err, size_t errlen);
/* The profile's kickstart template rendered for the host; -ENOENT when the
 * profile has none. */
int bootcfg_kickstart(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                      char *err, size_t errlen);

/* ---- names a loader asks for ---- */
enum bootcfg_name_kind {
    BOOTCFG_NAME_OTHER = 0,  /* not a configuration name */
    BOOTCFG_NAME_DEFAULT,    /* pxelinux.cfg/default, grub.cfg */
    BOOTCFG_NAME_UUID,       /* client UUID (option 97), 8-4-4-4-12 hex */
    BOOTCFG_NAME_MAC,        /* 01-aa-bb-cc-dd-ee-ff: ARP type 1 + MAC */
    BOOTCFG_NAME_IP,         /* 8 hex digits: one address */
    BOOTCFG_NAME_IP_PREFIX,  /* 1-7 hex digits: a block of addresses */
};

struct bootcfg_name {
    enum bootcfg_name_kind kind;
    uint8_t uuid[16];
    uint8_t mac[6];
    uint32_t ip;             /* IP: the address; IP_PREFIX: the prefix's bits, left-aligned */
    unsigned digits;         /* IP/IP_PREFIX: hex digits given (8 for IP) */
};

#define BOOTCFG_SEARCH_MAX 11    /* uuid, mac, 8 hex-IP forms, default */
#define BOOTCFG_NAME_LEN   40

/* What a name after "pxelinux.cfg/" refers to (hex digits in either case). */
enum bootcfg_name_kind bootcfg_pxelinux_name(const char *name, struct bootcfg_name *out);
/* The names PXELINUX tries, in its order: UUID (when uuid is not NULL),
 * 01-<mac>, the IP as 8 upper-case hex digits and its prefixes down to one
 * digit (when ip is not 0), then "default".  Returns the count. */
size_t bootcfg_pxelinux_search_order(const uint8_t *uuid, const uint8_t mac[6], uint32_t ip,
                                     char names[BOOTCFG_SEARCH_MAX][BOOTCFG_NAME_LEN]);
/* What a GRUB config file name (the last path component) refers to:
 * "grub.cfg" (DEFAULT: the asking client), "grub.cfg-01-<mac>",
 * "grub.cfg-<hex IP or prefix>", "grub.cfg-<uuid>". */
enum bootcfg_name_kind bootcfg_grub_name(const char *name, struct bootcfg_name *out);

#endif
