/* engine/profile.c — see profile.h. */
#include "engine/profile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define PROFILE_FILE_MAX (64u << 10)
#define PROFILES_MAX 1024

struct profile_set {
    char *dir;
    struct profile **items;
    size_t count;
};

struct loader {
    profile_report_fn report;
    void *ctx;
    unsigned problems;
};

static void problem(struct loader *l, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(struct loader *l, const char *file, unsigned line, const char *fmt, ...)
{
    char msg[1024];
    int n = line ? snprintf(msg, sizeof msg, "%s:%u: ", file, line) : snprintf(msg, sizeof msg, "%s: ", file);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    l->problems++;
    if (l->report)
        l->report(l->ctx, msg);
}

bool profile_valid_path(const char *p)
{
    if (!*p || *p == '/')
        return false;
    const char *seg = p;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*c == '\0')
                return true;
            seg = c + 1;
            continue;
        }
        unsigned char u = (unsigned char)*c;
        if (u <= ' ' || u >= 0x7f || *c == '"' || *c == '\'' || *c == '\\')
            return false;
    }
}

static void profile_free(struct profile *p)
{
    if (!p)
        return;
    free(p->label);
    free(p->kernel);
    free(p->initrd);
    template_free(p->append);
    free(p->kickstart);
    template_free(p->ks);
    free(p->loader_bios);
    free(p->loader_efi64);
    free(p->path);
    free(p);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *e = '\0';
    return s;
}

enum key { K_LABEL, K_KERNEL, K_INITRD, K_APPEND, K_KICKSTART, K_LOADER_BIOS, K_LOADER_EFI64, K_LOCAL, K_COUNT };
static const char *const key_names[K_COUNT] = { "label", "kernel", "initrd", "append", "kickstart",
                                                "loader_bios", "loader_efi64", "local_after_install" };

static int parse_bool(const char *v)
{
    static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]))
            return 1;
        if (!strcasecmp(v, no[i]))
            return 0;
    }
    return -1;
}

/* One key = value; false (reported) when bad. */
static bool set_key(struct loader *l, struct profile *p, const char *dir, enum key k, const char *v, unsigned line)
{
    char tname[4200];
    char err[1024];
    switch (k) {
    case K_LABEL:
        for (const char *c = v; *c; c++)
            if ((unsigned char)*c < ' ' || *c == 0x7f) {
                problem(l, p->path, line, "label: control character");
                return false;
            }
        return (p->label = strdup(v)) != NULL;
    case K_KERNEL:
    case K_INITRD:
    case K_LOADER_BIOS:
    case K_LOADER_EFI64: {
        if (!profile_valid_path(v)) {
            problem(l, p->path, line, "%s \"%s\": not a relative path inside the served root (no '..', blanks, quotes)",
                    key_names[k], v);
            return false;
        }
        char **dst = k == K_KERNEL ? &p->kernel : k == K_INITRD ? &p->initrd
                   : k == K_LOADER_BIOS ? &p->loader_bios : &p->loader_efi64;
        return (*dst = strdup(v)) != NULL;
    }
    case K_APPEND:
        if (template_compile_at(p->path, line, v, strlen(v), &p->append, err, sizeof err) < 0) {
            l->problems++; /* err already reads "FILE:LINE: problem" */
            if (l->report)
                l->report(l->ctx, err);
            return false;
        }
        return true;
    case K_KICKSTART:
        if (!profile_valid_path(v)) {
            problem(l, p->path, line, "kickstart \"%s\": not a relative path inside %s", v, dir);
            return false;
        }
        if (!(p->kickstart = strdup(v)))
            return false;
        snprintf(tname, sizeof tname, "%s/%s", dir, v);
        int rc = template_load(tname, &p->ks, err, sizeof err);
        if (rc < 0) {
            /* the template's own errors name its file and line; a missing file names the profile's line */
            if (rc == -ENOENT)
                problem(l, p->path, line, "kickstart %s: no such file", tname);
            else {
                l->problems++;
                if (l->report)
                    l->report(l->ctx, err);
            }
            return false;
        }
        return true;
    case K_LOCAL: {
        int b = parse_bool(v);
        if (b < 0) {
            problem(l, p->path, line, "local_after_install \"%s\": want yes or no", v);
            return false;
        }
        p->local_after_install = b;
        return true;
    }
    case K_COUNT:
        break;
    }
    return false;
}

static struct profile *load_one(struct loader *l, const char *dir, const char *file)
{
    struct profile *p = calloc(1, sizeof *p);
    size_t namelen = strlen(file) - 5; /* without ".conf" */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!p || !(p->path = strdup(path))) {
        profile_free(p);
        problem(l, path, 0, "out of memory");
        return NULL;
    }
    p->local_after_install = true;
    unsigned before = l->problems;
    if (namelen == 0 || namelen >= INV_NAME_MAX) {
        problem(l, path, 0, "profile name must be 1-%d characters", INV_NAME_MAX - 1);
    } else {
        memcpy(p->name, file, namelen);
        for (size_t i = 0; i < namelen; i++)
            if (!isalnum((unsigned char)p->name[i]) && !strchr("-_.", p->name[i])) {
                problem(l, path, 0, "profile name \"%s\": letters, digits, '-', '_', '.' only", p->name);
                break;
            }
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        problem(l, path, 0, "%s", strerror(errno));
        profile_free(p);
        return NULL;
    }
    unsigned seen[K_COUNT] = { 0 };
    char buf[8192];
    unsigned line = 0;
    size_t total = 0;
    while (fgets(buf, sizeof buf, f)) {
        line++;
        size_t n = strlen(buf);
        total += n;
        if (total > PROFILE_FILE_MAX) {
            problem(l, path, line, "file larger than %u bytes", PROFILE_FILE_MAX);
            break;
        }
        if (n == sizeof buf - 1 && buf[n - 1] != '\n') {
            problem(l, path, line, "line longer than %zu characters", sizeof buf - 2);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        if (n && buf[n - 1] == '\n')
            buf[--n] = '\0';
        char *s = trim(buf);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            problem(l, path, line, "not key = value: \"%s\"", s);
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        enum key k = K_COUNT;
        for (int i = 0; i < K_COUNT; i++)
            if (!strcmp(key, key_names[i]))
                k = (enum key)i;
        if (k == K_COUNT) {
            problem(l, path, line, "unknown key \"%s\" (label, kernel, initrd, append, kickstart, loader_bios, "
                    "loader_efi64, local_after_install)", key);
            continue;
        }
        if (seen[k]) {
            problem(l, path, line, "%s set twice (first on line %u)", key, seen[k]);
            continue;
        }
        seen[k] = line;
        if (!*val && k != K_APPEND && k != K_LABEL) {
            problem(l, path, line, "%s: empty value", key);
            continue;
        }
        unsigned had = l->problems;
        if (!set_key(l, p, dir, k, val, line) && l->problems == had)
            problem(l, path, line, "out of memory");
    }
    if (ferror(f))
        problem(l, path, 0, "read error");
    fclose(f);
    if (!seen[K_KERNEL])
        problem(l, path, 0, "no kernel = ... line");
    if (l->problems == before && !p->label && !(p->label = strdup(p->name)))
        problem(l, path, 0, "out of memory");
    if (l->problems != before) {
        profile_free(p);
        return NULL;
    }
    return p;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(struct profile *const *)a)->name, (*(struct profile *const *)b)->name);
}

int profile_set_load(const char *dir, struct profile_set **out, profile_report_fn report, void *ctx)
{
    *out = NULL;
    struct loader l = { report, ctx, 0 };
    struct profile_set *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir)) || !(s->items = calloc(PROFILES_MAX, sizeof *s->items))) {
        profile_set_free(s);
        return -ENOMEM;
    }
    DIR *d = opendir(dir);
    if (!d) {
        problem(&l, dir, 0, "%s", strerror(errno));
        profile_set_free(s);
        return -EINVAL;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n < 5 || strcmp(e->d_name + n - 5, ".conf"))
            continue;
        if (s->count == PROFILES_MAX) {
            problem(&l, dir, 0, "more than %d profiles", PROFILES_MAX);
            break;
        }
        struct profile *p = load_one(&l, dir, e->d_name);
        if (p)
            s->items[s->count++] = p;
    }
    closedir(d);
    if (s->count == 0 && l.problems == 0)
        problem(&l, dir, 0, "no profiles (NAME.conf files)");
    qsort(s->items, s->count, sizeof *s->items, by_name);
    if (s->count == 0) {
        profile_set_free(s);
        s = NULL;
    }
    *out = s;
    return l.problems ? -EINVAL : 0;
}

void profile_set_free(struct profile_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++)
        profile_free(s->items[i]);
    free(s->items);
    free(s->dir);
    free(s);
}

size_t profile_set_count(const struct profile_set *s) { return s ? s->count : 0; }
const char *profile_set_dir(const struct profile_set *s) { return s->dir; }

const struct profile *profile_set_at(const struct profile_set *s, size_t i)
{
    return s && i < s->count ? s->items[i] : NULL;
}

const struct profile *profile_find(const struct profile_set *s, const char *name)
{
    if (!s)
        return NULL;
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, s->items[mid]->name);
        if (c == 0)
            return s->items[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
