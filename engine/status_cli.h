/* engine/status_cli.h — `bootstorm status [--watch] [--json] [--server URL]`:
 * asks a running server's GET /api/hosts (an HTTP/1.1 client on a plain
 * socket) and prints a table of hosts (hostname, MAC, IP, stage, time in
 * stage, last error) and the count per stage; --json prints the server's JSON
 * as it came (one document per line); --watch asks again every
 * STATUS_WATCH_MS, redrawing in place on a terminal, until interrupted.
 * --server: http://HOST[:PORT][/PREFIX] (default http://127.0.0.1:HTTP-PORT,
 * or the --listen address when it is not 0.0.0.0). */
#ifndef BOOTSTORM_ENGINE_STATUS_CLI_H
#define BOOTSTORM_ENGINE_STATUS_CLI_H

#include <stddef.h>
#include <stdint.h>

struct options;

#define STATUS_WATCH_MS 2000
#define STATUS_TIMEOUT_MS 10000 /* connect and answer, each */

enum status_exit {
    STATUS_EXIT_OK = 0,
    STATUS_EXIT_FAILED = 1,     /* server unreachable, bad answer, bad --server */
};

/* Runs the command; returns the process exit status (enum status_exit). */
int status_cli_run(const struct options *o);

/* Splits "http://HOST[:PORT][/PREFIX]" (port default 80; no trailing '/' kept
 * in prefix).  0, or -EINVAL with the reason in err. */
int status_parse_url(const char *url, char *host, size_t hostlen, uint16_t *port, char *prefix, size_t prefixlen,
                     char *err, size_t errlen);

#endif
