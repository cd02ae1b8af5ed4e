/* engine/profile.h — boot profiles (--profiles DIR).
 *
 * One profile per file DIR/NAME.conf (NAME: letters, digits, '-', '_', '.'),
 * `key = value` lines, '#' comment lines, blank lines; a value may be put in
 * double quotes.  Other files in DIR (the kickstart templates) are not profiles.
 *
 *   label               = text shown in menus (default: NAME)
 *   kernel              = path of the kernel, relative to the TFTP root and,
 *                         for iPXE, to the HTTP root (required)
 *   initrd              = path of the initrd, same roots (optional)
 *   append              = kernel command line: a template (engine/template.h),
 *                         rendered per host, e.g.
 *                         auto=true url=http://{{server}}:{{http_port}}/preseed/{{mac}}.cfg
 *   kickstart           = template file, relative to DIR, served per host at
 *                         /ks/<mac> and /preseed/<mac>.cfg (optional)
 *   loader_bios         = boot file handed by DHCP to BIOS clients of this
 *                         profile instead of --boot-bios (optional)
 *   loader_efi64        = the same for UEFI x64 clients, instead of --boot-efi64
 *   local_after_install = yes|no: once the host reported "installed", its menus
 *                         default to the local disk (default yes)
 *
 * Paths are relative, without "..": they name files inside the served roots. */
#ifndef BOOTSTORM_ENGINE_PROFILE_H
#define BOOTSTORM_ENGINE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/inventory.h"
#include "engine/template.h"

struct profile {
    char name[INV_NAME_MAX];
    char *label;
    char *kernel;
    char *initrd;               /* NULL: none */
    struct template *append;    /* NULL: empty command line */
    char *kickstart;            /* file name as written, NULL: none */
    struct template *ks;        /* compiled kickstart, NULL: none */
    char *loader_bios;          /* NULL: the server's default */
    char *loader_efi64;
    bool local_after_install;
    char *path;                 /* DIR/NAME.conf, for messages */
};

struct profile_set;

typedef void (*profile_report_fn)(void *ctx, const char *problem);

/* Loads every DIR/ *.conf.  Every problem of every file is passed to report
 * as one "FILE:LINE: problem" line (or "FILE: problem").
 * Returns 0 when there were none; -EINVAL when there were some: *out then
 * still holds the profiles that loaded cleanly (bootstorm check goes on with
 * them), or NULL; -ENOMEM.  Profiles are kept sorted by name. */
int profile_set_load(const char *dir, struct profile_set **out, profile_report_fn report, void *ctx);
void profile_set_free(struct profile_set *s);

size_t profile_set_count(const struct profile_set *s);
const struct profile *profile_set_at(const struct profile_set *s, size_t i);
const struct profile *profile_find(const struct profile_set *s, const char *name);
const char *profile_set_dir(const struct profile_set *s);

/* True when path is usable inside a served root: relative, no "..", no
 * empty or "." component, printable, no blanks or quotes. */
bool profile_valid_path(const char *path);

#endif
