/* bench/load/opts.c — see opts.h. */
#include "bench/load/opts.h"

#include "bench/load/load.h"
#include "bench/load/verify.h"

#include <getopt.h>
#include <string.h>

/* "want LO-HI", "A or B", "A, B or C": the text a kind reports by default. */
static const char *default_want(const struct opt_def *d, char *buf, size_t len)
{
    if (d->want)
        return d->want;
    switch (d->kind) {
    case OPT_BOOL:
    case OPT_TRI: return "yes or no";
    case OPT_UINT:
    case OPT_U64:
        snprintf(buf, len, "want %llu-%llu", (unsigned long long)d->lo, (unsigned long long)d->hi);
        return buf;
    case OPT_SECONDS: return "want seconds > 0";
    case OPT_SIZE: return "want a size > 0 (e.g. 1M)";
    case OPT_IP: return "not an IPv4 address";
    case OPT_MAC: return "want aa:bb:cc:dd:ee:ff";
    case OPT_IO: return "auto, uring or epoll";
    case OPT_CHOICE: {
        size_t n = 0, used = 0;
        while (d->choices[n])
            n++;
        buf[0] = 0;
        for (size_t i = 0; i < n && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
                                     d->choices[i]);
        return buf;
    }
    default: return "bad value";
    }
}

/* One option's argument into its destination; false: not acceptable. */
static bool take(const struct opt_def *d, const char *a)
{
    uint64_t v;
    bool b;
    switch (d->kind) {
    case OPT_FLAG: *(bool *)d->dst = true; return true;
    case OPT_BOOL: return load_parse_bool(a, (bool *)d->dst);
    case OPT_TRI:
        if (!load_parse_bool(a, &b))
            return false;
        *(int *)d->dst = b;
        return true;
    case OPT_UINT:
        if (!load_parse_u64(a, d->lo, d->hi, &v))
            return false;
        *(unsigned *)d->dst = (unsigned)v;
        return true;
    case OPT_U64: return load_parse_u64(a, d->lo, d->hi, (uint64_t *)d->dst);
    case OPT_SECONDS: return load_parse_seconds(a, (double *)d->dst) && *(double *)d->dst > 0;
    case OPT_SIZE: return load_parse_size(a, (uint64_t *)d->dst) && *(uint64_t *)d->dst > 0;
    case OPT_IP: return load_parse_ip(a, (uint32_t *)d->dst);
    case OPT_MAC: return load_parse_mac(a, (uint8_t *)d->dst);
    case OPT_STR: *(const char **)d->dst = a; return true;
    case OPT_VERIFY:
        if (!a) {
            *(enum verify_kind *)d->dst = VERIFY_CRC32C;
            return true;
        }
        return verify_parse_kind(a, (enum verify_kind *)d->dst);
    case OPT_IO: return load_parse_io(a, (enum load_io *)d->dst);
    case OPT_CHOICE:
        for (unsigned i = 0; d->choices[i]; i++)
            if (!strcmp(a, d->choices[i])) {
                *(unsigned *)d->dst = d->values ? d->values[i] : i;
                return true;
            }
        return false;
    case OPT_CALL: return false; /* handled by the caller: it has its own message */
    }
    return false;
}

enum opts_result opts_parse(const char *mode, const struct opt_def *defs, int argc, char **argv, void (*usage)(FILE *))
{
    struct option lo[OPTS_MAX + 2];
    size_t n = 0;
    for (; defs[n].name; n++) {
        if (n == OPTS_MAX) { /* a table this long is a programming error: say so rather than drop options */
            load_usage_error(mode, "internal: more than %d options", OPTS_MAX);
            return OPTS_USAGE;
        }
        int has = defs[n].kind == OPT_FLAG ? no_argument : defs[n].kind == OPT_VERIFY ? optional_argument
                                                                                      : required_argument;
        lo[n] = (struct option){defs[n].name, has, NULL, 256 + (int)n};
    }
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){NULL, 0, NULL, 0};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (o == 'h') {
            usage(stdout);
            return OPTS_HELP;
        }
        if (o < 256 || o >= 256 + (int)n) {
            load_usage_error(mode, "unknown option");
            return OPTS_USAGE;
        }
        const struct opt_def *d = &defs[o - 256];
        const char *a = optarg;
        if (d->kind == OPT_CALL) {
            char why[300];
            if (!d->call(a, why, sizeof(why))) {
                load_usage_error(mode, "%s", why);
                return OPTS_USAGE;
            }
            continue;
        }
        if (!take(d, a)) {
            char buf[160];
            if (d->kind == OPT_VERIFY) /* only ever attached: --verify=KIND */
                load_usage_error(mode, "--%s=%s: %s", d->name, a, d->want ? d->want : "crc32c, sha256 or none");
            else
                load_usage_error(mode, "--%s %s: %s", d->name, a ? a : "", default_want(d, buf, sizeof(buf)));
            return OPTS_USAGE;
        }
    }
    if (optind < argc) {
        load_usage_error(mode, "unexpected argument '%s'", argv[optind]);
        return OPTS_USAGE;
    }
    return OPTS_OK;
}
