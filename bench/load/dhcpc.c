/* bench/load/dhcpc.c — see dhcpc.h. */
#include "bench/load/dhcpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RX_BATCH 64
#define RX_SIZE 1500

void dhcpc_vendor_class(uint16_t arch, char *out, size_t cap)
{
    snprintf(out, cap, "PXEClient:Arch:%05u:UNDI:002001", arch);
}

int dhcpc_build(uint8_t *buf, size_t cap, uint8_t type, uint32_t xid, const struct dhcpc_identity *id,
                uint32_t giaddr, uint32_t requested_ip, uint32_t server_id, uint16_t secs, size_t *len)
{
    struct dhcp_writer w;
    int rc = dhcp_request_begin(&w, buf, cap, type, xid, id->mac, 6);
    if (rc != DHCP_OK)
        return rc;
    /* As a relay: hops counted, giaddr set (RFC 1542 §4.1.1). */
    buf[3] = 1;
    dhcp_set_giaddr(&w, giaddr);
    dhcp_set_secs(&w, secs);
    if (id->role == DHCPC_FIRMWARE) {
        /* what a PXE ROM sends (PXE 2.1 §2.2, RFC 4578) */
        static const uint8_t prl[] = {1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51,
                                      54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135};
        char vc[40];
        uint8_t cid[7] = {1}, uuid[17] = {0}, ndi[3] = {1, 2, 1};
        memcpy(cid + 1, id->mac, 6);
        memcpy(uuid + 1, id->uuid, 16);
        dhcpc_vendor_class(id->arch, vc, sizeof(vc));
        dhcp_put_u16(&w, DHCP_OPT_MAX_MSG_SIZE, 1464);
        dhcp_put_option(&w, DHCP_OPT_PARAM_REQ, prl, sizeof(prl));
        dhcp_put_u16(&w, DHCP_OPT_CLIENT_ARCH, id->arch);
        dhcp_put_option(&w, DHCP_OPT_CLIENT_NDI, ndi, sizeof(ndi));
        dhcp_put_option(&w, DHCP_OPT_CLIENT_UUID, uuid, sizeof(uuid));
        dhcp_put_str(&w, DHCP_OPT_VENDOR_CLASS, vc);
        dhcp_put_option(&w, DHCP_OPT_CLIENT_ID, cid, sizeof(cid));
    } else {
        /* the installer's dhclient: RFC 4361 client-id = 0xff, IAID, DUID-LL (RFC 8415 §11.4) */
        static const uint8_t prl[] = {1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42};
        uint8_t cid[1 + 4 + 4 + 6] = {0xff, 0, 0, 0, 1, 0, 3, 0, 1};
        memcpy(cid + 9, id->mac, 6);
        dhcp_put_u16(&w, DHCP_OPT_MAX_MSG_SIZE, 1500);
        dhcp_put_option(&w, DHCP_OPT_PARAM_REQ, prl, sizeof(prl));
        dhcp_put_str(&w, DHCP_OPT_VENDOR_CLASS, "d-i");
        dhcp_put_option(&w, DHCP_OPT_CLIENT_ID, cid, sizeof(cid));
    }
    if (requested_ip)
        dhcp_put_ip(&w, DHCP_OPT_REQUESTED_IP, requested_ip);
    if (server_id)
        dhcp_put_ip(&w, DHCP_OPT_SERVER_ID, server_id);
    return dhcp_reply_finish(&w, len);
}

static void on_io(struct ev_handler *h, uint32_t events)
{
    struct dhcpc_relay *r = (struct dhcpc_relay *)h;
    static uint8_t bufs[RX_BATCH][RX_SIZE];
    static struct dhcp_msg msg;
    struct mmsghdr mm[RX_BATCH];
    struct iovec iov[RX_BATCH];
    if (!(events & EPOLLIN))
        return;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < RX_BATCH; i++) {
            iov[i] = (struct iovec){bufs[i], RX_SIZE};
            mm[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(r->h.fd, mm, RX_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        ev_refresh(); /* latencies are measured to this batch, not to the loop turn */
        for (int i = 0; i < n; i++) {
            r->received++;
            if (mm[i].msg_hdr.msg_flags & MSG_TRUNC || dhcp_parse(bufs[i], mm[i].msg_len, &msg) != DHCP_OK) {
                r->malformed++;
                continue;
            }
            if (msg.op != DHCP_BOOTREPLY) {
                r->not_reply++;
                continue;
            }
            r->on_reply(r->arg, &msg);
        }
        if (n < RX_BATCH)
            return;
    }
}

int dhcpc_relay_open(struct dhcpc_relay *r, uint32_t giaddr, uint16_t port, const struct sockaddr_in *server,
                     dhcpc_reply_fn fn, void *arg, char *why, size_t whylen)
{
    memset(r, 0, sizeof(*r));
    r->h.fd = -1;
    r->server = *server;
    r->giaddr = giaddr;
    r->on_reply = fn;
    r->arg = arg;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    int big = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    /* A server on this host bound to 0.0.0.0:67 does not stop us taking
     * giaddr:67 when both sides set SO_REUSEADDR, or both SO_REUSEPORT (same
     * user): the more specific binding receives what is sent to giaddr. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = giaddr};
    if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
        char a[32];
        inet_ntop(AF_INET, &me.sin_addr, a, sizeof(a));
        snprintf(why, whylen, "bind %s:%u (the relay address, where the server sends its replies): %s%s", a, port,
                 strerror(errno),
                 errno == EACCES       ? " (port 67 needs root or CAP_NET_BIND_SERVICE)"
                 : errno == EADDRINUSE ? " (a DHCP server on this host holds 0.0.0.0:67 without SO_REUSEADDR: "
                                         "bind it to one address, e.g. 127.0.0.1)"
                                       : "");
        close(fd);
        return -1;
    }
    r->h.fn = on_io;
    if (ev_add(&r->h, fd, EPOLLIN) != EV_OK) {
        snprintf(why, whylen, "epoll: %s", strerror(errno));
        close(fd);
        r->h.fd = -1;
        return -1;
    }
    return 0;
}

bool dhcpc_relay_send(struct dhcpc_relay *r, const uint8_t *pkt, size_t len)
{
    ssize_t n = sendto(r->h.fd, pkt, len, 0, (const struct sockaddr *)&r->server, sizeof(r->server));
    if (n != (ssize_t)len) {
        r->send_errors++;
        return false;
    }
    r->sent++;
    return true;
}

void dhcpc_relay_close(struct dhcpc_relay *r) { ev_close(&r->h); }
