/* bench/load/httpc.h — an HTTP/1.1 client on bench/load/ev, cheap enough to
 * drive a server at full speed from one thread.
 *
 * A connection (struct httpc_conn) carries one request at a time and is kept
 * alive between requests when the server allows (RFC 9112 §9.3).  Bodies are
 * framed by Content-Length, chunked coding, or the end of the connection; a
 * body that is neither checked nor kept is dropped inside the kernel
 * (recv with MSG_TRUNC on a TCP socket discards without copying), so a large
 * download costs the client little more than the server's send.  A request
 * that fails on a reused connection before any byte of its response arrived
 * (the server closed an idle keep-alive connection) is sent again once on a
 * fresh connection, as browsers and installers do.
 *
 * Checks: the body's length against Content-Length and, for a complete 200
 * response, against the local reference file; with verify, its checksum. */
#ifndef BOOTSTORM_LOAD_HTTPC_H
#define BOOTSTORM_LOAD_HTTPC_H

#include "bench/load/verify.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum httpc_status {
    HTTPC_OK = 0,
    HTTPC_STATUS,   /* the server answered with another status than expected */
    HTTPC_CONNECT,  /* connect() failed (refused, unreachable) */
    HTTPC_CLOSED,   /* the connection ended before the response did */
    HTTPC_TIMEOUT,  /* no progress for the request timeout */
    HTTPC_PROTOCOL, /* a response that is not HTTP/1.x or cannot be framed */
    HTTPC_SIZE,     /* body length differs from Content-Length or the local file */
    HTTPC_CHECKSUM, /* body differs from the local file */
    HTTPC_SOCKET,   /* a local socket call failed */
};
const char *httpc_status_name(enum httpc_status s);

struct httpc_req;
typedef void (*httpc_done_fn)(void *arg, struct httpc_req *r);

struct httpc_req {
    /* in (the strings must stay valid until done) */
    const char *method;        /* "GET", "HEAD", "POST" */
    const char *path;          /* origin-form target, starting with '/' */
    const char *extra_headers; /* NULL or complete lines ending in CRLF */
    const void *body;          /* request body (POST) or NULL */
    size_t body_len;
    bool close;                /* send "Connection: close" */
    int expect_status;         /* 0: any 2xx */
    size_t keep_max;           /* keep up to this many body bytes; 0: none */
    enum verify_kind verify;
    const struct verify_ref *ref; /* checked against a complete 200 response; NULL: none */
    uint64_t timeout_ms;       /* no progress for this long → HTTPC_TIMEOUT; 0 = 30 s */
    httpc_done_fn done;
    void *arg;
    /* out */
    enum httpc_status status;
    int http_status;           /* 0 when no status line arrived */
    bool has_length;
    uint64_t content_length;
    uint64_t received;         /* body bytes */
    uint8_t *kept;             /* malloc'd, kept_len bytes, NUL-terminated; owned by the
                                  request (httpc_req_clear frees it) */
    size_t kept_len;
    bool reused;               /* sent on a connection that had served a request */
    unsigned retries;          /* resent on a fresh connection */
    uint64_t start_ns, first_byte_ns, end_ns;
    char reason[160];
};

/* Frees what a completed request holds (kept body) and zeroes its outputs. */
void httpc_req_clear(struct httpc_req *r);

struct httpc_target {
    struct sockaddr_in server;
    uint32_t bind_addr; /* local address, network order; 0: any */
    char host[80];      /* Host header value */
};

struct httpc_conn;
/* A connection object (no socket yet: the first request connects). */
struct httpc_conn *httpc_conn_new(const struct httpc_target *t);
/* Starts r on c.  c must not be busy.  The callback always comes later, from
 * the loop (also for immediate failures). */
void httpc_request(struct httpc_conn *c, struct httpc_req *r);
bool httpc_conn_busy(const struct httpc_conn *c);
/* Closes and frees c; a request in flight ends without its callback. */
void httpc_conn_free(struct httpc_conn *c);
/* Sets the local address used by the next connect (connection storms spread
 * over many source addresses so that TIME_WAIT never runs out of ports). */
void httpc_conn_set_bind(struct httpc_conn *c, uint32_t bind_addr);

struct httpc_counters {
    uint64_t bytes;    /* body bytes received, all connections */
    uint64_t connects; /* connections opened */
    uint64_t reconnects_idle; /* idle keep-alive connections the server closed */
};
void httpc_get_counters(struct httpc_counters *out);

/* Parses "http://HOST[:PORT]/path" (HOST: IPv4 address or a name resolved
 * now).  Fills *t (bind_addr 0) and path (cap bytes).  false with *why set. */
bool httpc_parse_url(const char *url, struct httpc_target *t, char *path, size_t cap, char *why, size_t whylen);

#endif
