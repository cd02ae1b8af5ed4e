/* engine/rollout.h — the provisioning layer the services call: which machine
 * is which (inventory), what it should become (profiles), what it is served
 * (engine/bootcfg: menus, iPXE scripts, kickstarts) and whether it is done
 * (install-once state).
 *
 * For TFTP, a vfile provider (engine/vfile.h) answers the loaders'
 * configuration names in memory:
 *   .../pxelinux.cfg/01-<mac>, .../pxelinux.cfg/<8 hex digits of the IP>
 *                        the host's own menu (its entry the default, 3 s)
 *   .../pxelinux.cfg/default   the menu of every profile plus local boot
 *   .../grub.cfg         the asking client's own GRUB menu, found from its
 *                        address (inventory, else the IP resolver: the DHCP
 *                        lease table), since Debian's netboot GRUB asks for
 *                        nothing else; a client bootstorm does not know gets
 *                        the menu of every profile
 *   .../grub.cfg-01-<mac>, .../grub.cfg-<hex IP>   that host's menu
 * Any other name (UUIDs, hex-IP prefixes, files) falls through to the disk.
 *
 * For HTTP, a route handler (engine/http_service.h, http_route_fn):
 *   GET  /boot.ipxe?mac=MAC          iPXE script (no mac: the asking address)
 *   GET  /ks/ID, /preseed/ID.cfg     kickstart / preseed; ID: MAC or hostname,
 *                                    empty: the asking address
 *   GET  /api/hosts/ID               {"mac":..,"hostname":..,"installed":..}
 *   POST /api/hosts/MAC/installed?token=T   (or the token as the body, or
 *                                    token=T in it): the install-once
 *                                    callback; a wrong or missing token is a
 *                                    403 and a log line, and changes nothing
 *   POST /api/hosts/ID/reinstall     admin: boot the installer again
 *   POST /api/reload                 admin: re-read --hosts and --profiles
 * Admin calls come only from --admin-allow and, when --admin-token is set,
 * carry "Authorization: Bearer TOKEN".  Other paths fall through (false).
 *
 * Machines not in the inventory: ignored with --known-only; otherwise served
 * with --default-profile (hostname "host-<12 hex digits of the MAC>") when set.
 *
 * Threads: the provider and the route run on every worker at once.  Lookups
 * take no lock: the inventory and profiles are an immutable snapshot,
 * replaced whole by a reload (a transfer keeps the one it started with); the
 * install-once table is read with atomics.  Marking a host installed or not
 * appends a line to <state-dir>/installed and fsyncs it before answering (a
 * rare event: one per host and install). */
#ifndef BOOTSTORM_ENGINE_ROLLOUT_H
#define BOOTSTORM_ENGINE_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/http_service.h"
#include "engine/inventory.h"
#include "engine/options.h"
#include "engine/template.h"
#include "engine/vfile.h"

struct rollout;

typedef void (*rollout_report_fn)(void *ctx, const char *problem);
/* The IP → MAC lookup of the lease table: true and *mac set when ip (host
 * byte order) is leased.  Called on worker threads: must not block. */
typedef bool (*rollout_ip_resolver_fn)(void *ctx, uint32_t ip, uint8_t mac[6]);
/* One log line, without a newline. */
typedef void (*rollout_log_fn)(void *ctx, const char *line);

enum rollout_flags {
    /* bootstorm check: load what can be loaded and go on after problems
     * (rollout_create still returns -EINVAL when there were any) */
    ROLLOUT_KEEP_GOING = 1 << 0,
    /* nothing is created or written in the state directory: the secret is
     * read if it exists (else a throw-away one is used), the install-once
     * journal is only read, and marking hosts fails with -EROFS */
    ROLLOUT_READ_ONLY = 1 << 1,
};

/* Loads --hosts, --profiles, the secret and the install-once journal from
 * <state-dir>.  Every problem goes to report ("FILE:LINE: problem").  Returns
 * 0; -EINVAL when there were problems (with ROLLOUT_KEEP_GOING *out is still
 * set); another -errno (state directory, memory). */
int rollout_create(struct rollout **out, const struct options *o, unsigned flags, rollout_report_fn report, void *ctx);
void rollout_free(struct rollout *r);

void rollout_set_log(struct rollout *r, rollout_log_fn fn, void *ctx); /* default: stderr */
/* Plugs in the DHCP lease table (call before the services start). */
void rollout_set_ip_resolver(struct rollout *r, rollout_ip_resolver_fn fn, void *ctx);

/* Re-reads --hosts and --profiles (SIGHUP, POST /api/reload).  On any problem
 * the old ones stay in force and err holds the first problem and the count;
 * 0 or -EINVAL/-ENOMEM.  Safe from any thread. */
int rollout_reload(struct rollout *r, char *err, size_t errlen);

/* The published inventory, for the DHCP service's reservations. */
struct inventory_holder *rollout_inventory(struct rollout *r);

/* The TFTP hook; ctx is r. */
struct vfile_provider rollout_vfile_provider(struct rollout *r);
bool rollout_vfile_open(void *r, const char *path, uint32_t client_ip_be, struct vfile **out);
/* The HTTP hook (http_route_fn); ctx is the struct rollout. */
bool rollout_http_route(void *r, const struct http_dyn_request *req, struct http_dyn_response *resp);

/* Install-once state. */
bool rollout_installed(struct rollout *r, const uint8_t mac[6]);
/* Durable (journal line fsync'd) before it returns 0; -EROFS when read-only. */
int rollout_set_installed(struct rollout *r, const uint8_t mac[6], bool installed);

/* The boot file the profile of this machine asks for (loader_bios when efi64
 * is false, else loader_efi64), copied into out; false: none, use the
 * server's --boot-* default. */
bool rollout_loader(struct rollout *r, const uint8_t mac[6], bool efi64, char *out, size_t outlen);

/* What a host is served, for bootstorm render and tests. */
enum rollout_what {
    ROLLOUT_PXELINUX,  /* pxelinux.cfg/01-<mac> */
    ROLLOUT_GRUB,      /* grub.cfg */
    ROLLOUT_IPXE,      /* /boot.ipxe */
    ROLLOUT_KICKSTART, /* /ks/<mac> */
    ROLLOUT_WHAT_COUNT
};
const char *rollout_what_name(enum rollout_what w); /* "pxelinux", "grub", "ipxe", "kickstart" */
/* id: MAC (either separator) or hostname.  Appends to out; 0, -ENOENT (no such
 * host, or no kickstart), -EINVAL (rendering failed), -ENOMEM; err says why. */
int rollout_render(struct rollout *r, const char *id, enum rollout_what what, struct template_buf *out, char *err,
                   size_t errlen);

/* bootstorm check's second half: renders every host's menus, script and
 * kickstart and the generic menus, and checks that every kernel, initrd and
 * loader exists under --tftp-root / --http-root.  Each problem goes to
 * report; returns their number. */
unsigned rollout_check(struct rollout *r, rollout_report_fn report, void *ctx);

/* Counts for messages. */
size_t rollout_host_count(struct rollout *r);
size_t rollout_profile_count(struct rollout *r);

#endif
