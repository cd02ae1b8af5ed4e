/* engine/metrics.h — GET /metrics: the Prometheus text exposition format
 * (version 0.0.4): every family with # HELP and # TYPE, label values escaped,
 * histograms with cumulative _bucket{le=...}, _sum and _count.
 *
 * Sources: each worker publishes copies of its HTTP and TFTP service
 * counters (the services' own counters are plain fields of their thread, so
 * they are copied on that thread, at most every METRICS_PUBLISH_MS, into
 * atomics any thread may read); DHCP counters and the lease count come from
 * the shared DHCP state, which is atomic already; hosts per stage, failures
 * by kind and the per-stage latency histograms from the tracker.
 *
 * Families (all prefixed bootstorm_):
 *   http_requests_total, http_bytes_total, http_connections_accepted_total,
 *   http_connections_refused_total, http_connections_open, http_errors_total{kind},
 *   http_streams_open, http_streams_dropped_total,
 *   tftp_requests_total, tftp_transfers_total, tftp_transfers_active,
 *   tftp_transfers_waiting, tftp_transfers_ended_total{outcome}, tftp_bytes_total,
 *   tftp_retransmits_total, tftp_errors_total{kind},
 *   dhcp_messages_total{kind}, dhcp_leases,
 *   hosts{stage}, hosts_stalled, hosts_failed, host_failures_total{kind},
 *   stage_duration_seconds{stage} (histogram: from the previous stage),
 *   install_duration_seconds (histogram: first stage to installed),
 *   tracker_events_total, tracker_untracked_total{reason},
 *   host_probes_total{kind} (tftp_size_probe, tftp_optional_missing: normal
 *   firmware behaviour, not failures), tracker_persist_total{kind}. */
#ifndef BOOTSTORM_ENGINE_METRICS_H
#define BOOTSTORM_ENGINE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;
struct tracker;
struct dhcp_shared;
struct http_service_stats;
struct tftp_service_stats;

#define METRICS_PUBLISH_MS 250

/* nworkers: how many workers will publish.  tracker and dhcp may be NULL. */
struct metrics *metrics_new(unsigned nworkers, struct tracker *tracker, struct dhcp_shared *dhcp);
void metrics_free(struct metrics *m);

/* Copies one worker's counters (call on that worker's thread). */
void metrics_publish_http(struct metrics *m, unsigned worker, const struct http_service_stats *st);
void metrics_publish_tftp(struct metrics *m, unsigned worker, const struct tftp_service_stats *st);

/* The whole exposition, NUL-terminated and malloc'd (*len without the NUL);
 * NULL when out of memory. */
char *metrics_render(struct metrics *m, size_t *len);

/* Prometheus label-value escaping (backslash, double quote, newline):
 * writes at most cap bytes including the NUL; returns the length it needed. */
size_t metrics_escape_label(const char *in, char *out, size_t cap);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
