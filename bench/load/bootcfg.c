/* bench/load/bootcfg.c — see bootcfg.h. */
#include "bench/load/bootcfg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENTRIES_MAX 64
#define APPEND_MAX 1024

void bootcfg_uuid_str(const uint8_t u[16], char *out)
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
             u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

unsigned bootcfg_lookup_names(enum bootcfg_flavor f, const char *dir, const uint8_t mac[6], const uint8_t uuid[16],
                              uint32_t ip, char names[BOOTCFG_NAMES_MAX][BOOTCFG_PATH_MAX])
{
    unsigned n = 0;
    char macs[20];
    snprintf(macs, sizeof(macs), "%02x-%02x-%02x-%02x-%02x-%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    const uint8_t *b = (const uint8_t *)&ip; /* network order: b[0] is the first octet */
    char hex[9];
    snprintf(hex, sizeof(hex), "%02X%02X%02X%02X", b[0], b[1], b[2], b[3]);
    if (f == BOOTCFG_GRUB) {
        snprintf(names[n++], BOOTCFG_PATH_MAX, "%sgrub.cfg-01-%s", dir, macs);
        snprintf(names[n++], BOOTCFG_PATH_MAX, "%sgrub.cfg", dir);
        return n;
    }
    char us[37];
    bootcfg_uuid_str(uuid, us);
    snprintf(names[n++], BOOTCFG_PATH_MAX, "%spxelinux.cfg/%s", dir, us);
    snprintf(names[n++], BOOTCFG_PATH_MAX, "%spxelinux.cfg/01-%s", dir, macs);
    if (ip)
        for (int k = 8; k >= 1; k--)
            snprintf(names[n++], BOOTCFG_PATH_MAX, "%spxelinux.cfg/%.*s", dir, k, hex);
    snprintf(names[n++], BOOTCFG_PATH_MAX, "%spxelinux.cfg/default", dir);
    return n;
}

struct entry {
    char label[64];
    char id[64]; /* GRUB --id */
    char kernel[BOOTCFG_PATH_MAX];
    char initrd[BOOTCFG_PATH_MAX];
    char append[APPEND_MAX];
    bool localboot, menu_default;
};

/* Copies the first whitespace-delimited token of s (of length n) into out. */
static void first_token(const char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, k = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    while (i < n && !isspace((unsigned char)s[i]) && k + 1 < cap)
        out[k++] = s[i++];
    out[k] = 0;
}

static void copy_trim(const char *s, size_t n, char *out, size_t cap)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* Value of key=VALUE in a kernel command line (first occurrence), up to blank or comma when comma_ends. */
static bool arg_value(const char *args, const char *key, char *out, size_t cap, bool comma_ends)
{
    size_t kl = strlen(key);
    for (const char *p = args; (p = strstr(p, key)); p += kl) {
        if (p != args && !isspace((unsigned char)p[-1]))
            continue;
        const char *v = p + kl;
        size_t k = 0;
        while (*v && !isspace((unsigned char)*v) && !(comma_ends && *v == ',') && k + 1 < cap)
            out[k++] = *v++;
        out[k] = 0;
        return k > 0;
    }
    return false;
}

/* Strips "::" (PXELINUX absolute), "(tftp)"/"($root)" device prefixes (GRUB) and leading '/'. */
static void clean_path(char *p)
{
    char *s = p;
    if (!strncmp(s, "::", 2))
        s += 2;
    if (*s == '(') {
        char *e = strchr(s, ')');
        if (e)
            s = e + 1;
    }
    while (*s == '/')
        s++;
    memmove(p, s, strlen(s) + 1);
}

static void fill_from_entry(const struct entry *e, struct bootcfg *out)
{
    snprintf(out->label, sizeof(out->label), "%s", e->label);
    snprintf(out->kernel, sizeof(out->kernel), "%s", e->kernel);
    out->localboot = e->localboot;
    if (e->initrd[0])
        snprintf(out->initrd, sizeof(out->initrd), "%s", e->initrd);
    else
        arg_value(e->append, "initrd=", out->initrd, sizeof(out->initrd), true);
    char *comma = strchr(out->initrd, ',');
    if (comma)
        *comma = 0;
    /* the installer's answer file: anaconda's inst.ks=/ks=, Debian's preseed/url= and url= */
    if (!arg_value(e->append, "inst.ks=", out->ks, sizeof(out->ks), false) &&
        !arg_value(e->append, "ks=", out->ks, sizeof(out->ks), false) &&
        !arg_value(e->append, "preseed/url=", out->ks, sizeof(out->ks), false))
        arg_value(e->append, "url=", out->ks, sizeof(out->ks), false);
    if (out->kernel[0] && strncmp(out->kernel, "http://", 7))
        clean_path(out->kernel);
    if (out->initrd[0] && strncmp(out->initrd, "http://", 7))
        clean_path(out->initrd);
}

int bootcfg_parse_pxelinux(const char *text, size_t len, struct bootcfg *out)
{
    static struct entry ents[ENTRIES_MAX]; /* one thread; too big for the stack */
    unsigned ne = 0;
    char deflt[APPEND_MAX] = "";
    memset(out, 0, sizeof(*out));
    if (memchr(text, 0, len))
        return BOOTCFG_BINARY;
    struct entry *cur = NULL;
    for (size_t i = 0; i < len;) {
        const char *ln = text + i;
        const char *nl = memchr(ln, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - ln) : len - i;
        i += ll + 1;
        while (ll && isspace((unsigned char)*ln)) {
            ln++;
            ll--;
        }
        if (!ll || *ln == '#')
            continue;
        size_t kw = 0;
        while (kw < ll && !isspace((unsigned char)ln[kw]))
            kw++;
        const char *rest = ln + kw;
        size_t rl = ll - kw;
#define KW(s) (kw == strlen(s) && !strncasecmp(ln, s, kw))
        if (KW("default")) {
            copy_trim(rest, rl, deflt, sizeof(deflt));
        } else if (KW("label")) {
            cur = ne < ENTRIES_MAX ? &ents[ne++] : NULL;
            if (cur) {
                memset(cur, 0, sizeof(*cur));
                copy_trim(rest, rl, cur->label, sizeof(cur->label));
            }
        } else if (!cur) {
            continue; /* global directives other than DEFAULT do not choose what boots */
        } else if (KW("kernel") || KW("linux")) {
            first_token(rest, rl, cur->kernel, sizeof(cur->kernel));
        } else if (KW("initrd")) {
            first_token(rest, rl, cur->initrd, sizeof(cur->initrd));
        } else if (KW("append")) {
            copy_trim(rest, rl, cur->append, sizeof(cur->append));
        } else if (KW("localboot")) {
            cur->localboot = true;
        } else if (KW("menu")) {
            char sub[16];
            first_token(rest, rl, sub, sizeof(sub));
            if (!strcasecmp(sub, "default"))
                cur->menu_default = true;
        }
#undef KW
    }
    out->entries = ne;
    const struct entry *pick = NULL;
    char dl[64];
    first_token(deflt, strlen(deflt), dl, sizeof(dl));
    for (unsigned k = 0; k < ne && !pick && dl[0]; k++)
        if (!strcmp(ents[k].label, dl))
            pick = &ents[k];
    for (unsigned k = 0; k < ne && !pick && dl[0]; k++)
        if (!strcasecmp(ents[k].label, dl))
            pick = &ents[k];
    if (!pick && !ne && deflt[0]) { /* "DEFAULT vmlinuz initrd=... ks=..." */
        static struct entry e;
        memset(&e, 0, sizeof(e));
        snprintf(e.label, sizeof(e.label), "default");
        first_token(deflt, strlen(deflt), e.kernel, sizeof(e.kernel));
        const char *sp = deflt + strlen(e.kernel);
        copy_trim(sp, strlen(sp), e.append, sizeof(e.append));
        pick = &e;
    }
    for (unsigned k = 0; k < ne && !pick; k++)
        if (ents[k].menu_default)
            pick = &ents[k];
    if (!pick && ne)
        pick = &ents[0];
    if (!pick)
        return BOOTCFG_EMPTY;
    fill_from_entry(pick, out);
    return BOOTCFG_OK;
}

int bootcfg_parse_grub(const char *text, size_t len, struct bootcfg *out)
{
    static struct entry ents[ENTRIES_MAX];
    unsigned ne = 0;
    char deflt[160] = "";
    memset(out, 0, sizeof(*out));
    if (memchr(text, 0, len))
        return BOOTCFG_BINARY;
    struct entry *cur = NULL;
    int depth = 0;
    for (size_t i = 0; i < len;) {
        const char *ln = text + i;
        const char *nl = memchr(ln, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - ln) : len - i;
        i += ll + 1;
        while (ll && isspace((unsigned char)*ln)) {
            ln++;
            ll--;
        }
        while (ll && isspace((unsigned char)ln[ll - 1]))
            ll--;
        if (!ll || *ln == '#')
            continue;
        size_t kw = 0;
        while (kw < ll && !isspace((unsigned char)ln[kw]) && ln[kw] != '=')
            kw++;
        const char *rest = ln + kw;
        size_t rl = ll - kw;
#define KW(s) (kw == strlen(s) && !strncmp(ln, s, kw))
        if (KW("set") && depth == 0) {
            char a[160];
            copy_trim(rest, rl, a, sizeof(a));
            if (!strncmp(a, "default=", 8)) {
                char *v = a + 8;
                size_t vl = strlen(v);
                if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
                    v[vl - 1] = 0;
                    v++;
                }
                snprintf(deflt, sizeof(deflt), "%s", v);
            }
        } else if (KW("menuentry")) {
            cur = ne < ENTRIES_MAX ? &ents[ne++] : NULL;
            if (cur) {
                memset(cur, 0, sizeof(*cur));
                /* the title: the first quoted string */
                const char *q = rest;
                while (q < rest + rl && *q != '\'' && *q != '"')
                    q++;
                if (q < rest + rl) {
                    const char *qe = memchr(q + 1, *q, (size_t)(rest + rl - q - 1));
                    if (qe)
                        copy_trim(q + 1, (size_t)(qe - q - 1), cur->label, sizeof(cur->label));
                }
                /* "--id NAME" (or --id=NAME): what "set default=NAME" may refer to */
                char line[512];
                copy_trim(rest, rl, line, sizeof(line));
                const char *id = strstr(line, "--id");
                if (id) {
                    id += 4;
                    while (*id == ' ' || *id == '=' || *id == '\'' || *id == '"')
                        id++;
                    size_t k = 0;
                    while (id[k] && !strchr(" \t'\"{", id[k]) && k + 1 < sizeof(cur->id)) {
                        cur->id[k] = id[k];
                        k++;
                    }
                    cur->id[k] = 0;
                }
            }
            if (ll && ln[ll - 1] == '{')
                depth++;
        } else if (*ln == '}') {
            if (depth > 0)
                depth--;
            cur = depth ? cur : NULL;
        } else if (cur && (KW("linux") || KW("linuxefi") || KW("linux16"))) {
            first_token(rest, rl, cur->kernel, sizeof(cur->kernel));
            const char *a = rest;
            while (a < rest + rl && isspace((unsigned char)*a))
                a++;
            while (a < rest + rl && !isspace((unsigned char)*a))
                a++;
            copy_trim(a, (size_t)(rest + rl - a), cur->append, sizeof(cur->append));
        } else if (cur && (KW("initrd") || KW("initrdefi") || KW("initrd16"))) {
            first_token(rest, rl, cur->initrd, sizeof(cur->initrd));
        } else if (cur && (KW("chainloader") || KW("exit"))) {
            if (!cur->kernel[0])
                cur->localboot = true;
        }
#undef KW
    }
    out->entries = ne;
    const struct entry *pick = NULL;
    if (deflt[0]) {
        char *e;
        unsigned long k = strtoul(deflt, &e, 10);
        if (!*e && k < ne)
            pick = &ents[k];
        for (unsigned j = 0; j < ne && !pick; j++)
            if (!strcmp(ents[j].label, deflt) || (ents[j].id[0] && !strcmp(ents[j].id, deflt)))
                pick = &ents[j];
    }
    if (!pick && ne)
        pick = &ents[0];
    if (!pick)
        return BOOTCFG_EMPTY;
    fill_from_entry(pick, out);
    if (out->kernel[0])
        out->localboot = false;
    return BOOTCFG_OK;
}
