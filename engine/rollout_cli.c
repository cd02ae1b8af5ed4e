/* engine/rollout_cli.c — see rollout_cli.h. */
#include "engine/rollout_cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/inventory.h"
#include "engine/rollout.h"
#include "engine/template.h"

static void print_problem(void *ctx, const char *msg)
{
    unsigned *n = ctx;
    (*n)++;
    fprintf(stderr, "%s\n", msg);
}

int rollout_cli_check(const struct options *o)
{
    if (!o->hosts && !o->profiles) {
        fprintf(stderr, "bootstorm: check: nothing to check: give --hosts and/or --profiles\n");
        return 2;
    }
    unsigned problems = 0;
    struct rollout *r = NULL;
    int rc = rollout_create(&r, o, ROLLOUT_KEEP_GOING | ROLLOUT_READ_ONLY, print_problem, &problems);
    if (!r) {
        if (rc != -EINVAL)
            fprintf(stderr, "bootstorm: check: %s\n", strerror(-rc));
        fprintf(stderr, "bootstorm: check: %u problem%s\n", problems + (rc != -EINVAL), problems == 1 ? "" : "s");
        return 1;
    }
    rollout_check(r, print_problem, &problems); /* print_problem counts them */
    size_t hosts = rollout_host_count(r), profiles = rollout_profile_count(r);
    rollout_free(r);
    if (problems) {
        fprintf(stderr, "bootstorm: check: %u problem%s\n", problems, problems == 1 ? "" : "s");
        return 1;
    }
    printf("check: ok: %zu hosts, %zu profiles; every menu, script and kickstart renders\n", hosts, profiles);
    return 0;
}

static int parse_what(const char *s)
{
    for (int w = 0; w < ROLLOUT_WHAT_COUNT; w++)
        if (!strcmp(s, rollout_what_name((enum rollout_what)w)))
            return w;
    return -1;
}

int rollout_cli_render(const struct options *o, int argc, char **argv)
{
    if (argc < 1 || argc > 2) {
        fprintf(stderr, "usage: bootstorm render [knobs] MAC|HOSTNAME [pxelinux|grub|ipxe|kickstart]\n");
        return 2;
    }
    int what = argc == 2 ? parse_what(argv[1]) : ROLLOUT_WHAT_COUNT;
    if (what < 0) {
        fprintf(stderr, "bootstorm: render: %s: want pxelinux, grub, ipxe or kickstart\n", argv[1]);
        return 2;
    }
    unsigned problems = 0;
    struct rollout *r = NULL;
    int rc = rollout_create(&r, o, ROLLOUT_READ_ONLY, print_problem, &problems);
    if (rc < 0) {
        if (rc != -EINVAL)
            fprintf(stderr, "bootstorm: render: %s\n", strerror(-rc));
        rollout_free(r);
        return 1;
    }
    char secret[4200];
    snprintf(secret, sizeof secret, "%s/secret", o->state_dir ? o->state_dir : ".");
    if (access(secret, R_OK) != 0)
        fprintf(stderr, "bootstorm: render: note: %s cannot be read: the token shown is not the one the server uses\n",
                secret);
    int status = 0;
    for (int w = 0; w < ROLLOUT_WHAT_COUNT; w++) {
        if (what != ROLLOUT_WHAT_COUNT && w != what)
            continue;
        struct template_buf b = { 0 };
        char err[1024];
        rc = rollout_render(r, argv[0], (enum rollout_what)w, &b, err, sizeof err);
        if (what == ROLLOUT_WHAT_COUNT && rc != -ENOENT)
            printf("### %s\n", rollout_what_name((enum rollout_what)w));
        if (rc == 0) {
            fwrite(b.data, 1, b.len, stdout);
        } else if (!(what == ROLLOUT_WHAT_COUNT && w == ROLLOUT_KICKSTART && rc == -ENOENT && strstr(err, "no kickstart"))) {
            fprintf(stderr, "bootstorm: render: %s\n", err);
            status = 1;
        }
        template_buf_free(&b);
        if (rc == -ENOENT && !strstr(err, "kickstart"))
            break; /* no such host: once is enough */
    }
    rollout_free(r);
    return status;
}
