/* bench/load/opts.h — table-driven option parsing for bootstorm-load's modes.
 *
 * A mode describes its long options as a table of opt_def (name, kind, where
 * the value goes, its range) and opts_parse() runs getopt_long over it: every
 * value is checked, a bad one is reported as
 *   bootstorm-load MODE: --NAME ARG: WANT (see bootstorm-load MODE --help)
 * and the mode's own checks (options that exclude each other...) follow. */
#ifndef BOOTSTORM_LOAD_OPTS_H
#define BOOTSTORM_LOAD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_kind {
    OPT_FLAG,    /* no argument: *(bool *)dst = true */
    OPT_BOOL,    /* yes/no (load_parse_bool) → bool */
    OPT_TRI,     /* yes/no → int 1/0 (left alone, e.g. -1 "auto", when not given) */
    OPT_UINT,    /* unsigned in [lo, hi] */
    OPT_U64,     /* uint64_t in [lo, hi] */
    OPT_SECONDS, /* double > 0 ("5", "2.5", "500ms") */
    OPT_SIZE,    /* uint64_t > 0 ("1M", "64K") */
    OPT_IP,      /* IPv4 address → uint32_t, network order */
    OPT_MAC,     /* uint8_t[6] */
    OPT_STR,     /* const char * (the argv string itself) */
    OPT_VERIFY,  /* optional argument: enum verify_kind; alone: crc32c */
    OPT_IO,      /* enum load_io */
    OPT_CHOICE,  /* one of choices[] → unsigned: values[i], or i without values */
    OPT_CALL,    /* call(arg, why, whylen); false: why is the whole message */
};

struct opt_def {
    const char *name;
    enum opt_kind kind;
    void *dst;
    uint64_t lo, hi;              /* OPT_UINT, OPT_U64 */
    const char *want;             /* after "--NAME ARG: "; NULL: "want LO-HI" or the kind's usual text */
    const char *const *choices;   /* OPT_CHOICE: NULL-terminated */
    const unsigned *values;       /* OPT_CHOICE: optional */
    bool (*call)(const char *arg, char *why, size_t whylen); /* OPT_CALL */
};

/* One table row: OPT_DEF("port", OPT_UINT, &port, .lo = 1, .hi = 65535) */
#define OPT_DEF(name_, kind_, dst_, ...) {.name = (name_), .kind = (kind_), .dst = (dst_), __VA_ARGS__}
#define OPT_END {.name = NULL}

enum opts_result {
    OPTS_OK,    /* all parsed */
    OPTS_HELP,  /* --help or -h: usage printed on stdout */
    OPTS_USAGE, /* a bad option or value: reported on stderr */
};

/* Parses argv[1..] (getopt_long, from optind 1) against defs, which ends with
 * an entry whose name is NULL (at most OPTS_MAX entries).  Positional
 * arguments are refused.  usage(stdout) answers --help. */
#define OPTS_MAX 64
enum opts_result opts_parse(const char *mode, const struct opt_def *defs, int argc, char **argv,
                            void (*usage)(FILE *));

#endif
