/* engine/ra_service.h — IPv6 Router Advertisements on the boot network
 * (--ipv6-ra): ends iPXE's ~13 s wait for IPv6 autoconfiguration.
 *
 * One small thread with a raw ICMPv6 socket bound to --interface: it multicasts
 * an RA (router lifetime 0, M=O=0, no prefix: nobody gets an IPv6 route or
 * address from us, RFC 4861 §4.2/§6.2.1) to ff02::1 every interval, and answers
 * each valid Router Solicitation (§6.1.1) within MAX_RA_DELAY_TIME (§6.2.6):
 * unicast to the solicitor when it has an address, else to ff02::1 no more
 * often than MIN_DELAY_BETWEEN_RAS. */
#ifndef ENGINE_RA_SERVICE_H
#define ENGINE_RA_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#define RA_SERVICE_INTERVAL_S 30 /* default periodic interval (MaxRtrAdvInterval, §6.2.1: 4..1800) */

struct ra_service;

struct ra_service_config {
    const char *ifname;   /* required: the boot network's interface */
    unsigned interval_s;  /* periodic RA interval; 0: RA_SERVICE_INTERVAL_S; clamped to 4..1800 */
    unsigned mtu;         /* MTU option; 0: left out */
    void (*log)(void *ctx, const char *line); /* start/stop and trouble, one line each; NULL: quiet */
    void *log_ctx;
};

struct ra_service_stats {
    uint64_t rs_received;    /* valid Router Solicitations */
    uint64_t rs_rejected;    /* failed §6.1.1 validation */
    uint64_t ra_periodic;    /* unsolicited multicast RAs sent */
    uint64_t ra_solicited;   /* RAs sent in answer to an RS */
    uint64_t send_errors;    /* sendmsg failures (e.g. no link-local address yet) */
};

/* Opens the socket and starts the thread. Returns 0, or -errno with err set
 * (no interface, no permission for a raw socket, ...). */
int ra_service_start(struct ra_service **out, const struct ra_service_config *cfg, char *err, size_t errlen);
void ra_service_stats(struct ra_service *s, struct ra_service_stats *out);
/* Stops the thread and closes the socket; NULL is a no-op. */
void ra_service_stop(struct ra_service *s);

#endif
