/* bench/zerocopy.c — the zero-copy candidates of issue 2, measured on this kernel.
 *
 * Serves one file over N loopback TCP connections with each method in turn
 * and reports GB/s, the sender's CPU per GB (its own threads and the io-wq
 * workers its ring starts) and the receiver's.  The receiver is a separate
 * process that drops bodies in the kernel (recv MSG_TRUNC), as bootstorm-load
 * does, so the sender is what is measured.  Methods:
 *   sendfile  sendfile(2) from the sending thread, one chunk per writable
 *             connection per turn (epoll): what bootstorm's worker does;
 *   splice    IORING_OP_SPLICE file -> pipe linked to pipe -> socket, one pipe
 *             per connection (the kernel runs file splices on io-wq threads);
 *   sendzc    IORING_OP_SEND_ZC from the file mmapped (MAP_POPULATE), as a
 *             registered buffer when the kernel accepts file-backed memory
 *             there, else unregistered (pages pinned per send);
 *   sendzc-fixed  IORING_OP_SEND_ZC from an anonymous in-memory copy of the
 *             file, registered as a fixed buffer (what serving hot content
 *             from memory by send_zc would cost, without per-send pinning);
 *   send      IORING_OP_SEND (a copy) from the same mapping: the baseline
 *             that says what "zero" saves.
 * Built and run by bench/zerocopy.sh.  On loopback an skb carrying user pages
 * (MSG_ZEROCOPY, send_zc) is copied when it reaches the local receiver, while
 * page-cache pages from sendfile/splice are passed by reference: read sendzc's
 * figure here as its floor, not its NIC figure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct opts {
    const char *file;
    unsigned conns;
    double secs;
    size_t chunk;
    int scpu, ccpu;
};

struct conn {
    int fd;
    int pipe[2];           /* splice */
    uint64_t off;          /* next file offset to send */
    size_t in_pipe;        /* splice: bytes spliced into the pipe, not yet out */
    unsigned inflight;     /* SQEs not yet completed */
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this whole process: every thread, io-wq workers included. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        perror("sched_setaffinity");
}

static void die(const char *what, int err)
{
    fprintf(stderr, "zerocopy: %s: %s\n", what, strerror(err));
    exit(1);
}

/* The receiver: connects n sockets, drains them until each reaches EOF,
 * then writes its CPU seconds to report_fd. */
static void receiver(uint16_t port, unsigned n, int report_fd)
{
    int ep = epoll_create1(0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (unsigned i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("receiver connect", errno);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    static char sink[1 << 20]; /* untouched: MSG_TRUNC drops TCP data in the kernel */
    unsigned open_conns = n;
    struct epoll_event evs[256];
    double c0 = cpu_s();
    while (open_conns) {
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            for (;;) {
                ssize_t r = recv(fd, sink, sizeof(sink), MSG_TRUNC | MSG_DONTWAIT);
                if (r > 0)
                    continue;
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    break;
                close(fd); /* EOF or error: epoll forgets a closed fd */
                open_conns--;
                break;
            }
        }
    }
    double c = cpu_s() - c0;
    ssize_t w = write(report_fd, &c, sizeof(c));
    (void)w;
    _exit(0);
}

struct run {
    const struct opts *o;
    int file_fd;
    uint64_t size;
    const char *map; /* sendzc/send */
    struct conn *c;
    struct io_uring ring;
    uint64_t bytes;
    unsigned notifs; /* send_zc notifications still to come */
    bool registered;
    double deadline;
};

static size_t next_len(const struct run *r, const struct conn *c)
{
    uint64_t left = r->size - c->off;
    return left < r->o->chunk ? (size_t)left : r->o->chunk;
}

static void advance(struct run *r, struct conn *c, size_t n)
{
    c->off += n;
    if (c->off >= r->size)
        c->off = 0; /* the file again, from the start */
}

/* ---- sendfile(2) from the sender thread ---------------------------------- */

static void run_sendfile(struct run *r)
{
    int ep = epoll_create1(0);
    for (unsigned i = 0; i < r->o->conns; i++) {
        fcntl(r->c[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, r->c[i].fd, &ev);
    }
    struct epoll_event evs[1024];
    while (mono_s() < r->deadline) {
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int i = 0; i < k; i++) { /* one chunk per writable connection per turn */
            struct conn *c = &r->c[evs[i].data.u32];
            off_t off = (off_t)c->off;
            ssize_t n = sendfile(c->fd, r->file_fd, &off, next_len(r, c));
            if (n > 0) {
                r->bytes += (uint64_t)n;
                advance(r, c, (size_t)n);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                die("sendfile", errno);
            }
        }
    }
    close(ep);
}

/* ---- the ring methods ------------------------------------------------------ */

#define UD(i, kind) (((uint64_t)(i) << 2) | (kind))
enum { K_IN = 0, K_OUT = 1, K_SEND = 2 };

static struct io_uring_sqe *sqe_get(struct run *r)
{
    struct io_uring_sqe *s;
    while (!(s = io_uring_get_sqe(&r->ring)))
        io_uring_submit(&r->ring);
    return s;
}

enum method { M_SENDFILE, M_SPLICE, M_SENDZC, M_SENDZC_FIXED, M_SEND };

static void ring_step(struct run *r, enum method m, unsigned i)
{
    struct conn *c = &r->c[i];
    struct io_uring_sqe *s;
    if (m == M_SPLICE) {
        if (c->in_pipe) { /* what a short socket splice left in the pipe goes first */
            s = sqe_get(r);
            io_uring_prep_splice(s, c->pipe[0], -1, c->fd, -1, (unsigned)c->in_pipe, 0);
            io_uring_sqe_set_data64(s, UD(i, K_OUT));
            c->inflight = 1;
            return;
        }
        size_t len = next_len(r, c);
        s = sqe_get(r);
        io_uring_prep_splice(s, r->file_fd, (int64_t)c->off, c->pipe[1], -1, (unsigned)len, 0);
        s->flags |= IOSQE_IO_LINK; /* a short read breaks the link: the OUT half ends -ECANCELED */
        io_uring_sqe_set_data64(s, UD(i, K_IN));
        s = sqe_get(r);
        io_uring_prep_splice(s, c->pipe[0], -1, c->fd, -1, (unsigned)len, 0);
        io_uring_sqe_set_data64(s, UD(i, K_OUT));
        c->inflight = 2;
        return;
    }
    size_t len = next_len(r, c);
    s = sqe_get(r);
    if (m == M_SEND) {
        io_uring_prep_send(s, c->fd, r->map + c->off, len, MSG_NOSIGNAL);
    } else if (r->registered) {
        io_uring_prep_send_zc_fixed(s, c->fd, r->map + c->off, len, MSG_NOSIGNAL, 0, 0);
    } else {
        io_uring_prep_send_zc(s, c->fd, r->map + c->off, len, MSG_NOSIGNAL, 0);
    }
    io_uring_sqe_set_data64(s, UD(i, K_SEND));
    c->inflight = 1;
}

/* Ring, registered buffer and pipes: set up before the clock starts (pinning
 * a few hundred MiB for a fixed buffer takes a while and is done once). */
static void ring_setup(struct run *r, enum method m)
{
    unsigned n = r->o->conns;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int rc = io_uring_queue_init_params(4 * n + 64, &r->ring, &p);
    if (rc < 0) {
        memset(&p, 0, sizeof(p));
        rc = io_uring_queue_init_params(4 * n + 64, &r->ring, &p);
    }
    if (rc < 0)
        die("io_uring_queue_init", -rc);
    if (m == M_SENDZC || m == M_SENDZC_FIXED) {
        struct iovec iov = {(void *)r->map, (size_t)r->size};
        rc = io_uring_register_buffers(&r->ring, &iov, 1);
        r->registered = rc == 0;
        if (rc < 0 && m == M_SENDZC_FIXED)
            die("registering the in-memory copy", -rc);
        if (rc < 0)
            fprintf(stderr, "zerocopy: sendzc: registering the mapped file refused (%s): unregistered send_zc\n",
                    strerror(-rc));
    }
    for (unsigned i = 0; i < n; i++) {
        if (m == M_SPLICE) {
            if (pipe2(r->c[i].pipe, O_CLOEXEC) < 0)
                die("pipe2", errno);
            /* room for a whole chunk, so one file splice fills what one socket splice takes */
            if (fcntl(r->c[i].pipe[1], F_SETPIPE_SZ, (int)r->o->chunk) < 0)
                die("F_SETPIPE_SZ (chunk above /proc/sys/fs/pipe-max-size?)", errno);
        }
    }
}

static void run_ring(struct run *r, enum method m)
{
    unsigned n = r->o->conns;
    for (unsigned i = 0; i < n; i++)
        ring_step(r, m, i);
    unsigned active = n;
    while (active || r->notifs) {
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait(&r->ring, 1);
        unsigned head, seen = 0;
        bool over = mono_s() >= r->deadline;
        io_uring_for_each_cqe(&r->ring, head, cqe)
        {
            seen++;
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            unsigned i = (unsigned)(ud >> 2), kind = (unsigned)(ud & 3);
            struct conn *c = &r->c[i];
            int res = cqe->res;
            if (cqe->flags & IORING_CQE_F_NOTIF) { /* send_zc: the pages are the kernel's no more */
                r->notifs--;
                continue;
            }
            if ((cqe->flags & IORING_CQE_F_MORE) && kind == K_SEND)
                r->notifs++;
            if (res < 0 && res != -ECANCELED && res != -EAGAIN && res != -EINTR)
                die(kind == K_IN ? "splice file->pipe" : kind == K_OUT ? "splice pipe->socket" : "send", -res);
            if (kind == K_IN && res > 0) {
                c->in_pipe += (size_t)res;
                advance(r, c, (size_t)res);
            } else if (res > 0) {
                if (kind == K_OUT)
                    c->in_pipe -= (size_t)res;
                else
                    advance(r, c, (size_t)res);
                r->bytes += (uint64_t)res;
            }
            if (--c->inflight == 0) {
                if (!over || c->in_pipe) /* at the end only what is in a pipe still goes */
                    ring_step(r, m, i);
                else
                    active--;
            }
        }
        io_uring_cq_advance(&r->ring, seen);
    }
    if (r->registered)
        io_uring_unregister_buffers(&r->ring);
    io_uring_queue_exit(&r->ring);
    for (unsigned i = 0; i < n && m == M_SPLICE; i++) {
        close(r->c[i].pipe[0]);
        close(r->c[i].pipe[1]);
    }
}

static const char *method_name(enum method m)
{
    static const char *names[] = {"sendfile", "splice", "sendzc", "sendzc-fixed", "send"};
    return names[m];
}

static int run_one(const struct opts *o, enum method m)
{
    struct run r = {.o = o};
    r.file_fd = open(o->file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (r.file_fd < 0 || fstat(r.file_fd, &st) < 0)
        die(o->file, errno);
    r.size = (uint64_t)st.st_size;
    if (r.size == 0) {
        fprintf(stderr, "zerocopy: %s is empty\n", o->file);
        return 1;
    }
    if (m == M_SENDZC || m == M_SEND) {
        r.map = mmap(NULL, r.size, PROT_READ, MAP_SHARED | MAP_POPULATE, r.file_fd, 0);
        if (r.map == MAP_FAILED)
            die("mmap", errno);
    } else if (m == M_SENDZC_FIXED) {
        char *p = mmap(NULL, r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED)
            die("mmap anonymous", errno);
        for (uint64_t off = 0; off < r.size;) {
            ssize_t n = pread(r.file_fd, p + off, r.size - off, (off_t)off);
            if (n <= 0)
                die("pread", n < 0 ? errno : EIO);
            off += (uint64_t)n;
        }
        r.map = p;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
        die("listen", errno);
    int rep[2];
    if (pipe(rep) < 0)
        die("pipe", errno);
    pid_t pid = fork();
    if (pid == 0) {
        close(rep[0]);
        pin(o->ccpu);
        receiver(ntohs(a.sin_port), o->conns, rep[1]);
    }
    close(rep[1]);
    r.c = calloc(o->conns, sizeof(*r.c));
    for (unsigned i = 0; i < o->conns; i++) {
        r.c[i].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (r.c[i].fd < 0)
            die("accept", errno);
        int one = 1;
        setsockopt(r.c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        r.c[i].off = (uint64_t)i * (r.size / o->conns) & ~(uint64_t)4095; /* spread over the file */
    }
    close(lfd);
    if (m != M_SENDFILE)
        ring_setup(&r, m);
    double t0 = mono_s(), c0 = cpu_s();
    r.deadline = t0 + o->secs;
    if (m == M_SENDFILE)
        run_sendfile(&r);
    else
        run_ring(&r, m);
    double t = mono_s() - t0, cpu = cpu_s() - c0;
    for (unsigned i = 0; i < o->conns; i++)
        close(r.c[i].fd);
    double ccpu = 0;
    ssize_t got = read(rep[0], &ccpu, sizeof(ccpu));
    (void)got;
    close(rep[0]);
    waitpid(pid, NULL, 0);
    double gb = (double)r.bytes / 1e9;
    printf("%-12s %5u conns  chunk %4zu KiB  %6.2f GB/s  sender CPU %5.3f s/GB (%3.0f%% of a core)  "
           "receiver CPU %5.3f s/GB%s\n",
           method_name(m), o->conns, o->chunk >> 10, gb / t, cpu / gb, 100 * cpu / t, ccpu / gb,
           m == M_SENDZC || m == M_SENDZC_FIXED ? (r.registered ? "  [registered buffer]" : "  [unregistered]") : "");
    fflush(stdout);
    if (r.map)
        munmap((void *)r.map, r.size);
    close(r.file_fd);
    free(r.c);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: zerocopy -f FILE [-m sendfile|splice|sendzc|sendzc-fixed|send|all] [-c CONNS]\n"
            "                [-s SECONDS]"
            " [-k CHUNK_KIB] [-S SENDER_CPU] [-C RECEIVER_CPU]\n"
            "  defaults: -m all -c 32 -s 5 -k 256 -S 0 -C 1 (-1: not pinned)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct opts o = {.conns = 32, .secs = 5, .chunk = 256 * 1024, .scpu = 0, .ccpu = 1};
    const char *meth = "all";
    int ch;
    while ((ch = getopt(argc, argv, "f:m:c:s:k:S:C:h")) != -1) {
        char *end = NULL;
        switch (ch) {
        case 'f': o.file = optarg; break;
        case 'm': meth = optarg; break;
        case 'c': o.conns = (unsigned)strtoul(optarg, &end, 10); break;
        case 's': o.secs = strtod(optarg, &end); break;
        case 'k': o.chunk = (size_t)strtoul(optarg, &end, 10) * 1024; break;
        case 'S': o.scpu = (int)strtol(optarg, &end, 10); break;
        case 'C': o.ccpu = (int)strtol(optarg, &end, 10); break;
        default: usage();
        }
        if (end && *end) {
            fprintf(stderr, "zerocopy: -%c %s: not a number\n", ch, optarg);
            return 2;
        }
    }
    if (!o.file || o.conns == 0 || o.conns > 10000 || o.secs <= 0 || o.chunk == 0 || o.chunk > (1u << 30))
        usage();
    signal(SIGPIPE, SIG_IGN);
    pin(o.scpu);
    static const struct { const char *name; enum method m; } all[] = {
        {"sendfile", M_SENDFILE}, {"splice", M_SPLICE}, {"sendzc", M_SENDZC},
        {"sendzc-fixed", M_SENDZC_FIXED}, {"send", M_SEND}};
    bool any = false;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(meth, "all") == 0 || strcmp(meth, all[i].name) == 0) {
            any = true;
            run_one(&o, all[i].m);
        }
    }
    if (!any) {
        fprintf(stderr, "zerocopy: -m %s: not a method (sendfile, splice, sendzc, sendzc-fixed, send, all)\n", meth);
        return 2;
    }
    return 0;
}
