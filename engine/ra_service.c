/* engine/ra_service.c — see ra_service.h.
 *
 * A thread of its own rather than a worker-loop socket: it sends one packet
 * every few seconds, needs no io_uring, and must not depend on which worker
 * a datagram lands on (a raw socket sees every RS once per socket). */
#include "engine/ra_service.h"
#include "proto/ndp.h"

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* RFC 4861 §10 router constants */
#define MAX_INITIAL_RTR_ADVERT_INTERVAL_MS 16000
#define MAX_INITIAL_RTR_ADVERTISEMENTS 3
#define MIN_DELAY_BETWEEN_RAS_MS 3000
#define MAX_RA_DELAY_TIME_MS 500
#define RA_PENDING_MAX 64 /* unicast answers waiting for their delay; beyond: one multicast */

struct ra_pending {
    struct in6_addr dst;
    uint64_t due_ms;
};

struct ra_service {
    int fd, stop_fd;
    unsigned ifindex;
    char ifname[IF_NAMESIZE];
    unsigned interval_ms, mtu;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    pthread_t thread;
    uint64_t rng;
    /* thread-only state */
    struct ra_pending pend[RA_PENDING_MAX];
    unsigned npend;
    uint64_t mcast_due_ms;   /* a multicast answer to an RS is due; 0: none */
    uint64_t last_mcast_ms;  /* for MIN_DELAY_BETWEEN_RAS; 0: none sent yet */
    uint64_t next_periodic_ms;
    unsigned initial_sent;
    int last_errno;          /* send failures are logged once per kind, not per packet */
    _Atomic uint64_t rs_received, rs_rejected, ra_periodic, ra_solicited, send_errors;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rnd(struct ra_service *s, uint64_t below) /* xorshift64: jitter, not secrets */
{
    s->rng ^= s->rng << 13, s->rng ^= s->rng >> 7, s->rng ^= s->rng << 17;
    return below ? s->rng % below : 0;
}

static void logf_(struct ra_service *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct ra_service *s, const char *fmt, ...)
{
    if (!s->log)
        return;
    char line[256];
    int n = snprintf(line, sizeof(line), "bootstorm: ipv6-ra %s: ", s->ifname);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, line);
}

/* next unsolicited RA: §6.2.4, uniformly in [0.75, 1] x interval (MinRtrAdvInterval
 * default), the first MAX_INITIAL_RTR_ADVERTISEMENTS at most 16 s apart */
static void schedule_periodic(struct ra_service *s, uint64_t now)
{
    uint64_t iv = s->interval_ms;
    if (s->initial_sent < MAX_INITIAL_RTR_ADVERTISEMENTS && iv > MAX_INITIAL_RTR_ADVERT_INTERVAL_MS)
        iv = MAX_INITIAL_RTR_ADVERT_INTERVAL_MS;
    s->next_periodic_ms = now + iv * 3 / 4 + rnd(s, iv / 4 + 1);
}

static int send_ra(struct ra_service *s, const struct in6_addr *dst)
{
    struct ndp_ra ra = {.router_lifetime_s = 0, .flags = 0, .mtu = s->mtu};
    struct ifreq ifr = {0};
    memcpy(ifr.ifr_name, s->ifname, sizeof(s->ifname));
    /* read each time: a bridge's address follows its ports */
    if (ioctl(s->fd, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER) {
        ra.lladdr_len = 6;
        memcpy(ra.lladdr, ifr.ifr_hwaddr.sa_data, 6);
    }
    uint8_t buf[NDP_RA_MAX_LEN];
    int len = ndp_build_ra(&ra, buf, sizeof(buf));
    if (len < 0) { /* cannot happen with these fields; said rather than hidden */
        logf_(s, "cannot build an RA: %s", ndp_strerror(len));
        return -EINVAL;
    }
    struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_addr = *dst, .sin6_scope_id = s->ifindex};
    if (sendto(s->fd, buf, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
        int e = errno;
        atomic_fetch_add(&s->send_errors, 1);
        if (e != s->last_errno) /* EADDRNOTAVAIL: no link-local address yet (DAD, no carrier) */
            logf_(s, "cannot send an RA: %s (retrying)", strerror(e));
        s->last_errno = e;
        return -e;
    }
    if (s->last_errno)
        logf_(s, "sending RAs again");
    s->last_errno = 0;
    return 0;
}

/* returns send_ra's result; the timers move on either way (a failed send is retried
 * at the next turn of the interval, not in a tight loop) */
static int send_multicast(struct ra_service *s, uint64_t now)
{
    static const struct in6_addr all_nodes = {{{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}};
    int rc = send_ra(s, &all_nodes);
    s->last_mcast_ms = now;
    if (rc == 0 && s->initial_sent < MAX_INITIAL_RTR_ADVERTISEMENTS)
        s->initial_sent++;
    schedule_periodic(s, now); /* §6.2.6: a multicast answer resets the interval timer */
    return rc;
}

static uint64_t mcast_allowed_at(const struct ra_service *s, uint64_t want)
{
    uint64_t earliest = s->last_mcast_ms ? s->last_mcast_ms + MIN_DELAY_BETWEEN_RAS_MS : 0;
    return want > earliest ? want : earliest;
}

/* reads one datagram; false when there was none */
static bool on_rs(struct ra_service *s, uint64_t now)
{
    uint8_t msg[1500];
    struct sockaddr_in6 from;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
    } cbuf;
    struct iovec iov = {msg, sizeof(msg)};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf)};
    ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
    if (n < 0)
        return false;
    int hops = -1;
    unsigned ifindex = s->ifindex;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)
            memcpy(&hops, CMSG_DATA(c), sizeof(hops));
        else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            ifindex = pi.ipi6_ifindex;
        }
    }
    if (ifindex != s->ifindex) /* SO_BINDTODEVICE should make this impossible */
        return true;
    bool unspec = IN6_IS_ADDR_UNSPECIFIED(&from.sin6_addr);
    struct ndp_rs rs;
    int rc = ndp_parse_rs(msg, (size_t)n, hops < 0 ? 0u : (unsigned)hops, unspec, &rs);
    if (rc != NDP_OK) {
        atomic_fetch_add(&s->rs_rejected, 1);
        return true;
    }
    atomic_fetch_add(&s->rs_received, 1);
    uint64_t due = now + rnd(s, MAX_RA_DELAY_TIME_MS + 1); /* §6.2.6 */
    if (!unspec && s->npend < RA_PENDING_MAX) {
        for (unsigned i = 0; i < s->npend; i++)
            if (IN6_ARE_ADDR_EQUAL(&s->pend[i].dst, &from.sin6_addr))
                return true; /* already answering this host */
        s->pend[s->npend++] = (struct ra_pending){.dst = from.sin6_addr, .due_ms = due};
    } else if (!s->mcast_due_ms) { /* one multicast answers every solicitor (§6.2.6) */
        s->mcast_due_ms = mcast_allowed_at(s, due);
    }
    return true;
}

static void *ra_thread(void *arg)
{
    struct ra_service *s = arg;
    s->next_periodic_ms = now_ms(); /* the first one at once (§6.2.4) */
    for (;;) {
        uint64_t now = now_ms();
        /* due work first */
        for (unsigned i = 0; i < s->npend;) {
            if (s->pend[i].due_ms <= now) {
                if (send_ra(s, &s->pend[i].dst) == 0)
                    atomic_fetch_add(&s->ra_solicited, 1);
                s->pend[i] = s->pend[--s->npend];
            } else {
                i++;
            }
        }
        if (s->mcast_due_ms && s->mcast_due_ms <= now) {
            s->mcast_due_ms = 0;
            if (send_multicast(s, now) == 0)
                atomic_fetch_add(&s->ra_solicited, 1);
        } else if (s->next_periodic_ms <= now) {
            uint64_t at = mcast_allowed_at(s, now);
            if (at <= now) {
                if (send_multicast(s, now) == 0)
                    atomic_fetch_add(&s->ra_periodic, 1);
            } else {
                s->next_periodic_ms = at;
            }
        }
        uint64_t wake = s->next_periodic_ms;
        if (s->mcast_due_ms && s->mcast_due_ms < wake)
            wake = s->mcast_due_ms;
        for (unsigned i = 0; i < s->npend; i++)
            if (s->pend[i].due_ms < wake)
                wake = s->pend[i].due_ms;
        now = now_ms();
        int timeout = wake > now ? (int)(wake - now) : 0;
        struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};
        int pr = poll(p, 2, timeout);
        if (pr < 0 && errno != EINTR) {
            logf_(s, "poll failed: %s; stopping", strerror(errno));
            break;
        }
        if (pr > 0 && p[1].revents)
            break;
        if (pr > 0 && (p[0].revents & POLLIN))
            for (int k = 0; k < 64 && on_rs(s, now_ms()); k++) /* a burst, then what is due */
                ;
    }
    return NULL;
}

static int fail(struct ra_service *s, int e, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "--ipv6-ra on %s: %s: %s", s->ifname, what, strerror(e));
    if (s->fd >= 0)
        close(s->fd);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    free(s);
    return -e;
}

int ra_service_start(struct ra_service **out, const struct ra_service_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->ifname || !cfg->ifname[0] || strlen(cfg->ifname) >= IF_NAMESIZE) {
        snprintf(err, errlen, "--ipv6-ra needs --interface: router advertisements go to one link");
        return -EINVAL;
    }
    struct ra_service *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "--ipv6-ra: out of memory");
        return -ENOMEM;
    }
    s->fd = s->stop_fd = -1;
    snprintf(s->ifname, sizeof(s->ifname), "%s", cfg->ifname);
    unsigned iv = cfg->interval_s ? cfg->interval_s : RA_SERVICE_INTERVAL_S;
    iv = iv < 4 ? 4 : iv > 1800 ? 1800 : iv; /* §6.2.1 MaxRtrAdvInterval */
    s->interval_ms = iv * 1000;
    s->mtu = cfg->mtu;
    s->log = cfg->log, s->log_ctx = cfg->log_ctx;
    if (getrandom(&s->rng, sizeof(s->rng), GRND_NONBLOCK) != sizeof(s->rng) || !s->rng)
        s->rng = now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;

    s->ifindex = if_nametoindex(s->ifname);
    if (!s->ifindex)
        return fail(s, errno, err, errlen, "no such interface");
    s->fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (s->fd < 0)
        return fail(s, errno, err, errlen, "raw ICMPv6 socket (needs CAP_NET_RAW)");
    int hops = NDP_HOP_LIMIT, on = 1, off = 0;
    int ifi = (int)s->ifindex;
    struct icmp6_filter filt;
    ICMP6_FILTER_SETBLOCKALL(&filt);
    ICMP6_FILTER_SETPASS(ND_ROUTER_SOLICIT, &filt);
    /* RSs go to all-routers (§6.3.7): a host that is not a router has not joined it */
    struct ipv6_mreq mr = {.ipv6mr_multiaddr = {{{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}}},
                           .ipv6mr_interface = s->ifindex};
    if (setsockopt(s->fd, SOL_SOCKET, SO_BINDTODEVICE, s->ifname, (socklen_t)strlen(s->ifname)) < 0)
        return fail(s, errno, err, errlen, "SO_BINDTODEVICE");
    if (setsockopt(s->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof(filt)) < 0)
        return fail(s, errno, err, errlen, "ICMP6_FILTER");
    if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0 ||
        setsockopt(s->fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) < 0)
        return fail(s, errno, err, errlen, "hop limit 255");
    if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifi, sizeof(ifi)) < 0 ||
        setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &off, sizeof(off)) < 0)
        return fail(s, errno, err, errlen, "multicast interface (is IPv6 disabled on it?)");
    if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on)) < 0 ||
        setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) < 0)
        return fail(s, errno, err, errlen, "IPV6_RECVHOPLIMIT");
    if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
        return fail(s, errno, err, errlen, "joining ff02::2");
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->stop_fd < 0)
        return fail(s, errno, err, errlen, "eventfd");
    int rc = pthread_create(&s->thread, NULL, ra_thread, s);
    if (rc != 0)
        return fail(s, rc, err, errlen, "thread");
    logf_(s, "advertising every ~%u s and answering solicitations (router lifetime 0, M=O=0, no prefix)", iv);
    *out = s;
    return 0;
}

void ra_service_stats(struct ra_service *s, struct ra_service_stats *out)
{
    *out = (struct ra_service_stats){
        .rs_received = atomic_load(&s->rs_received),
        .rs_rejected = atomic_load(&s->rs_rejected),
        .ra_periodic = atomic_load(&s->ra_periodic),
        .ra_solicited = atomic_load(&s->ra_solicited),
        .send_errors = atomic_load(&s->send_errors),
    };
}

void ra_service_stop(struct ra_service *s)
{
    if (!s)
        return;
    uint64_t one = 1;
    if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one))
        pthread_cancel(s->thread); /* cannot happen on an eventfd below its limit */
    pthread_join(s->thread, NULL);
    struct ra_service_stats st;
    ra_service_stats(s, &st);
    logf_(s, "stopped: %llu RS received, %llu rejected, %llu periodic RAs, %llu send errors",
          (unsigned long long)st.rs_received, (unsigned long long)st.rs_rejected,
          (unsigned long long)st.ra_periodic, (unsigned long long)st.send_errors);
    close(s->fd);
    close(s->stop_fd);
    free(s);
}
