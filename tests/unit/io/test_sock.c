/* tests/unit/io/test_sock.c — socket set-up helpers (io/sock.h). */
#include "io/sock.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LO htonl(INADDR_LOOPBACK)

static int getopt_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof(v);
    cr_assert_eq(getsockopt(fd, level, name, &v, &l), 0, "getsockopt(%d, %d): %s", level, name, strerror(errno));
    return v;
}

/* ---- sock_parse_ipv4 --------------------------------------------------------- */

Test(sock, parse_ipv4_valid, .timeout = 5)
{
    uint32_t a = 0;
    cr_assert(sock_parse_ipv4("10.1.2.3", &a));
    const unsigned char *b = (const unsigned char *)&a; /* network order */
    cr_assert(b[0] == 10 && b[1] == 1 && b[2] == 2 && b[3] == 3);
    cr_assert(sock_parse_ipv4("0.0.0.0", &a));
    cr_assert_eq(a, htonl(INADDR_ANY));
    cr_assert(sock_parse_ipv4("255.255.255.255", &a));
    cr_assert_eq(a, htonl(INADDR_BROADCAST));
    cr_assert(sock_parse_ipv4("127.0.0.1", &a));
    cr_assert_eq(a, htonl(INADDR_LOOPBACK));
}

Test(sock, parse_ipv4_invalid, .timeout = 5)
{
    static const char *bad[] = {
        "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.256", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d", "1..2.3",
        "01.2.3.4", /* a leading zero reads as octal elsewhere: refused */
        "0x1.2.3.4", "1.2.3.-4", "1.2.3.4/24", "1.2.3.4:67", "::1", "localhost", "1.2.3.4\n", "4294967295",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t a = 0xdeadbeef;
        cr_assert_not(sock_parse_ipv4(bad[i], &a), "'%s' accepted", bad[i]);
        cr_assert_eq(a, 0xdeadbeef, "'%s': output written on failure", bad[i]);
    }
    uint32_t a = 0;
    cr_assert_not(sock_parse_ipv4(NULL, &a));
}

/* ---- sock_addr_str ------------------------------------------------------------ */

Test(sock, addr_str, .timeout = 5)
{
    char out[48];
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(67)};
    inet_pton(AF_INET, "192.168.1.20", &in.sin_addr);
    cr_assert_str_eq(sock_addr_str(&in, out, sizeof(out)), "192.168.1.20:67");
    cr_assert_eq(sock_addr_str(&in, out, sizeof(out)), out, "returns its buffer");

    in.sin_port = htons(65535);
    inet_pton(AF_INET, "255.255.255.255", &in.sin_addr);
    cr_assert_str_eq(sock_addr_str(&in, out, sizeof(out)), "255.255.255.255:65535");

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &in, sizeof(in));
    cr_assert_str_eq(sock_addr_str(&ss, out, sizeof(out)), "255.255.255.255:65535");

    cr_assert_str_eq(sock_addr_str(NULL, out, sizeof(out)), "?");
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/run/x"};
    cr_assert_str_eq(sock_addr_str(&un, out, sizeof(out)), "?");

    /* a short buffer is cut, never overrun */
    char small[8];
    memset(small, 'X', sizeof(small));
    sock_addr_str(&in, small, 6);
    cr_assert_str_eq(small, "255.2");
    cr_assert_eq(small[6], 'X');
}

/* ---- sock_tcp_listen ------------------------------------------------------------ */

Test(sock, tcp_listen, .timeout = 10)
{
    char err[128] = "";
    int fd = sock_tcp_listen(LO, 0, 4096, false, err, sizeof(err));
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    cr_assert_eq(getopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
    cr_assert_eq(getopt_int(fd, SOL_SOCKET, SO_REUSEPORT), 0);
    cr_assert_eq(getopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    int port = sock_local_port(fd);
    cr_assert_gt(port, 0);

    /* it accepts connections */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = LO};
    cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    int a = accept(fd, NULL, NULL);
    cr_assert_geq(a, 0);
    cr_assert_eq(sock_set_nodelay(a), 0);
    cr_assert_eq(getopt_int(a, IPPROTO_TCP, TCP_NODELAY), 1);
    close(a);
    close(c);

    /* the same port again: refused, and the line says where and why */
    int fd2 = sock_tcp_listen(LO, (uint16_t)port, 16, false, err, sizeof(err));
    cr_assert_eq(fd2, -EADDRINUSE, "got %d", fd2);
    char where[32];
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    cr_assert(strstr(err, where), "'%s' does not name %s", err, where);
    cr_assert(strstr(err, strerror(EADDRINUSE)), "'%s' gives no reason", err);
    close(fd);
}

Test(sock, tcp_listen_reuseport, .timeout = 10)
{
    char err[128] = "";
    int a = sock_tcp_listen(LO, 0, 16, true, err, sizeof(err));
    cr_assert_geq(a, 0, "%s", err);
    cr_assert_eq(getopt_int(a, SOL_SOCKET, SO_REUSEPORT), 1);
    int port = sock_local_port(a);
    int b = sock_tcp_listen(LO, (uint16_t)port, 16, true, err, sizeof(err));
    cr_assert_geq(b, 0, "one listener per worker on one port: %s", err);
    cr_assert_eq(sock_local_port(b), port);
    close(a);
    close(b);
}

Test(sock, tcp_listen_bad_address, .timeout = 10)
{
    char err[128] = "";
    uint32_t addr;
    cr_assert(sock_parse_ipv4("192.0.2.1", &addr)); /* TEST-NET-1, not ours */
    int fd = sock_tcp_listen(addr, 0, 16, false, err, sizeof(err));
    cr_assert_eq(fd, -EADDRNOTAVAIL, "got %d", fd);
    cr_assert(strstr(err, "192.0.2.1"), "'%s'", err);
}

/* ---- sock_udp_bind ----------------------------------------------------------------- */

Test(sock, udp_bind_options, .timeout = 10)
{
    char err[128] = "";
    int fd = sock_udp_bind(LO, 0, NULL, err, sizeof(err));
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    cr_assert_eq(getopt_int(fd, IPPROTO_IP, IP_PKTINFO), 0);
    cr_assert_eq(getopt_int(fd, IPPROTO_IP, IP_MTU_DISCOVER), IP_PMTUDISC_DONT, "DF never set by default");
    cr_assert_gt(sock_local_port(fd), 0);
    close(fd);

    struct sock_udp_opts df = {.pmtu_discover = true};
    fd = sock_udp_bind(LO, 0, &df, err, sizeof(err));
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert_eq(getopt_int(fd, IPPROTO_IP, IP_MTU_DISCOVER), IP_PMTUDISC_WANT, "pmtu_discover: the kernel default");
    close(fd);

    struct sock_udp_opts o = {.reuseport = true, .broadcast = true, .pktinfo = true, .rcvbuf = 1 << 20,
                              .sndbuf = 1 << 19};
    fd = sock_udp_bind(htonl(INADDR_ANY), 0, &o, err, sizeof(err));
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert_eq(getopt_int(fd, SOL_SOCKET, SO_REUSEPORT), 1);
    cr_assert_eq(getopt_int(fd, SOL_SOCKET, SO_BROADCAST), 1);
    cr_assert_eq(getopt_int(fd, IPPROTO_IP, IP_PKTINFO), 1);
    /* the kernel doubles what it is given, capped by net.core.[rw]mem_max */
    cr_assert_gt(getopt_int(fd, SOL_SOCKET, SO_RCVBUF), 212992);
    cr_assert_gt(getopt_int(fd, SOL_SOCKET, SO_SNDBUF), 212992);
    close(fd);
}

Test(sock, tcp_congestion, .timeout = 10)
{
    char err[128] = "", name[32] = "";
    int fd = sock_tcp_listen(LO, 0, 16, false, err, sizeof(err));
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert_eq(sock_set_congestion(fd, "reno"), 0); /* built into every kernel */
    cr_assert_eq(sock_get_congestion(fd, name, sizeof(name)), 0);
    cr_expect_str_eq(name, "reno");
    cr_expect_eq(sock_set_congestion(fd, "no-such-cc"), -ENOENT);
    cr_assert_eq(sock_get_congestion(fd, name, sizeof(name)), 0);
    cr_expect_str_eq(name, "reno", "a failed set leaves it as it was");

    /* an accepted socket has the listener's */
    int port = sock_local_port(fd);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = LO};
    cr_assert_eq(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 2000), 1);
    int afd = accept(fd, NULL, NULL);
    cr_assert_geq(afd, 0);
    cr_assert_eq(sock_get_congestion(afd, name, sizeof(name)), 0);
    cr_expect_str_eq(name, "reno");
    close(afd);
    close(cfd);
    close(fd);
}

/* A listener with TCP_DEFER_ACCEPT hands over a connection only once its first
 * data has come: a silent client is not acceptable, one that spoke is.  Off,
 * the same connection is acceptable at once. */
Test(sock, defer_accept, .timeout = 10)
{
    char err[128] = "";
    for (int on = 1; on >= 0; on--) {
        int fd = sock_tcp_listen(LO, 0, 16, false, err, sizeof(err));
        cr_assert_geq(fd, 0, "%s", err);
        cr_assert_eq(sock_set_defer_accept(fd, on ? 1 : 0), 0);
        int v = -1;
        socklen_t vl = sizeof(v);
        cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vl), 0);
        cr_expect(on ? v > 0 : v == 0, "TCP_DEFER_ACCEPT reads %d", v);
        int port = sock_local_port(fd);
        int cfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = LO};
        cr_assert_eq(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0, "the client's side completes at once");
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, 300);
        if (on) {
            cr_expect_eq(ready, 0, "a silent connection is not handed over");
            cr_assert_eq(send(cfd, "G", 1, 0), 1);
            cr_assert_eq(poll(&p, 1, 2000), 1, "handed over with its first byte");
        } else {
            cr_expect_eq(ready, 1, "without it, acceptable before any data");
        }
        int afd = accept(fd, NULL, NULL);
        cr_assert_geq(afd, 0);
        char b;
        if (on)
            cr_expect_eq(recv(afd, &b, 1, MSG_DONTWAIT), 1, "the byte is there on accept");
        close(afd);
        close(cfd);
        close(fd);
    }
}

Test(sock, udp_bind_device, .timeout = 10)
{
    char err[128] = "";
    struct sock_udp_opts o = {.ifname = "lo"};
    int fd = sock_udp_bind(htonl(INADDR_ANY), 0, &o, err, sizeof(err));
    if (fd == -EPERM)
        cr_skip_test("SO_BINDTODEVICE needs CAP_NET_RAW: %s", err);
    cr_assert_geq(fd, 0, "%s", err);
    char dev[IFNAMSIZ] = "";
    socklen_t l = sizeof(dev);
    cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &l), 0);
    cr_assert_str_eq(dev, "lo");
    close(fd);

    o.ifname = "nosuchif0";
    fd = sock_udp_bind(htonl(INADDR_ANY), 0, &o, err, sizeof(err));
    cr_assert_eq(fd, -ENODEV, "got %d", fd);
    cr_assert(strstr(err, "nosuchif0"), "'%s' does not name the interface", err);
}

Test(sock, udp_bind_conflict, .timeout = 10)
{
    char err[128] = "";
    int a = sock_udp_bind(LO, 0, NULL, err, sizeof(err));
    cr_assert_geq(a, 0, "%s", err);
    int port = sock_local_port(a);
    int b = sock_udp_bind(LO, (uint16_t)port, NULL, err, sizeof(err));
    cr_assert_eq(b, -EADDRINUSE, "got %d", b);
    char where[32];
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    cr_assert(strstr(err, where), "'%s'", err);
    close(a);
}

/* ---- sock_udp_bind_range ------------------------------------------------------------ */

/* The first of `n` consecutive free UDP ports on 127.0.0.1. */
static uint16_t free_range(int n)
{
    for (unsigned base = 41000; base < 60000; base += 97) {
        int fds[8], k;
        for (k = 0; k < n; k++) {
            fds[k] = socket(AF_INET, SOCK_DGRAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base + k)), .sin_addr.s_addr = LO};
            if (bind(fds[k], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fds[k]);
                break;
            }
        }
        for (int j = 0; j < k; j++)
            close(fds[j]);
        if (k == n)
            return (uint16_t)base;
    }
    cr_assert_fail("no free port range");
    return 0;
}

Test(sock, udp_bind_range_rotates, .timeout = 10)
{
    char err[128] = "";
    uint16_t lo = free_range(3), hi = (uint16_t)(lo + 2);
    int busy = sock_udp_bind(LO, lo, NULL, err, sizeof(err)); /* someone else holds `lo` */
    cr_assert_geq(busy, 0, "%s", err);

    uint16_t hint = 0;
    int a = sock_udp_bind_range(LO, lo, hi, &hint, NULL, err, sizeof(err));
    cr_assert_geq(a, 0, "%s", err);
    cr_assert_eq(sock_local_port(a), lo + 1, "skips the busy port");
    cr_assert_eq(hint, 2, "the next try starts after the port taken");

    int b = sock_udp_bind_range(LO, lo, hi, &hint, NULL, err, sizeof(err));
    cr_assert_geq(b, 0, "%s", err);
    cr_assert_eq(sock_local_port(b), lo + 2);
    cr_assert_eq(hint, 0, "wraps to the start of the range");

    int c = sock_udp_bind_range(LO, lo, hi, &hint, NULL, err, sizeof(err));
    cr_assert_eq(c, -EADDRINUSE, "got %d", c);
    char want[48];
    snprintf(want, sizeof(want), "no free UDP port in %u-%u", lo, hi);
    cr_assert_str_eq(err, want);

    close(a); /* lo + 1 frees up; no hint pointer is fine too */
    int d = sock_udp_bind_range(LO, lo, hi, NULL, NULL, err, sizeof(err));
    cr_assert_geq(d, 0, "%s", err);
    cr_assert_eq(sock_local_port(d), lo + 1);
    close(b);
    close(d);
    close(busy);
}

Test(sock, udp_bind_range_edges, .timeout = 10)
{
    char err[128] = "";
    /* both 0: an ephemeral port */
    int fd = sock_udp_bind_range(LO, 0, 0, NULL, NULL, err, sizeof(err));
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert_gt(sock_local_port(fd), 0);
    close(fd);

    /* a one-port range, with options applied */
    uint16_t p = free_range(1), hint = 7;
    struct sock_udp_opts o = {.pktinfo = true};
    fd = sock_udp_bind_range(LO, p, p, &hint, &o, err, sizeof(err));
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert_eq(sock_local_port(fd), p);
    cr_assert_eq(getopt_int(fd, IPPROTO_IP, IP_PKTINFO), 1);
    close(fd);

    /* reversed, or starting at port 0: refused with a reason */
    fd = sock_udp_bind_range(LO, 5000, 4000, NULL, NULL, err, sizeof(err));
    cr_assert_eq(fd, -EINVAL, "got %d", fd);
    cr_assert_str_eq(err, "bad UDP port range 5000-4000");
    fd = sock_udp_bind_range(LO, 0, 10, NULL, NULL, err, sizeof(err));
    cr_assert_eq(fd, -EINVAL, "got %d", fd);
    cr_assert_str_eq(err, "bad UDP port range 0-10");
}

/* ---- sock_local_port, sock_set_nodelay on the wrong descriptors ------------------------- */

Test(sock, errors_are_negative_errno, .timeout = 5)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(sock_local_port(p[0]), -ENOTSOCK);
    cr_assert_eq(sock_set_nodelay(p[0]), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    cr_assert_eq(sock_local_port(p[0]), -EBADF);
    char err[128];
    int u = sock_udp_bind(LO, 0, NULL, err, sizeof(err));
    cr_assert_geq(u, 0);
    cr_assert_lt(sock_set_nodelay(u), 0, "TCP_NODELAY on a UDP socket");
    close(u);
}

/* ---- sock_probe_udp_dev ------------------------------------------------------------- */

/* A UDP socket on 0.0.0.0:port (0: any), like a DHCP worker's: SO_REUSEPORT,
 * optionally bound to a device.  Returns the fd; *port gets the bound port. */
static int udp_holder(uint16_t *port, const char *ifname)
{
    char err[128] = "";
    struct sock_udp_opts o = {.reuseport = true, .ifname = ifname};
    int fd = sock_udp_bind(htonl(INADDR_ANY), *port, &o, err, sizeof(err));
    if (fd == -EPERM)
        cr_skip_test("SO_BINDTODEVICE needs CAP_NET_RAW: %s", err);
    cr_assert_geq(fd, 0, "%s", err);
    *port = (uint16_t)sock_local_port(fd);
    return fd;
}

Test(sock, probe_udp_dev_held_port_is_refused_free_port_is_not, .timeout = 10)
{
    uint16_t port = 0;
    int held = udp_holder(&port, NULL);
    char err[160] = "";
    /* the holder uses SO_REUSEPORT, as every bootstorm DHCP worker does: a plain
     * bind must still see it */
    int rc = sock_probe_udp_dev(htonl(INADDR_ANY), port, NULL, err, sizeof(err));
    cr_assert_eq(rc, -EADDRINUSE, "got %d (%s)", rc, err);
    char where[32];
    snprintf(where, sizeof(where), "0.0.0.0:%u", port);
    cr_assert(strstr(err, where), "'%s' does not name the port", err);
    cr_assert(strstr(err, "another DHCP server"), "'%s'", err);
    cr_assert_null(strchr(err, '\n'), "one line");
    /* "" is the same as NULL: any interface */
    err[0] = 0;
    cr_assert_eq(sock_probe_udp_dev(htonl(INADDR_ANY), port, "", err, sizeof(err)), -EADDRINUSE);
    cr_assert(strstr(err, where), "'%s'", err);
    close(held);

    /* free now: 0, and the probe does not keep the port */
    err[0] = 0;
    cr_assert_eq(sock_probe_udp_dev(htonl(INADDR_ANY), port, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(sock_probe_udp_dev(htonl(INADDR_ANY), port, NULL, err, sizeof(err)), 0, "%s", err);
    held = udp_holder(&port, NULL);
    close(held);
}

Test(sock, probe_udp_dev_on_an_interface, .timeout = 10)
{
    /* a holder on lo: the probe on lo is refused and names lo */
    uint16_t port = 0;
    int held = udp_holder(&port, "lo");
    char err[160] = "";
    int rc = sock_probe_udp_dev(htonl(INADDR_ANY), port, "lo", err, sizeof(err));
    cr_assert_eq(rc, -EADDRINUSE, "got %d (%s)", rc, err);
    cr_assert(strstr(err, " on lo "), "'%s' does not name the interface", err);
    /* a probe on any interface collides with a device-bound holder too */
    cr_assert_eq(sock_probe_udp_dev(htonl(INADDR_ANY), port, NULL, err, sizeof(err)), -EADDRINUSE);
    close(held);
    cr_assert_eq(sock_probe_udp_dev(htonl(INADDR_ANY), port, "lo", err, sizeof(err)), 0, "%s", err);

    /* a holder on any interface blocks the probe on lo as well */
    held = udp_holder(&port, NULL);
    cr_assert_eq(sock_probe_udp_dev(htonl(INADDR_ANY), port, "lo", err, sizeof(err)), -EADDRINUSE);
    close(held);

    /* an interface that does not exist: its own error, named */
    rc = sock_probe_udp_dev(htonl(INADDR_ANY), port, "nosuchif0", err, sizeof(err));
    cr_assert_eq(rc, -ENODEV, "got %d", rc);
    cr_assert(strstr(err, "nosuchif0"), "'%s'", err);
}
