/* engine/inventory.h — the hosts of a rollout (--hosts FILE, CSV with a header):
 * columns mac, hostname, ip, profile; every further column is a template
 * variable (rack, role, disk, ...).
 *
 * An inventory is immutable once loaded.  Reloads (SIGHUP, POST /api/reload)
 * load a new one and publish it through an inventory_holder; each worker
 * thread keeps its own reference and picks up the new one between two loop
 * turns (inventory_holder_refresh from its idle hook), so lookups take no
 * lock and an in-flight transfer keeps the inventory it started with. */
#ifndef BOOTSTORM_ENGINE_INVENTORY_H
#define BOOTSTORM_ENGINE_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INV_NAME_MAX 64

struct inv_var {
    const char *key;
    const char *value;
};

struct inv_host {
    uint8_t mac[6];
    char mac_str[18];            /* "52:54:00:12:34:56", lower case */
    char hostname[INV_NAME_MAX];
    uint32_t ip;                 /* host byte order; 0: no fixed address (pool) */
    char profile[INV_NAME_MAX];  /* "" : the default profile */
    const struct inv_var *vars;  /* the extra columns, in file order */
    size_t nvars;
    unsigned line;               /* line in the CSV, for messages */
};

struct inventory;

/* Results: 0, or a negative errno: -EINVAL for a bad file (err/report says
 * where and why), -ENOMEM, or the open/read error of the file (-ENOENT, ...). */

/* Loads and validates the whole file.  On any bad row (bad MAC or IP, missing
 * hostname, duplicate MAC, hostname or IP, wrong column count, unterminated
 * quote) returns a negative code and writes "FILE:LINE: problem" into err;
 * quotes, a UTF-8 BOM and CRLF line ends are accepted. */
int inventory_load(const char *path, struct inventory **out, char *err, size_t errlen);
/* Same from memory (tests); name is used in messages. */
int inventory_parse(const char *name, const char *text, size_t len, struct inventory **out, char *err, size_t errlen);
void inventory_free(struct inventory *inv);

/* Like inventory_load/inventory_parse, but every problem of the file (not only
 * the first) is passed to report as one "FILE:LINE: problem" line; bad rows are
 * skipped so that the rest can still be checked.  *out is set only on success. */
typedef void (*inventory_report_fn)(void *ctx, const char *problem);
int inventory_load_report(const char *path, struct inventory **out, inventory_report_fn report, void *ctx);
int inventory_parse_report(const char *name, const char *text, size_t len, struct inventory **out,
                           inventory_report_fn report, void *ctx);

/* The name given at load (the file path). */
const char *inventory_name(const struct inventory *inv);

/* "aa:bb:cc:dd:ee:ff" or "aa-bb-cc-dd-ee-ff", either case, exactly two hex
 * digits per octet, nothing after.  Returns false for anything else. */
bool inventory_parse_mac(const char *s, uint8_t mac[6]);
/* Lower case with colons, NUL-terminated. */
void inventory_format_mac(const uint8_t mac[6], char out[18]);
/* RFC 1123 §2.1 host name: dot-separated labels of 1-63 letters, digits and
 * hyphens, no hyphen first or last, at most INV_NAME_MAX - 1 characters. */
bool inventory_valid_hostname(const char *s);

size_t inventory_count(const struct inventory *inv);
const struct inv_host *inventory_host(const struct inventory *inv, size_t i);
const struct inv_host *inventory_find_mac(const struct inventory *inv, const uint8_t mac[6]);
const struct inv_host *inventory_find_hostname(const struct inventory *inv, const char *hostname);
const struct inv_host *inventory_find_ip(const struct inventory *inv, uint32_t ip_host_order);
const char *inv_host_var(const struct inv_host *h, const char *key); /* NULL when absent */

/* Publication for reloads. */
struct inventory_holder;
struct inventory_holder *inventory_holder_new(struct inventory *initial); /* takes ownership; may be NULL */
void inventory_holder_free(struct inventory_holder *h);
/* Publishes a new inventory (takes ownership); the old one is freed once no
 * thread holds it. */
void inventory_holder_publish(struct inventory_holder *h, struct inventory *inv);
/* A thread's reference: refresh swaps *cur for the newest published one and
 * releases the old; call between loop turns.  Release at thread exit. */
struct inventory *inventory_holder_acquire(struct inventory_holder *h);
void inventory_holder_refresh(struct inventory_holder *h, struct inventory **cur);
void inventory_holder_release(struct inventory_holder *h, struct inventory *inv);

#endif
