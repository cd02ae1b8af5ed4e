/* engine/http_service.h — the HTTP service of one worker: static trees
 * (install.img, repositories) by sendfile, small files from memory, and
 * dynamic routes (kickstarts, iPXE scripts, the API) through a handler. */
#ifndef BOOTSTORM_ENGINE_HTTP_SERVICE_H
#define BOOTSTORM_ENGINE_HTTP_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_loop;
struct http_service;

/* A dynamic request, handed to the route handler before the file tree. */
struct http_dyn_request {
    int method;              /* enum http_method */
    const char *path;        /* decoded, normalised, no leading '/', NUL-terminated */
    const char *query;       /* raw query string (NUL-terminated, "" if none) */
    const char *body;        /* request body (POST), body_len bytes */
    size_t body_len;
    uint32_t peer_ip;        /* network order */
    const char *auth;        /* Authorization header value, NUL-terminated, "" if none */
};

struct http_dyn_response {
    int status;
    const char *content_type;
    char *body;              /* malloc'd; the service frees it */
    size_t body_len;
    bool stream;             /* GET only: keep the connection open as a stream (below) */
};

/* Returns true when it answered (resp filled), false to fall through to files. */
typedef bool (*http_route_fn)(void *ctx, const struct http_dyn_request *req, struct http_dyn_response *resp);

/* The done hook: called on the worker as a response goes out.  For a large
 * file body, once per chunk sent (final false); then once when the response
 * is complete (final true).  bytes: body bytes since the previous call for
 * this response, so the calls of one response add up to its body.  Not
 * called for a response cut short by a closed connection. */
struct http_done_info {
    uint32_t peer_ip;        /* network order */
    const char *method;      /* "GET", ... */
    const char *path;        /* no leading '/', no query, cut at 150 bytes */
    int status;
    uint64_t bytes;
    bool final;
};
typedef void (*http_done_fn)(void *ctx, const struct http_done_info *d);

struct http_service_config {
    uint32_t listen_addr;          /* network order */
    uint16_t port;
    const char *root;              /* served tree; NULL: only dynamic routes */
    bool index;                    /* directory listings */
    unsigned idle_timeout_s;       /* before the first byte / between requests */
    unsigned header_timeout_s;     /* whole request head, not reset by a trickle */
    unsigned send_timeout_s;       /* no progress sending */
    unsigned max_conns;            /* per worker; 503 beyond */
    size_t chunk;                  /* bytes per connection per turn */
    const char *congestion;        /* TCP congestion control of accepted connections; NULL: the kernel's */
    unsigned defer_accept_s;       /* TCP_DEFER_ACCEPT on the listener; 0: off */
    size_t small_file_max;         /* files up to this go from memory */
    bool quiet;                    /* no access log */
    int backlog;
    http_route_fn route;
    void *route_ctx;
    http_done_fn on_done;          /* NULL: none */
    void *done_ctx;
    size_t stream_max_unsent;      /* a stream with more unsent is dropped; 0 = 1 MiB */
};

struct http_service_stats {
    uint64_t requests, bytes, conns_accepted, conns_refused, errors_4xx, errors_5xx, timeouts, traversal;
    uint64_t conns_open;
    uint64_t streams_open, streams_dropped;
};

/* Creates the worker's listener (SO_REUSEPORT) and starts accepting. */
int http_service_start(struct http_service **out, struct io_loop *loop, const struct http_service_config *cfg,
                       char *err, size_t errlen);
/* Stops accepting and closes idle connections; in-flight responses go on. */
void http_service_drain(struct http_service *s);
/* Closes every connection now. */
void http_service_abort(struct http_service *s);
/* Connections still open. */
unsigned http_service_open_conns(const struct http_service *s);
/* Writes buffered access-log lines (call from the loop's idle hook). */
void http_service_flush_log(struct http_service *s);
void http_service_get_stats(const struct http_service *s, struct http_service_stats *out);

/* Streams (Server-Sent Events, issue 6).  A route answering a GET with
 * resp->stream = true gets a head without a length (Content-Type
 * resp->content_type, Cache-Control: no-cache, Connection: close), then
 * resp->body, and the connection stays open as a stream of this service
 * until the client closes it or the service drains.  Broadcast appends to
 * every stream of the service (call on its worker thread); a stream whose
 * unsent bytes would exceed stream_max_unsent, or that takes nothing for
 * send_timeout_s, is closed: a slow reader is dropped and never blocks the
 * worker.  Returns the streams written to. */
unsigned http_service_broadcast(struct http_service *s, const void *data, size_t len);
unsigned http_service_stream_count(const struct http_service *s);
/* Frees the service once it has no open connections. */
void http_service_free(struct http_service *s);

#endif
