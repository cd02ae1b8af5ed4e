/* tests/unit/engine/test_file_cache.c — the per-worker open-file cache on a real
 * directory: one descriptor shared by every holder, small files in memory,
 * re-validation once a second (a changed file is a new entry, its holders keep
 * theirs), nothing outside the root, and the readahead record (one advice per
 * block per FILE_CACHE_RA_FRESH_MS). */
#include "engine/file_cache.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1ull << 20)

static char dir[64];
static int root_fd = -1;
static struct file_cache *fc;

static void write_file(const char *rel, const char *content, uint64_t sparse_size)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0, "create %s: %s", p, strerror(errno));
    if (content)
        cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    else
        cr_assert_eq(ftruncate(fd, (off_t)sparse_size), 0);
    close(fd);
}

static void setup(void)
{
    strcpy(dir, "/tmp/bs-file-cache.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    root_fd = open(dir, O_PATH | O_DIRECTORY);
    cr_assert(root_fd >= 0);
    fc = file_cache_new(root_fd, 4096, 64);
    cr_assert_not_null(fc);
}

static void teardown(void)
{
    file_cache_free(fc);
    close(root_fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(file_cache, .init = setup, .fini = teardown);

Test(file_cache, small_file_in_memory_and_one_descriptor_shared)
{
    write_file("ks.cfg", "text=1\n", 0);
    struct file_entry *a, *b;
    cr_assert_eq(file_cache_open(fc, "ks.cfg", 1000, &a), 0);
    cr_assert_eq(file_cache_open(fc, "ks.cfg", 1500, &b), 0);
    cr_assert_eq(a, b, "a second holder shares the entry");
    cr_assert_eq(a->size, 7);
    cr_assert_not_null(a->data);
    cr_assert_eq(memcmp(a->data, "text=1\n", 7), 0);
    cr_assert(!a->is_dir);
    cr_assert_neq(a->etag[0], 0);
    file_cache_release(fc, a);
    file_cache_release(fc, b);
}

Test(file_cache, large_file_not_in_memory)
{
    write_file("install.img", NULL, 8 * MIB);
    struct file_entry *e;
    cr_assert_eq(file_cache_open(fc, "install.img", 0, &e), 0);
    cr_assert_eq(e->size, 8 * MIB);
    cr_assert_null(e->data);
    cr_assert(e->fd >= 0);
    file_cache_release(fc, e);
}

Test(file_cache, changed_file_is_a_new_entry_after_a_second)
{
    write_file("ks.cfg", "one\n", 0);
    struct file_entry *a, *b, *c;
    cr_assert_eq(file_cache_open(fc, "ks.cfg", 1000, &a), 0);
    write_file("ks.cfg", "second\n", 0);
    cr_assert_eq(file_cache_open(fc, "ks.cfg", 1999, &b), 0);
    cr_assert_eq(b, a, "within a second the entry is not checked");
    file_cache_release(fc, b);
    cr_assert_eq(file_cache_open(fc, "ks.cfg", 2000, &c), 0);
    cr_assert_neq(c, a, "changed: a new entry");
    cr_assert_eq(c->size, 7);
    cr_assert_eq(memcmp(c->data, "second\n", 7), 0);
    cr_assert_eq(memcmp(a->data, "one\n", 4), 0, "the old holder keeps its copy");
    file_cache_release(fc, a); /* freed here: the cache let go of it */
    file_cache_release(fc, c);
}

Test(file_cache, nothing_outside_the_root)
{
    struct file_entry *e;
    cr_assert_eq(file_cache_open(fc, "missing", 0, &e), -ENOENT);
    char link[256];
    snprintf(link, sizeof(link), "%s/escape", dir);
    cr_assert_eq(symlink("/etc/passwd", link), 0);
    cr_assert_eq(file_cache_open(fc, "escape", 0, &e), -EXDEV);
    snprintf(link, sizeof(link), "%s/up", dir);
    cr_assert_eq(symlink("..", link), 0);
    cr_assert_eq(file_cache_open(fc, "up/etc/passwd", 0, &e), -EXDEV);
    char fifo[256];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    cr_assert_eq(file_cache_open(fc, "fifo", 0, &e), -EACCES);
}

Test(file_cache, readahead_once_per_block_while_fresh)
{
    write_file("install.img", NULL, 64 * MIB);
    struct file_entry *e;
    cr_assert_eq(file_cache_open(fc, "install.img", 0, &e), 0);
    uint64_t t = 10000;
    cr_assert(file_cache_readahead(e, 1 * MIB, 8 * MIB, t), "first advice");
    cr_assert(!file_cache_readahead(e, 1 * MIB, 8 * MIB, t + 10), "the same window again: skipped");
    cr_assert(!file_cache_readahead(e, 2 * MIB, 4 * MIB, t + 20), "inside it: skipped");
    cr_assert(file_cache_readahead(e, 5 * MIB, 8 * MIB, t + 30), "reaches past it: advised");
    cr_assert(!file_cache_readahead(e, 9 * MIB, 4 * MIB, t + 40), "now covered");
    cr_assert(file_cache_readahead(e, 1 * MIB, 8 * MIB, t + FILE_CACHE_RA_FRESH_MS),
              "stale after FILE_CACHE_RA_FRESH_MS");
    cr_assert(!file_cache_readahead(e, 1 * MIB, 8 * MIB, t + FILE_CACHE_RA_FRESH_MS + 1));
    file_cache_release(fc, e);
}

Test(file_cache, readahead_partial_blocks_are_not_recorded)
{
    write_file("install.img", NULL, 10 * MIB + 100);
    struct file_entry *e;
    cr_assert_eq(file_cache_open(fc, "install.img", 0, &e), 0);
    /* a Range read starting inside block 0 covers none of it whole */
    cr_assert(file_cache_readahead(e, 1000, 2 * MIB, 50));
    cr_assert(file_cache_readahead(e, 1000, 2 * MIB, 60), "block 0 was not advised whole");
    cr_assert(!file_cache_readahead(e, 1 * MIB, 1 * MIB, 70), "block 1 was");
    /* to the end of the file: the short last block counts as whole */
    cr_assert(file_cache_readahead(e, 8 * MIB, 8 * MIB, 80));
    cr_assert(!file_cache_readahead(e, 10 * MIB, 100, 90));
    cr_assert(!file_cache_readahead(e, 9 * MIB, 64 * MIB, 95), "clipped at the end of the file");
    cr_assert(!file_cache_readahead(e, 10 * MIB + 100, MIB, 99), "past the end: nothing to advise");
    cr_assert(!file_cache_readahead(e, 0, 0, 99), "empty: nothing to advise");
    file_cache_release(fc, e);
}

Test(file_cache, readahead_windows_on_block_boundaries_are_recorded)
{
    /* the HTTP service's windows: the first from just past the first chunk
     * (256 KiB here) to a block boundary, then whole blocks; a second reader
     * of the file within FILE_CACHE_RA_FRESH_MS advises only the first */
    write_file("install.img", NULL, 40 * MIB);
    struct file_entry *e;
    cr_assert_eq(file_cache_open(fc, "install.img", 0, &e), 0);
    uint64_t starts[] = {256 * 1024, 8 * MIB, 16 * MIB, 24 * MIB, 32 * MIB};
    uint64_t ends[] = {8 * MIB, 16 * MIB, 24 * MIB, 32 * MIB, 40 * MIB};
    for (int i = 0; i < 5; i++)
        cr_assert(file_cache_readahead(e, starts[i], ends[i] - starts[i], 100 + (uint64_t)i), "reader 1, window %d", i);
    cr_assert(file_cache_readahead(e, starts[0], ends[0] - starts[0], 200), "block 0 was never covered whole");
    for (int i = 1; i < 5; i++)
        cr_assert(!file_cache_readahead(e, starts[i], ends[i] - starts[i], 200 + (uint64_t)i), "reader 2, window %d", i);
    file_cache_release(fc, e);
}

Test(file_cache, recheck_follows_the_name_not_the_descriptor)
{
    /* cached "d/f"; then d becomes a symlink to a directory outside the root
     * with an f of its own: the re-check a second later sees another file and
     * opens afresh, beneath the root, which refuses it */
    char p[256], outside[64];
    snprintf(p, sizeof(p), "%s/d", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    write_file("d/f", "inside\n", 0);
    struct file_entry *e, *again;
    cr_assert_eq(file_cache_open(fc, "d/f", 1000, &e), 0);
    strcpy(outside, "/tmp/bs-file-cache-out.XXXXXX");
    cr_assert_not_null(mkdtemp(outside));
    char of[128];
    snprintf(of, sizeof(of), "%s/f", outside);
    FILE *f = fopen(of, "w");
    cr_assert_not_null(f);
    fputs("outside\n", f);
    fclose(f);
    char moved[300];
    snprintf(moved, sizeof(moved), "%s/d.old", dir);
    cr_assert_eq(rename(p, moved), 0);
    cr_assert_eq(symlink(outside, p), 0);
    cr_assert_eq(file_cache_open(fc, "d/f", 2500, &again), -EXDEV);
    cr_assert_eq(memcmp(e->data, "inside\n", 7), 0, "the holder keeps what it had");
    file_cache_release(fc, e);
    unlink(of);
    rmdir(outside);
}

Test(file_cache, unchanged_entries_kept_across_rechecks)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/repo", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    write_file("big.img", NULL, 2 * MIB);
    struct file_entry *d1, *d2, *f1, *f2;
    cr_assert_eq(file_cache_open(fc, "repo", 1000, &d1), 0);
    cr_assert(d1->is_dir);
    cr_assert_eq(file_cache_open(fc, "big.img", 1000, &f1), 0);
    cr_assert_eq(file_cache_open(fc, "repo", 5000, &d2), 0);
    cr_assert_eq(file_cache_open(fc, "big.img", 5000, &f2), 0);
    cr_assert_eq(d2, d1, "a directory is the same entry after a re-check");
    cr_assert_eq(f2, f1, "so is an unchanged file");
    file_cache_release(fc, d1);
    file_cache_release(fc, d2);
    file_cache_release(fc, f1);
    file_cache_release(fc, f2);
}
