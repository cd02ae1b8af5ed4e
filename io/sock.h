/* io/sock.h — socket set-up helpers: listeners, UDP endpoints and their options.
 * No protocol knowledge: callers pass ports and addresses. */
#ifndef BOOTSTORM_IO_SOCK_H
#define BOOTSTORM_IO_SOCK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sock_udp_opts {
    bool reuseport;     /* SO_REUSEPORT: one socket per worker on the same port */
    bool broadcast;     /* SO_BROADCAST: may send to 255.255.255.255 */
    bool pktinfo;       /* IP_PKTINFO: learn the receiving interface and address */
    const char *ifname; /* SO_BINDTODEVICE when set */
    int rcvbuf, sndbuf; /* bytes; 0 = leave the kernel default */
    /* Leave path-MTU discovery at the kernel's default (IP_PMTUDISC_WANT): a
     * datagram that fits the path MTU goes with DF set, which also spares the
     * kernel its per-packet IP ID hash (~4% of a lock-step TFTP server's CPU);
     * a bigger one is fragmented here.  Off (the default): DF never set, so a
     * router may fragment a large DHCP reply. */
    bool pmtu_discover;
};

/* TCP listener on addr:port (addr in network order; INADDR_ANY for all),
 * non-blocking, SO_REUSEADDR, SO_REUSEPORT when asked.  Returns fd or -errno;
 * `err` gets one line on failure. */
int sock_tcp_listen(uint32_t addr, uint16_t port, int backlog, bool reuseport, char *err, size_t errlen);
/* UDP socket bound to addr:port (port 0: the kernel picks; see sock_local_port). */
int sock_udp_bind(uint32_t addr, uint16_t port, const struct sock_udp_opts *o, char *err, size_t errlen);
/* UDP socket bound to a port within [lo, hi] (both 0: ephemeral; lo = 0 or
 * hi < lo otherwise: -EINVAL).  *hint (optional) is the offset into the range
 * to try first; it is advanced past the port taken, so successive calls rotate
 * through the range. */
int sock_udp_bind_range(uint32_t addr, uint16_t lo, uint16_t hi, uint16_t *hint, const struct sock_udp_opts *o,
                        char *err, size_t errlen);
/* The bound port of a socket, or -errno. */
/* 0 when nobody holds addr:port for this socket type (SOCK_STREAM/SOCK_DGRAM),
 * else -errno with one line in err.  The listeners use SO_REUSEPORT (one per
 * worker), which would let a second server started by mistake silently share
 * the port; probing with a plain bind first refuses that at start-up. */
int sock_probe_port(uint32_t addr, uint16_t port, int type, char *err, size_t errlen);
/* The same for a UDP port on one interface (SO_BINDTODEVICE ifname; NULL or "":
 * any): the DHCP sockets bind 0.0.0.0:67 per worker with SO_REUSEPORT, so a
 * second DHCP server on the same network would otherwise start and answer too. */
int sock_probe_udp_dev(uint32_t addr, uint16_t port, const char *ifname, char *err, size_t errlen);
int sock_local_port(int fd);
/* TCP_NODELAY on; 0 or -errno. */
int sock_set_nodelay(int fd);
/* TCP_DEFER_ACCEPT on a listener: a connection is handed to accept only once
 * its first data has come (or, for a silent client, after about `seconds`);
 * 0 turns it off.  0 or -errno. */
int sock_set_defer_accept(int fd, unsigned seconds);
/* TCP_CONGESTION (a listener's is inherited by the sockets it accepts); 0 or -errno. */
int sock_set_congestion(int fd, const char *name);
/* The socket's TCP congestion control into out; 0 or -errno. */
int sock_get_congestion(int fd, char *out, size_t outlen);
/* Parse dotted IPv4 into network order; false on anything else. */
bool sock_parse_ipv4(const char *s, uint32_t *addr_be);
/* Format an IPv4 sockaddr as "a.b.c.d:port" into out (at least 48 bytes);
 * NULL or another family gives "?".  Returns out. */
const char *sock_addr_str(const void *sa, char *out, size_t outlen);

#endif
