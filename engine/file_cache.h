/* engine/file_cache.h — per-worker open-file cache for served trees.
 *
 * Hundreds of installers fetching the same install.img share one descriptor
 * and the page cache; small hot files (kickstarts, repodata, .treeinfo) are
 * kept in memory and go out in one send with their headers.  Paths are
 * resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) below the
 * root, so no request can name a file outside it, whatever the parser did.
 * One cache per worker thread: no locks. */
#ifndef BOOTSTORM_ENGINE_FILE_CACHE_H
#define BOOTSTORM_ENGINE_FILE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct file_entry {
    int fd;
    uint64_t size;
    time_t mtime;
    int64_t mtime_ns;
    uint64_t ino, dev;
    bool is_dir;
    const char *data;      /* whole content when size <= small_max, else NULL */
    char etag[56];
    /* private */
    uint32_t refs;
    uint64_t checked_ms;
    uint32_t hash;
    struct file_entry *next;
    char *path;
    uint64_t *ra_at;       /* per FILE_CACHE_RA_BLOCK: now_ms + 1 when last advised, 0 never */
};

struct file_cache;

/* root_fd: an O_PATH/O_DIRECTORY descriptor of the served root (not owned). */
struct file_cache *file_cache_new(int root_fd, size_t small_max, size_t max_entries);
void file_cache_free(struct file_cache *c);

/* Opens relpath (already normalised: no leading '/', no "..") below the root.
 * Returns 0 and a referenced entry, or -errno: -ENOENT, -EXDEV (escapes the
 * root, e.g. a symlink out of it), -ELOOP, -EACCES. Entries are re-validated
 * against the file system at most once a second. */
int file_cache_open(struct file_cache *c, const char *relpath, uint64_t now_ms, struct file_entry **out);
void file_cache_release(struct file_cache *c, struct file_entry *e);
/* Start reading [off, off+len) into the page cache without waiting
 * (POSIX_FADV_WILLNEED), unless every FILE_CACHE_RA_BLOCK it touches was
 * advised whole within the last FILE_CACHE_RA_FRESH_MS: 200 installers
 * reading install.img a few seconds apart, or an RPM fetched by many, cost
 * one advice per block, not one each.  A block counts as advised only when
 * a call covered all of it (or all of it up to the end of the file), so a
 * Range request that starts inside a block is advised itself.  Returns
 * whether it advised. */
#define FILE_CACHE_RA_BLOCK (1ull << 20)
#define FILE_CACHE_RA_FRESH_MS 5000u
bool file_cache_readahead(struct file_entry *e, uint64_t off, uint64_t len, uint64_t now_ms);

#endif
