/* engine/vfile.h — virtual files: content made in memory (the per-host loader
 * configurations: pxelinux.cfg/01-<mac>, <uuid>, hex-IP prefixes, grub.cfg-01-<mac>,
 * iPXE scripts) and served by TFTP exactly like a file on disk: same tsize,
 * blksize, windows, netascii.  Nothing is written to disk.
 *
 * A vfile is immutable once made and reference-counted with atomics, so one
 * rendered file may be handed to transfers on several worker threads at once.
 * Whoever holds a reference may read data[0..size) until vfile_unref().
 *
 * The provider is the hook issue 5 fills in: the TFTP service asks it first
 * for every read request, with the normalised path (relative to the TFTP root,
 * no leading '/', no "..", '\' already turned into '/') and the client's IPv4
 * address.  It runs on the worker threads, concurrently: it must be
 * thread-safe and must not block for long (no disk or network round trips). */
#ifndef BOOTSTORM_ENGINE_VFILE_H
#define BOOTSTORM_ENGINE_VFILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vfile {
    const uint8_t *data; /* size bytes; NULL only when size == 0 */
    size_t size;
    /* private */
    atomic_uint refs;
    void (*release)(void *arg); /* frees the content; NULL: it lives inside the vfile */
    void *release_arg;
};

/* A vfile holding a copy of data[0..size) (one allocation).  Returns it with one
 * reference, or NULL when out of memory. */
struct vfile *vfile_new_copy(const void *data, size_t size);
/* A vfile over content the caller made (e.g. a rendered template): data stays
 * valid until release(release_arg) is called, once, when the last reference
 * goes.  release may be NULL for static content.  NULL when out of memory (then
 * release is NOT called: the caller still owns data). */
struct vfile *vfile_new_wrap(const void *data, size_t size, void (*release)(void *arg), void *release_arg);
/* Adds a reference; returns f. */
struct vfile *vfile_ref(struct vfile *f);
/* Drops a reference; the last one frees the vfile and its content.  NULL is ignored. */
void vfile_unref(struct vfile *f);

/* The provider interface.
 * open: true  → *out is a referenced vfile for path as seen by this client (the
 *               caller unrefs it when the transfer ends);
 *       false → not a virtual file: the service looks on disk under the root.
 * client_ip_be: the client's IPv4 address in network byte order. */
struct vfile_provider {
    bool (*open)(void *ctx, const char *path, uint32_t client_ip_be, struct vfile **out);
    void *ctx;
};

#endif
