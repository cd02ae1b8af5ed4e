/* engine/main.c — `bootstorm <command> [options]`. */
#include "engine/options.h"
#include "engine/ports.h"
#include "engine/rollout_cli.h"
#include "engine/server.h"
#include "engine/status_cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bootstorm <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve     run the DHCP, TFTP and HTTP services\n"
            "  check     load inventory, profiles and templates, render every host, report every problem\n"
            "  render    render MAC|HOSTNAME [pxelinux|grub|ipxe|kickstart]: what that host is served\n"
            "  status    per-host progress from a running server (--watch, --json, --server URL)\n"
            "  ports     print the firewall rules (nftables and iptables) the options need\n"
            "  help      this text; 'help --markdown' prints the knob table for the README\n"
            "\n"
            "'bootstorm <command> --help' lists every option of that command with its default.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2 && !strcmp(argv[2], "--markdown"))
            return options_print_markdown(stdout) < 0;
        usage(stdout);
        return 0;
    }
    enum options_command c;
    if (!strcmp(cmd, "serve"))
        c = OPTIONS_CMD_SERVE;
    else if (!strcmp(cmd, "ports"))
        c = OPTIONS_CMD_PORTS;
    else if (!strcmp(cmd, "status"))
        c = OPTIONS_CMD_STATUS;
    else if (!strcmp(cmd, "check"))
        c = OPTIONS_CMD_CHECK;
    else if (!strcmp(cmd, "render"))
        c = OPTIONS_CMD_RENDER;
    else {
        fprintf(stderr, "bootstorm: unknown command '%s' (try 'bootstorm help')\n", cmd);
        return 2;
    }
    struct options o = {0};
    char err[OPTIONS_ERR_MAX];
    int first_arg = 0;
    int rc = options_parse(&o, c, argc - 1, argv + 1, c == OPTIONS_CMD_RENDER ? &first_arg : NULL, err, sizeof(err));
    if (rc == OPTIONS_HELP) {
        options_print_help(stdout, c);
        options_free(&o);
        return 0;
    }
    if (rc != OPTIONS_OK) {
        fprintf(stderr, "bootstorm: %s\n", err);
        options_free(&o);
        return 2;
    }
    int status;
    if (c == OPTIONS_CMD_STATUS)
        status = status_cli_run(&o);
    else if (c == OPTIONS_CMD_CHECK)
        status = rollout_cli_check(&o);
    else if (c == OPTIONS_CMD_RENDER)
        status = rollout_cli_render(&o, argc - 1 - first_arg, argv + 1 + first_arg);
    else if (c == OPTIONS_CMD_PORTS)
        status = ports_write(stdout, &o, PORTS_FORMAT_BOTH) != PORTS_OK;
    else if (o.state_dir && mkdir(o.state_dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "bootstorm: --state-dir %s: cannot create: %s\n", o.state_dir, strerror(errno));
        status = 2;
    } else
        status = server_run(&o);
    options_free(&o);
    return status;
}
