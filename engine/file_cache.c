/* engine/file_cache.c — see file_cache.h. */
#include "engine/file_cache.h"
#include "proto/http.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BUCKETS 1024u

struct file_cache {
    int root_fd;
    size_t small_max, max_entries, count;
    struct file_entry *b[BUCKETS];
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

struct file_cache *file_cache_new(int root_fd, size_t small_max, size_t max_entries)
{
    struct file_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->root_fd = root_fd;
    c->small_max = small_max;
    c->max_entries = max_entries ? max_entries : 4096;
    return c;
}

static void entry_free(struct file_entry *e)
{
    if (e->fd >= 0)
        close(e->fd);
    free((void *)e->data);
    free(e->path);
    free(e->ra_at);
    free(e);
}

void file_cache_free(struct file_cache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < BUCKETS; i++) {
        struct file_entry *e = c->b[i], *n;
        for (; e; e = n) {
            n = e->next;
            entry_free(e); /* callers release theirs before the cache is freed */
        }
    }
    free(c);
}

static void unlink_entry(struct file_cache *c, struct file_entry *e)
{
    struct file_entry **pp = &c->b[e->hash % BUCKETS];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = e->next;
        c->count--;
    }
    e->next = NULL;
}

static int open_beneath(int root_fd, const char *rel)
{
    /* O_NONBLOCK: a FIFO planted in the tree must not hang the worker in
     * open() (it is refused below); cleared again on what is kept */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    if (!*rel)
        rel = ".";
    long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
    if (fd < 0)
        return -errno;
    return (int)fd;
}

static bool same_file(const struct file_entry *e, const struct stat *st)
{
    return (uint64_t)st->st_ino == e->ino && (uint64_t)st->st_dev == e->dev &&
           (e->is_dir ? S_ISDIR(st->st_mode) : (uint64_t)st->st_size == e->size) &&
           (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec == e->mtime_ns;
}

int file_cache_open(struct file_cache *c, const char *relpath, uint64_t now_ms, struct file_entry **out)
{
    uint32_t h = hash_str(relpath);
    struct file_entry *e = c->b[h % BUCKETS];
    while (e && (e->hash != h || strcmp(e->path, relpath) != 0))
        e = e->next;
    if (e && now_ms - e->checked_ms < 1000) {
        e->refs++;
        *out = e;
        return 0;
    }
    /* Still the file the name leads to?  One stat of the path answers that
     * (the RPM mix re-checks nearly every file every second: openat2, fstat
     * and close were three system calls and a resolve each time).  Nothing
     * is served from this stat: the descriptor was opened beneath the root,
     * and a name that now leads elsewhere is opened afresh below, beneath
     * the root again. */
    struct stat st;
    if (e && fstatat(c->root_fd, *relpath ? relpath : ".", &st, 0) == 0 && same_file(e, &st)) {
        e->checked_ms = now_ms;
        e->refs++;
        *out = e;
        return 0;
    }
    int fd = open_beneath(c->root_fd, relpath);
    if (fd < 0) {
        if (e) { /* gone: drop it from the cache; holders keep their copy */
            unlink_entry(c, e);
            file_cache_release(c, e);
        }
        return fd;
    }
    if (fstat(fd, &st) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (e && same_file(e, &st)) {
        close(fd);
        e->checked_ms = now_ms;
        e->refs++;
        *out = e;
        return 0;
    }
    if (e) {
        unlink_entry(c, e);
        file_cache_release(c, e);
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        close(fd);
        return -EACCES; /* devices, fifos, sockets are never served */
    }
    if (S_ISREG(st.st_mode) && fcntl(fd, F_SETFL, 0) < 0) { /* plain blocking reads again */
        int err = -errno;
        close(fd);
        return err;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->path = strdup(relpath))) {
        free(e);
        close(fd);
        return -ENOMEM;
    }
    e->fd = fd;
    e->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    e->mtime = st.st_mtim.tv_sec;
    e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    e->ino = (uint64_t)st.st_ino;
    e->dev = (uint64_t)st.st_dev;
    e->is_dir = S_ISDIR(st.st_mode);
    e->hash = h;
    e->checked_ms = now_ms;
    http_format_etag(e->etag, sizeof(e->etag), e->size, e->mtime_ns, e->ino);
    if (!e->is_dir && e->size > 0 && e->size <= c->small_max) {
        char *d = malloc(e->size);
        ssize_t n = d ? pread(fd, d, e->size, 0) : -1;
        if (n == (ssize_t)e->size)
            e->data = d;
        else
            free(d); /* changed under us: fall back to sendfile */
    } else if (!e->is_dir) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    if (c->count >= c->max_entries) { /* evict unreferenced entries of one bucket chain */
        for (unsigned i = 0; i < BUCKETS && c->count >= c->max_entries; i++) {
            struct file_entry **pp = &c->b[(h + i) % BUCKETS];
            while (*pp) {
                struct file_entry *x = *pp;
                if (x->refs == 1) { /* only the cache holds it */
                    *pp = x->next;
                    c->count--;
                    entry_free(x);
                } else {
                    pp = &x->next;
                }
            }
        }
    }
    e->next = c->b[h % BUCKETS];
    c->b[h % BUCKETS] = e;
    c->count++;
    e->refs = 2; /* the cache's and the caller's */
    *out = e;
    return 0;
}

void file_cache_release(struct file_cache *c, struct file_entry *e)
{
    (void)c;
    if (--e->refs == 0)
        entry_free(e); /* the cache let go of it earlier (changed or evicted) */
}

bool file_cache_readahead(struct file_entry *e, uint64_t off, uint64_t len, uint64_t now_ms)
{
    if (off >= e->size || len == 0)
        return false;
    uint64_t end = len > e->size - off ? e->size : off + len;
    uint64_t b0 = off / FILE_CACHE_RA_BLOCK, b1 = (end - 1) / FILE_CACHE_RA_BLOCK;
    if (!e->ra_at) /* without the record (no memory) every call advises */
        e->ra_at = calloc((size_t)((e->size + FILE_CACHE_RA_BLOCK - 1) / FILE_CACHE_RA_BLOCK), sizeof(*e->ra_at));
    if (e->ra_at) {
        bool fresh = true;
        for (uint64_t b = b0; b <= b1 && fresh; b++)
            fresh = e->ra_at[b] && now_ms + 1 - e->ra_at[b] < FILE_CACHE_RA_FRESH_MS;
        if (fresh)
            return false;
    }
    posix_fadvise(e->fd, (off_t)off, (off_t)(end - off), POSIX_FADV_WILLNEED);
    for (uint64_t b = b0; e->ra_at && b <= b1; b++) {
        uint64_t bs = b * FILE_CACHE_RA_BLOCK, be = bs + FILE_CACHE_RA_BLOCK;
        if (bs >= off && (be <= end || end == e->size))
            e->ra_at[b] = now_ms + 1;
    }
    return true;
}
