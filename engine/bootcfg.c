/* engine/bootcfg.c — see bootcfg.h.
 *
 * References for the generated syntax: the PXELINUX and menu.c32 directives
 * of syslinux (doc/syslinux.txt, doc/menu.txt: DEFAULT, PROMPT, TIMEOUT in
 * tenths of a second, LABEL, KERNEL, INITRD, APPEND, IPAPPEND 2 = BOOTIF,
 * LOCALBOOT 0 = go on with the next boot device), GRUB 2's menuentry / linux /
 * initrd / exit, and iPXE's script commands (kernel, initrd, boot, sanboot,
 * iseq ${platform}). */
#include "engine/bootcfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void ip_str(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void bootcfg_vars_init(struct bootcfg_vars *v, const struct bootcfg_server *srv, const struct bootcfg_host *h)
{
    memset(v, 0, sizeof *v);
    v->srv = srv;
    v->h = h;
    ip_str(srv->addr, v->server);
    snprintf(v->http_port, sizeof v->http_port, "%u", srv->http_port);
    snprintf(v->base_url, sizeof v->base_url, "http://%s:%u", v->server, srv->http_port);
    if (!h || !h->host)
        return;
    if (h->ip)
        ip_str(h->ip, v->ip);
    const struct bootcfg_net *n = &h->net;
    if (n->netmask) {
        ip_str(n->netmask, v->netmask);
        snprintf(v->prefix, sizeof v->prefix, "%u", n->prefix);
    }
    if (n->gateway)
        ip_str(n->gateway, v->gateway);
    for (unsigned i = 0; i < n->ndns && i < BOOTCFG_DNS_MAX; i++) {
        char d[16];
        ip_str(n->dns[i], d);
        if (i == 0)
            memcpy(v->dns, d, sizeof d);
        size_t used = strlen(v->dns_all);
        snprintf(v->dns_all + used, sizeof v->dns_all - used, "%s%s", i ? " " : "", d);
    }
    const uint8_t *m = h->host->mac;
    snprintf(v->mac_dashes, sizeof v->mac_dashes, "%02x-%02x-%02x-%02x-%02x-%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    if (h->token)
        snprintf(v->callback_url, sizeof v->callback_url, "%s/api/hosts/%s/installed?token=%s", v->base_url,
                 h->host->mac_str, h->token);
}

static bool is(const char *name, size_t len, const char *word)
{
    return strlen(word) == len && !memcmp(name, word, len);
}

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

const char *bootcfg_var(void *vars, const char *name, size_t len)
{
    const struct bootcfg_vars *v = vars;
    const struct bootcfg_host *h = v->h;
    const struct profile *p = h ? h->profile : NULL;
    if (is(name, len, "server"))
        return v->server;
    if (is(name, len, "http_port"))
        return v->http_port;
    if (is(name, len, "base_url"))
        return v->base_url;
    if (p && is(name, len, "profile"))
        return p->name;
    if (!h || !h->host) /* generic menu: every host variable is empty (see bootcfg.h) */
        return p && is(name, len, "label") ? p->label : "";
    const struct inv_host *host = h->host;
    if (is(name, len, "hostname"))
        return host->hostname;
    if (is(name, len, "mac"))
        return host->mac_str;
    if (is(name, len, "mac_dashes"))
        return v->mac_dashes;
    if (is(name, len, "ip"))
        return nonempty(v->ip);
    if (is(name, len, "token"))
        return h->token;
    if (is(name, len, "callback_url"))
        return nonempty(v->callback_url);
    for (size_t i = 0; i < host->nvars; i++)
        if (is(name, len, host->vars[i].key) && host->vars[i].value[0]) /* an empty cell: not set */
            return host->vars[i].value;
    if (is(name, len, "netmask"))
        return nonempty(v->netmask);
    if (is(name, len, "prefix"))
        return nonempty(v->prefix);
    if (is(name, len, "gateway"))
        return nonempty(v->gateway);
    if (is(name, len, "dns"))
        return nonempty(v->dns);
    if (is(name, len, "dns_all"))
        return nonempty(v->dns_all);
    if (is(name, len, "domain"))
        return nonempty(h->net.domain);
    if (p && is(name, len, "label"))
        return p->label;
    if (p && is(name, len, "kernel"))
        return p->kernel;
    if (p && is(name, len, "initrd"))
        return p->initrd;
    return NULL;
}

/* ---- shared pieces ---------------------------------------------------------- */

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

/* The profile's kernel command line for this host, one line; line is freed on error. */
static int render_append(const struct bootcfg_server *srv, const struct bootcfg_host *h, const struct profile *p,
                         struct template_buf *line, char *err, size_t errlen)
{
    if (template_buf_append(line, "", 0) < 0)
        return oom(err, errlen);
    if (!p->append)
        return 0;
    struct bootcfg_host generic = { .profile = p };
    struct bootcfg_vars v;
    bootcfg_vars_init(&v, srv, h ? h : &generic);
    int rc = template_render(p->append, bootcfg_var, &v, line, err, errlen);
    /* a value with a line break would start a new directive in the menu */
    if (rc == 0 && strpbrk(line->data, "\r\n")) {
        snprintf(err, errlen, "%s: append for %s renders to more than one line (a variable holds a line break)",
                 p->path, h && h->host ? h->host->hostname : "the generic menu");
        rc = -EINVAL;
    }
    if (rc < 0)
        template_buf_free(line);
    return rc;
}

static bool boots_local(const struct bootcfg_host *h)
{
    return !h->profile || (h->installed && h->profile->local_after_install);
}

static int header(struct template_buf *out, const char *comment, const struct bootcfg_host *h)
{
    if (!h || !h->host)
        return template_buf_printf(out, "%s bootstorm: generic menu, machines not in the inventory\n", comment);
    return template_buf_printf(out, "%s bootstorm: %s %s profile %s%s\n", comment, h->host->hostname, h->host->mac_str,
                               h->profile ? h->profile->name : "(none)", h->installed ? " (installed)" : "");
}

/* ---- menus: PXELINUX and GRUB say the same things in two dialects -------------- */

struct menu_dialect {
    /* after the comment header: timeout and default of one host's menu / the generic menu */
    int (*host_head)(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out);
    int (*menu_head)(const struct bootcfg_server *srv, struct template_buf *out);
    int (*entry)(struct template_buf *out, const char *id, const struct profile *p, const char *title,
                 const char *append);
    int (*local)(struct template_buf *out);
};

/* One host's menu: its install entry (default unless it boots locally) and local boot. */
static int render_host(const struct menu_dialect *d, const struct bootcfg_server *srv, const struct bootcfg_host *h,
                       struct template_buf *out, char *err, size_t errlen)
{
    struct template_buf append = { 0 };
    int rc = 0;
    if (h->profile && (rc = render_append(srv, h, h->profile, &append, err, errlen)) < 0)
        return rc;
    rc = header(out, "#", h);
    if (rc == 0)
        rc = d->host_head(srv, h, out);
    if (rc == 0 && h->profile) {
        char title[256];
        snprintf(title, sizeof title, "Install %s on %s", h->profile->label, h->host->hostname);
        rc = d->entry(out, "install", h->profile, title, append.data);
    }
    if (rc == 0)
        rc = d->local(out);
    template_buf_free(&append);
    return rc < 0 ? oom(err, errlen) : 0;
}

/* The generic menu for machines not in the inventory: every profile, local boot by default. */
static int render_menu(const struct menu_dialect *d, const struct bootcfg_server *srv, const struct profile_set *ps,
                       struct template_buf *out, char *err, size_t errlen)
{
    int rc = header(out, "#", NULL);
    if (rc == 0)
        rc = d->menu_head(srv, out);
    if (rc < 0)
        return oom(err, errlen);
    for (size_t i = 0; i < profile_set_count(ps); i++) {
        const struct profile *p = profile_set_at(ps, i);
        struct template_buf append = { 0 };
        rc = render_append(srv, NULL, p, &append, err, errlen);
        if (rc < 0)
            return rc;
        rc = d->entry(out, p->name, p, p->label, append.data);
        template_buf_free(&append);
        if (rc < 0)
            return oom(err, errlen);
    }
    return d->local(out) < 0 ? oom(err, errlen) : 0;
}

/* ---- PXELINUX ---------------------------------------------------------------- */

static int pxe_entry(struct template_buf *out, const char *label, const struct profile *p, const char *title,
                     const char *append)
{
    int rc = template_buf_printf(out, "LABEL %s\n  MENU LABEL %s\n  KERNEL %s\n", label, title, p->kernel);
    if (rc == 0 && p->initrd)
        rc = template_buf_printf(out, "  INITRD %s\n", p->initrd);
    if (rc == 0 && *append)
        rc = template_buf_printf(out, "  APPEND %s\n", append);
    /* BOOTIF=01-<mac> on the command line: the installer then configures the
     * NIC it booted from, not the first one it finds */
    if (rc == 0)
        rc = template_buf_puts(out, "  IPAPPEND 2\n");
    return rc;
}

static int pxe_local(struct template_buf *out)
{
    return template_buf_puts(out, "LABEL local\n  MENU LABEL Boot from local disk\n  LOCALBOOT 0\n");
}

static int pxe_host_head(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out)
{
    char ip[24] = "";
    if (h->ip) {
        char dotted[16];
        ip_str(h->ip, dotted);
        snprintf(ip, sizeof ip, " (%s)", dotted);
    }
    int rc = srv->pxelinux_ui ? template_buf_puts(out, "UI menu.c32\n") : 0;
    /* PROMPT 0: without a UI module the default boots at once; with one, after the timeout */
    return rc ? rc
              : template_buf_printf(out, "PROMPT 0\nTIMEOUT %u\nDEFAULT %s\nMENU TITLE %s%s\n", srv->timeout_s * 10,
                                    boots_local(h) ? "local" : "install", h->host->hostname, ip);
}

static int pxe_menu_head(const struct bootcfg_server *srv, struct template_buf *out)
{
    int rc = srv->pxelinux_ui ? template_buf_puts(out, "UI menu.c32\n") : 0;
    /* no per-host default here: wait longer, a person may be at the console */
    return rc ? rc
              : template_buf_printf(out, "PROMPT 1\nTIMEOUT %u\nDEFAULT local\nMENU TITLE bootstorm\n",
                                    srv->timeout_s * 10 * 5);
}

static const struct menu_dialect pxelinux_dialect = {
    .host_head = pxe_host_head, .menu_head = pxe_menu_head, .entry = pxe_entry, .local = pxe_local,
};

int bootcfg_pxelinux_host(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                          char *err, size_t errlen)
{
    return render_host(&pxelinux_dialect, srv, h, out, err, errlen);
}

int bootcfg_pxelinux_menu(const struct bootcfg_server *srv, const struct profile_set *ps, struct template_buf *out,
                          char *err, size_t errlen)
{
    return render_menu(&pxelinux_dialect, srv, ps, out, err, errlen);
}

/* ---- GRUB ----------------------------------------------------------------------- */

/* A word GRUB's shell passes on unchanged, or else one in single quotes
 * (where nothing is special; a quote itself is written '\''). */
static int grub_word(struct template_buf *out, const char *w, size_t n)
{
    bool plain = n > 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)w[i]) && !strchr("_.,:/=+@%-", w[i]))
            plain = false;
    if (plain)
        return template_buf_append(out, w, n);
    int rc = template_buf_append(out, "'", 1);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = w[i] == '\'' ? template_buf_append(out, "'\\''", 4) : template_buf_append(out, &w[i], 1);
    return rc ? rc : template_buf_append(out, "'", 1);
}

static int grub_args(struct template_buf *out, const char *s)
{
    int rc = 0;
    while (rc == 0 && *s) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strcspn(s, " \t");
        if (n)
            rc = template_buf_append(out, " ", 1) ? -ENOMEM : grub_word(out, s, n);
        s += n;
    }
    return rc;
}

static int grub_entry(struct template_buf *out, const char *id, const struct profile *p, const char *title,
                      const char *append)
{
    int rc = template_buf_puts(out, "menuentry ");
    if (rc == 0)
        rc = grub_word(out, title, strlen(title));
    if (rc == 0)
        rc = template_buf_printf(out, " --id %s {\n    linux /%s", id, p->kernel);
    if (rc == 0)
        rc = grub_args(out, append);
    if (rc == 0)
        rc = template_buf_puts(out, "\n");
    if (rc == 0 && p->initrd)
        rc = template_buf_printf(out, "    initrd /%s\n", p->initrd);
    return rc ? rc : template_buf_puts(out, "}\n");
}

/* Local boot from GRUB on UEFI: a plain `exit` returns success to the firmware, and
 * OVMF (as the UEFI spec allows) then opens its boot menu instead of trying the disk
 * (found by tests/e2e case 5).  So look for the installed system's loader on any ESP
 * and chain to it; only when none is found fall back to exit. */
#define GRUB_LOCAL_LOADERS                                                                                    \
    "/EFI/debian/shimx64.efi /EFI/ubuntu/shimx64.efi /EFI/redhat/shimx64.efi /EFI/centos/shimx64.efi "      \
    "/EFI/rocky/shimx64.efi /EFI/almalinux/shimx64.efi /EFI/BOOT/BOOTX64.EFI"

static int grub_local(struct template_buf *out)
{
    return template_buf_puts(out, "menuentry 'Boot from local disk' --id local {\n"
                                  "    insmod part_gpt\n"
                                  "    insmod part_msdos\n"
                                  "    insmod fat\n"
                                  "    insmod chain\n"
                                  "    for f in " GRUB_LOCAL_LOADERS "; do\n"
                                  "        if search --no-floppy --set=root --file $f; then chainloader $f; boot; fi\n"
                                  "    done\n"
                                  "    exit\n"
                                  "}\n");
}

static int grub_host_head(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out)
{
    return template_buf_printf(out, "set timeout=%u\nset default=%s\n", srv->timeout_s,
                               boots_local(h) ? "local" : "install");
}

static int grub_menu_head(const struct bootcfg_server *srv, struct template_buf *out)
{
    return template_buf_printf(out, "set timeout=%u\nset default=local\n", srv->timeout_s * 5);
}

static const struct menu_dialect grub_dialect = {
    .host_head = grub_host_head, .menu_head = grub_menu_head, .entry = grub_entry, .local = grub_local,
};

int bootcfg_grub_host(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                      char *err, size_t errlen)
{
    return render_host(&grub_dialect, srv, h, out, err, errlen);
}

int bootcfg_grub_menu(const struct bootcfg_server *srv, const struct profile_set *ps, struct template_buf *out,
                      char *err, size_t errlen)
{
    return render_menu(&grub_dialect, srv, ps, out, err, errlen);
}

/* ---- iPXE --------------------------------------------------------------------------- */

int bootcfg_ipxe_host(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                      char *err, size_t errlen)
{
    int rc = template_buf_puts(out, "#!ipxe\n");
    if (rc == 0)
        rc = header(out, "#", h);
    if (rc < 0)
        return oom(err, errlen);
    if (boots_local(h)) {
        rc = template_buf_printf(out,
                                 "echo bootstorm: %s %s: booting from the local disk\n"
                                 /* UEFI: back to the firmware's next boot entry; BIOS: the first disk */
                                 "iseq ${platform} efi && exit ||\n"
                                 "sanboot --no-describe --drive 0x80 || exit\n",
                                 h->host->hostname, h->profile ? "is installed" : "has no profile");
        return rc < 0 ? oom(err, errlen) : 0;
    }
    const struct profile *p = h->profile;
    struct template_buf append = { 0 };
    if ((rc = render_append(srv, h, p, &append, err, errlen)) < 0)
        return rc;
    char base[40];
    char ip[16];
    ip_str(srv->addr, ip);
    snprintf(base, sizeof base, "http://%s:%u", ip, srv->http_port);
    rc = template_buf_printf(out, "echo bootstorm: installing %s on %s\nkernel %s/%s", p->label, h->host->hostname,
                             base, p->kernel);
    /* UEFI kernels before 5.8 find the initrd only by its name on the command line */
    if (rc == 0 && p->initrd) {
        const char *slash = strrchr(p->initrd, '/');
        rc = template_buf_printf(out, " initrd=%s", slash ? slash + 1 : p->initrd);
    }
    if (rc == 0 && append.len)
        rc = template_buf_printf(out, " %s", append.data);
    if (rc == 0)
        rc = template_buf_puts(out, "\n");
    if (rc == 0 && p->initrd)
        rc = template_buf_printf(out, "initrd %s/%s\n", base, p->initrd);
    if (rc == 0)
        rc = template_buf_puts(out, "boot\n");
    template_buf_free(&append);
    return rc < 0 ? oom(err, errlen) : 0;
}

/* ---- kickstart -------------------------------------------------------------------- */

int bootcfg_kickstart(const struct bootcfg_server *srv, const struct bootcfg_host *h, struct template_buf *out,
                      char *err, size_t errlen)
{
    if (!h->profile) {
        snprintf(err, errlen, "%s has no profile", h->host ? h->host->hostname : "host");
        return -ENOENT;
    }
    if (!h->profile->ks) {
        snprintf(err, errlen, "%s: profile %s has no kickstart", h->profile->path, h->profile->name);
        return -ENOENT;
    }
    struct bootcfg_vars v;
    bootcfg_vars_init(&v, srv, h);
    return template_render(h->profile->ks, bootcfg_var, &v, out, err, errlen);
}

/* ---- names ------------------------------------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "01-aa-bb-cc-dd-ee-ff" */
static bool parse_mac_name(const char *s, uint8_t mac[6])
{
    if (strlen(s) != 20 || s[0] != '0' || s[1] != '1' || s[2] != '-')
        return false;
    return inventory_parse_mac(s + 3, mac) && s[5] == '-';
}

/* 8-4-4-4-12 hex digits */
static bool parse_uuid(const char *s, uint8_t uuid[16])
{
    if (strlen(s) != 36)
        return false;
    int k = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i++] != '-')
                return false;
            continue;
        }
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        uuid[k++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return true;
}

static enum bootcfg_name_kind parse_id(const char *s, struct bootcfg_name *out)
{
    size_t n = strlen(s);
    if (parse_mac_name(s, out->mac))
        return out->kind = BOOTCFG_NAME_MAC;
    if (parse_uuid(s, out->uuid))
        return out->kind = BOOTCFG_NAME_UUID;
    if (n >= 1 && n <= 8) {
        uint32_t v = 0;
        for (size_t i = 0; i < n; i++) {
            int d = hex_digit(s[i]);
            if (d < 0)
                return out->kind = BOOTCFG_NAME_OTHER;
            v = v << 4 | (uint32_t)d;
        }
        out->digits = (unsigned)n;
        out->ip = n == 8 ? v : v << (4 * (8 - n));
        return out->kind = n == 8 ? BOOTCFG_NAME_IP : BOOTCFG_NAME_IP_PREFIX;
    }
    return out->kind = BOOTCFG_NAME_OTHER;
}

enum bootcfg_name_kind bootcfg_pxelinux_name(const char *name, struct bootcfg_name *out)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(name, "default"))
        return out->kind = BOOTCFG_NAME_DEFAULT;
    return parse_id(name, out);
}

enum bootcfg_name_kind bootcfg_grub_name(const char *name, struct bootcfg_name *out)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(name, "grub.cfg"))
        return out->kind = BOOTCFG_NAME_DEFAULT;
    if (strncmp(name, "grub.cfg-", 9))
        return out->kind = BOOTCFG_NAME_OTHER;
    return parse_id(name + 9, out);
}

size_t bootcfg_pxelinux_search_order(const uint8_t *uuid, const uint8_t mac[6], uint32_t ip,
                                     char names[BOOTCFG_SEARCH_MAX][BOOTCFG_NAME_LEN])
{
    size_t n = 0;
    if (uuid) {
        const uint8_t *u = uuid;
        snprintf(names[n++], BOOTCFG_NAME_LEN,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
                 u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    }
    snprintf(names[n++], BOOTCFG_NAME_LEN, "01-%02x-%02x-%02x-%02x-%02x-%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
    if (ip) {
        char hex[9];
        snprintf(hex, sizeof hex, "%08X", ip);
        for (int len = 8; len >= 1; len--)
            snprintf(names[n++], BOOTCFG_NAME_LEN, "%.*s", len, hex);
    }
    snprintf(names[n++], BOOTCFG_NAME_LEN, "default");
    return n;
}
