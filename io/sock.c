/* io/sock.c — socket set-up helpers. */
#include "io/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(int fd, const char *what, uint32_t addr, uint16_t port, char *err, size_t errlen)
{
    int e = errno;
    char a[INET_ADDRSTRLEN];
    struct in_addr ia = {addr};
    inet_ntop(AF_INET, &ia, a, sizeof(a));
    snprintf(err, errlen, "%s %s:%u: %s", what, a, port, strerror(e));
    if (fd >= 0)
        close(fd);
    return -e;
}

int sock_tcp_listen(uint32_t addr, uint16_t port, int backlog, bool reuseport, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(-1, "socket", addr, port, err, errlen);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        return fail(fd, "SO_REUSEPORT", addr, port, err, errlen);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return fail(fd, "bind tcp", addr, port, err, errlen);
    if (listen(fd, backlog) < 0)
        return fail(fd, "listen", addr, port, err, errlen);
    return fd;
}

static int udp_socket(const struct sock_udp_opts *o, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(-1, "socket udp", 0, 0, err, errlen);
    int one = 1;
    if (o && o->reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (o && o->broadcast)
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
    if (o && o->pktinfo)
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    if (o && o->rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf));
    if (o && o->sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(o->sndbuf));
    if (o && o->ifname && *o->ifname &&
        setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->ifname, (socklen_t)strlen(o->ifname)) < 0) {
        int e = errno;
        snprintf(err, errlen, "SO_BINDTODEVICE %s: %s", o->ifname, strerror(e));
        close(fd);
        return -e;
    }
    /* Large datagrams must not be dropped for path MTU reasons on a LAN. */
    if (!o || !o->pmtu_discover) {
        int pmtu = IP_PMTUDISC_DONT;
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    }
    return fd;
}

int sock_udp_bind(uint32_t addr, uint16_t port, const struct sock_udp_opts *o, char *err, size_t errlen)
{
    int fd = udp_socket(o, err, errlen);
    if (fd < 0)
        return fd;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return fail(fd, "bind udp", addr, port, err, errlen);
    return fd;
}

int sock_udp_bind_range(uint32_t addr, uint16_t lo, uint16_t hi, uint16_t *hint, const struct sock_udp_opts *o,
                        char *err, size_t errlen)
{
    if (!lo && !hi)
        return sock_udp_bind(addr, 0, o, err, errlen);
    /* hi < lo would make the span wrap and try ports outside the range, and
     * port 0 inside a range would bind an ephemeral port: both refused. */
    if (lo == 0 || hi < lo) {
        snprintf(err, errlen, "bad UDP port range %u-%u", lo, hi);
        return -EINVAL;
    }
    int fd = udp_socket(o, err, errlen);
    if (fd < 0)
        return fd;
    unsigned span = (unsigned)hi - lo + 1;
    unsigned start = hint ? *hint : 0;
    for (unsigned i = 0; i < span; i++) {
        uint16_t port = (uint16_t)(lo + (start + i) % span);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            if (hint)
                *hint = (uint16_t)((start + i + 1) % span);
            return fd;
        }
        if (errno != EADDRINUSE)
            return fail(fd, "bind udp", addr, port, err, errlen);
    }
    snprintf(err, errlen, "no free UDP port in %u-%u", lo, hi);
    close(fd);
    return -EADDRINUSE;
}

int sock_probe_port(uint32_t addr, uint16_t port, int type, char *err, size_t errlen)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(-1, "socket", addr, port, err, errlen);
    int one = 1;
    if (type == SOCK_STREAM) /* TIME_WAIT leftovers of an earlier run are no conflict */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        fail(fd, type == SOCK_STREAM ? "tcp port" : "udp port", addr, port, err, errlen);
        if (e == EADDRINUSE) {
            size_t l = strlen(err);
            snprintf(err + l, errlen > l ? errlen - l : 0, " (another server already uses it)");
        }
        return -e;
    }
    close(fd);
    return 0;
}

int sock_probe_udp_dev(uint32_t addr, uint16_t port, const char *ifname, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(-1, "socket", addr, port, err, errlen);
    if (ifname && *ifname && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0) {
        int e = errno;
        snprintf(err, errlen, "SO_BINDTODEVICE %s: %s", ifname, strerror(e));
        close(fd);
        return -e;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        fail(fd, "udp port", addr, port, err, errlen);
        if (e == EADDRINUSE) {
            size_t l = strlen(err);
            snprintf(err + l, errlen > l ? errlen - l : 0, "%s%s (another DHCP server already uses it)",
                     ifname && *ifname ? " on " : "", ifname && *ifname ? ifname : "");
        }
        return -e;
    }
    close(fd);
    return 0;
}

int sock_local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t l = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &l) < 0)
        return -errno;
    return ntohs(sa.sin_port);
}

int sock_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

int sock_set_defer_accept(int fd, unsigned seconds)
{
    int v = seconds > INT32_MAX ? INT32_MAX : (int)seconds;
    return setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, sizeof(v)) < 0 ? -errno : 0;
}

int sock_set_congestion(int fd, const char *name)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) < 0 ? -errno : 0;
}

int sock_get_congestion(int fd, char *out, size_t outlen)
{
    char name[32] = "";
    socklen_t l = sizeof(name) - 1;
    if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &l) < 0)
        return -errno;
    snprintf(out, outlen, "%s", name);
    return 0;
}

bool sock_parse_ipv4(const char *s, uint32_t *addr_be)
{
    struct in_addr ia;
    if (!s || inet_pton(AF_INET, s, &ia) != 1)
        return false;
    *addr_be = ia.s_addr;
    return true;
}

const char *sock_addr_str(const void *sa, char *out, size_t outlen)
{
    const struct sockaddr_in *in = sa;
    char a[INET_ADDRSTRLEN];
    if (in && in->sin_family == AF_INET && inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a)))
        snprintf(out, outlen, "%s:%u", a, ntohs(in->sin_port));
    else
        snprintf(out, outlen, "?"); /* no address, or not IPv4: no port to show either */
    return out;
}
