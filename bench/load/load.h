/* bench/load/load.h — bootstorm-load's modes and the helpers they share.
 *
 *   storm      N machines through the whole rollout flow (storm.c)
 *   http       HTTP benchmark client (modes.c)
 *   tftp       TFTP benchmark client (modes.c)
 *   dhcp       DORA-rate benchmark (modes.c)
 *   --write-inventory FILE   an inventory matching --machines/--mac-base (main.c)
 *
 * Exit status of every mode: 0 all succeeded, 1 something failed (a machine,
 * a request, a transfer), 2 bad usage or a set-up error. */
#ifndef BOOTSTORM_LOAD_LOAD_H
#define BOOTSTORM_LOAD_LOAD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum load_exit {
    LOAD_EXIT_OK = 0,
    LOAD_EXIT_FAILED = 1,
    LOAD_EXIT_USAGE = 2,
};

/* Measured on the reference machine (see --help and the report). */
#define LOAD_MACHINES_PER_CORE_TEXT                                                                              \
    "measured on loopback (2 vCPUs): 1 ms of CPU per machine for its exchanges (two DORAs,\n"                 \
    "  13 TFTP requests, the kickstart), plus 0.15 s per GB of HTTP, 1 s per GB of TFTP at\n"                  \
    "  windowsize 16 and 3-4 s per GB lock-step (io_uring).  So one core plays about 1,000\n"                  \
    "  machines per second through the exchanges, or about 200 machines per minute at full\n"                  \
    "  install sizes (0.3 s of CPU each for 1 GB) — less CPU than the server spends sending it"

int storm_main(int argc, char **argv);
void storm_usage(FILE *f);
int http_mode_main(int argc, char **argv);
void http_mode_usage(FILE *f);
int tftp_mode_main(int argc, char **argv);
void tftp_mode_usage(FILE *f);
int dhcp_mode_main(int argc, char **argv);
void dhcp_mode_usage(FILE *f);
int inventory_main(int argc, char **argv);
void inventory_usage(FILE *f);

/* ---- argument parsing (each returns false on a bad value) ---- */
bool load_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
bool load_parse_seconds(const char *s, double *out); /* "5", "2.5", "500ms", "3m" */
bool load_parse_size(const char *s, uint64_t *out);  /* "1048576", "1M", "64K", "2G" */
bool load_parse_mac(const char *s, uint8_t mac[6]);
bool load_parse_ip(const char *s, uint32_t *be);
bool load_parse_bool(const char *s, bool *out);
/* base + n as a 48-bit number. */
void load_mac_add(const uint8_t base[6], uint64_t n, uint8_t out[6]);
/* The n-th host address counting from base (network order), skipping .0 and
 * .255 in the last octet: 127.77.1.254 + 1 = 127.77.2.1. */
uint32_t load_ip_nth(uint32_t base_be, uint64_t n);
const char *load_ip_str(uint32_t be, char *out); /* out: 16 bytes */
/* "bootstorm-load MODE: message" on stderr; returns LOAD_EXIT_USAGE. */
int load_usage_error(const char *mode, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "--verify KIND" as two words becomes "--verify=KIND" (getopt reads an
 * optional argument only when attached).  argv is modified in place. */
void load_join_verify(int *argc, char **argv);

/* ---- datagram I/O backend (TFTP) ---- */
enum load_io { LOAD_IO_AUTO = 0, LOAD_IO_URING, LOAD_IO_EPOLL };
bool load_parse_io(const char *s, enum load_io *out);
/* After ev_init(): io_uring for datagram sockets unless epoll is asked or it
 * is unavailable (one line on stderr says why).  False only when uring was
 * asked for explicitly and cannot be had.  The receive buffers hold a DATA
 * block of blksize, or with udp_gro a window of them. */
bool load_io_setup(const char *mode, enum load_io io, uint32_t blksize, uint32_t windowsize, bool udp_gro);
const char *load_io_name(void);

/* ---- the live progress line (stderr, only on a terminal unless forced) ---- */
void load_progress_init(int force); /* force: -1 auto (isatty), 0 off, 1 on */
bool load_progress_on(void);
void load_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void load_progress_clear(void); /* erase the line before printing the report */

#endif
