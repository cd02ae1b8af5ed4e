/* engine/rollout_cli.h — the commands `bootstorm check` and `bootstorm render`.
 * Both read the same knobs as serve (--hosts, --profiles, --default-profile,
 * --tftp-root, --http-root, --state-dir, --subnet, --listen, --http-port) and
 * write nothing anywhere: the state directory is only read.
 * They return the process exit status: 0 fine, 1 problems found, 2 bad usage. */
#ifndef BOOTSTORM_ENGINE_ROLLOUT_CLI_H
#define BOOTSTORM_ENGINE_ROLLOUT_CLI_H

#include "engine/options.h"

/* Loads inventory, profiles and templates, renders every host's PXELINUX and
 * GRUB menus, iPXE script and kickstart and the generic menus, and checks that
 * every kernel, initrd and loader exists under --tftp-root / --http-root.
 * Every problem goes to stderr, one "FILE:LINE: problem" line each (all of
 * them, not just the first), then a summary line. */
int rollout_cli_check(const struct options *o);

/* render MAC|HOSTNAME [pxelinux|grub|ipxe|kickstart]: prints what that host
 * would be served (all four, each under a "### " header line, when WHAT is
 * left out).  argv[0] is the first positional argument (MAC or hostname). */
int rollout_cli_render(const struct options *o, int argc, char **argv);

#endif
