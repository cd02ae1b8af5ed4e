/* engine/vfile.c — see vfile.h. */
#include "engine/vfile.h"

#include <stdlib.h>
#include <string.h>

struct vfile *vfile_new_copy(const void *data, size_t size)
{
    if (size > SIZE_MAX - sizeof(struct vfile))
        return NULL;
    struct vfile *f = malloc(sizeof(*f) + size);
    if (!f)
        return NULL;
    uint8_t *content = (uint8_t *)(f + 1);
    if (size)
        memcpy(content, data, size);
    f->data = size ? content : NULL;
    f->size = size;
    atomic_init(&f->refs, 1);
    f->release = NULL;
    f->release_arg = NULL;
    return f;
}

struct vfile *vfile_new_wrap(const void *data, size_t size, void (*release)(void *arg), void *release_arg)
{
    struct vfile *f = malloc(sizeof(*f));
    if (!f)
        return NULL;
    f->data = size ? data : NULL;
    f->size = size;
    atomic_init(&f->refs, 1);
    f->release = release;
    f->release_arg = release_arg;
    return f;
}

struct vfile *vfile_ref(struct vfile *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void vfile_unref(struct vfile *f)
{
    if (!f)
        return;
    /* acq_rel: the thread that frees must see every other holder's reads done */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (f->release)
        f->release(f->release_arg);
    free(f);
}
