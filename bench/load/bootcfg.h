/* bench/load/bootcfg.h — what a loader does with its configuration file:
 * the file names it asks for, and the entry it boots.
 *
 * PXELINUX (syslinux doc/pxelinux.txt) asks, from the directory of its boot
 * file, pxelinux.cfg/<UUID>, pxelinux.cfg/01-<mac with dashes>, the client
 * address in upper-case hex with one digit fewer each time (C0A80102 ...
 * C), then pxelinux.cfg/default, and boots the first that exists.  GRUB's
 * network boot asks grub.cfg-01-<mac> then grub.cfg from its prefix.
 *
 * The parsers are pure (text in, struct out) and lenient as the loaders are:
 * unknown directives are skipped. */
#ifndef BOOTSTORM_LOAD_BOOTCFG_H
#define BOOTSTORM_LOAD_BOOTCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOOTCFG_PATH_MAX 256
#define BOOTCFG_NAMES_MAX 12

enum bootcfg_flavor { BOOTCFG_PXELINUX, BOOTCFG_GRUB };

/* The file names to try, in order, into names[i] (each BOOTCFG_PATH_MAX).
 * dir: the loader's directory with a trailing '/', or "" (PXELINUX), or the
 * GRUB prefix.  ip in network order.  Returns the count. */
unsigned bootcfg_lookup_names(enum bootcfg_flavor f, const char *dir, const uint8_t mac[6], const uint8_t uuid[16],
                              uint32_t ip, char names[BOOTCFG_NAMES_MAX][BOOTCFG_PATH_MAX]);

/* The UUID as PXELINUX writes it: lower-case hex, 8-4-4-4-12. out: 37 bytes. */
void bootcfg_uuid_str(const uint8_t uuid[16], char *out);

struct bootcfg {
    char label[64];                  /* the entry chosen */
    char kernel[BOOTCFG_PATH_MAX];   /* "" when the entry names none */
    char initrd[BOOTCFG_PATH_MAX];   /* the first initrd */
    char ks[BOOTCFG_PATH_MAX];       /* inst.ks=, ks=, preseed/url= or url= from the kernel line, "" if none */
    bool localboot;                  /* the entry boots the local disk */
    unsigned entries;                /* entries (labels / menuentries) seen */
};

enum bootcfg_result {
    BOOTCFG_OK = 0,
    BOOTCFG_EMPTY = -1,    /* no entry and no kernel: nothing to boot */
    BOOTCFG_BINARY = -2,   /* NUL bytes: not a text configuration */
};

/* PXELINUX: DEFAULT/LABEL/KERNEL/LINUX/INITRD/APPEND/LOCALBOOT/MENU DEFAULT.
 * The entry is the one DEFAULT names, else the one marked MENU DEFAULT, else
 * the first; DEFAULT naming a kernel with no LABEL boots that kernel. */
int bootcfg_parse_pxelinux(const char *text, size_t len, struct bootcfg *out);
/* GRUB: "set default=N|title", menuentry { linux|linuxefi ...; initrd|initrdefi ... };
 * an entry with chainloader/exit and no linux is a local boot. */
int bootcfg_parse_grub(const char *text, size_t len, struct bootcfg *out);

#endif
