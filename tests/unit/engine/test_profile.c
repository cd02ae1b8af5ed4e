/* Criterion suite for engine/profile: the NAME.conf format, defaults, the
 * kickstart template, and every problem of a broken directory reported at
 * once with its file and line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/profile.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/test_profile.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(profile, .init = setup, .fini = teardown);

static void put(const char *name, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char problems[16][512];
static int nproblems;

static void collect(void *ctx, const char *msg)
{
    (void)ctx;
    if (nproblems < 16)
        snprintf(problems[nproblems], sizeof problems[0], "%s", msg);
    nproblems++;
}

/* The problem text with the temporary directory replaced by "D". */
static const char *rel(int i)
{
    static char out[512];
    const char *p = problems[i];
    size_t n = strlen(dir);
    if (!strncmp(p, dir, n))
        snprintf(out, sizeof out, "D%s", p + n);
    else
        snprintf(out, sizeof out, "%s", p);
    return out;
}

static const char *vars(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    if (len == 6 && !memcmp(name, "server", 6))
        return "10.0.0.1";
    if (len == 3 && !memcmp(name, "mac", 3))
        return "52:54:00:00:00:01";
    if (len == 8 && !memcmp(name, "hostname", 8))
        return "node1";
    return NULL;
}

Test(profile, full_profile)
{
    put("debian.conf", "# Debian 12 netboot\n"
                       "label = Debian 12 (preseed)\n"
                       "kernel = debian-installer/amd64/linux\n"
                       "initrd = debian-installer/amd64/initrd.gz\n"
                       "append = auto=true priority=critical url=http://{{server}}/preseed/{{mac}}.cfg --- quiet\n"
                       "kickstart = debian.ks\n"
                       "loader_bios = pxelinux.0\n"
                       "loader_efi64 = \"bootnetx64.efi\"\n"
                       "local_after_install = no\n");
    put("debian.ks", "d-i netcfg/get_hostname string {{hostname}}\n");
    put("README", "not a profile\n");
    struct profile_set *s;
    nproblems = 0;
    cr_assert_eq(profile_set_load(dir, &s, collect, NULL), 0, "%s", problems[0]);
    cr_assert_eq(profile_set_count(s), 1);
    const struct profile *p = profile_find(s, "debian");
    cr_assert_not_null(p);
    cr_expect_eq(profile_set_at(s, 0), p);
    cr_expect_str_eq(p->label, "Debian 12 (preseed)");
    cr_expect_str_eq(p->kernel, "debian-installer/amd64/linux");
    cr_expect_str_eq(p->initrd, "debian-installer/amd64/initrd.gz");
    cr_expect_str_eq(p->kickstart, "debian.ks");
    cr_expect_str_eq(p->loader_bios, "pxelinux.0");
    cr_expect_str_eq(p->loader_efi64, "bootnetx64.efi");
    cr_expect_not(p->local_after_install);
    char err[256];
    struct template_buf b = { 0 };
    cr_assert_eq(template_render(p->append, vars, NULL, &b, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(b.data, "auto=true priority=critical url=http://10.0.0.1/preseed/52:54:00:00:00:01.cfg --- quiet");
    template_buf_free(&b);
    cr_assert_not_null(p->ks);
    cr_assert_eq(template_render(p->ks, vars, NULL, &b, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(b.data, "d-i netcfg/get_hostname string node1\n");
    template_buf_free(&b);
    cr_expect_null(profile_find(s, "centos"));
    profile_set_free(s);
}

Test(profile, defaults_and_sorting)
{
    put("zeta.conf", "kernel = z/vmlinuz\n");
    put("alpha.conf", "kernel=a/vmlinuz\ninitrd=a/initrd.img\n");
    put("mid-1.conf", "  kernel   =   m/vmlinuz   \r\n");
    struct profile_set *s;
    nproblems = 0;
    cr_assert_eq(profile_set_load(dir, &s, collect, NULL), 0, "%s", problems[0]);
    cr_assert_eq(profile_set_count(s), 3);
    cr_expect_str_eq(profile_set_at(s, 0)->name, "alpha");
    cr_expect_str_eq(profile_set_at(s, 1)->name, "mid-1");
    cr_expect_str_eq(profile_set_at(s, 2)->name, "zeta");
    const struct profile *z = profile_find(s, "zeta");
    cr_expect_str_eq(z->label, "zeta", "label defaults to the name");
    cr_expect_null(z->initrd);
    cr_expect_null(z->append);
    cr_expect_null(z->ks);
    cr_expect_null(z->loader_bios);
    cr_expect(z->local_after_install, "default yes");
    cr_expect_str_eq(profile_find(s, "mid-1")->kernel, "m/vmlinuz");
    cr_expect_null(profile_set_at(s, 3));
    profile_set_free(s);
}

Test(profile, every_problem_at_once)
{
    put("good.conf", "kernel = images/vmlinuz\n");
    put("bad.conf", "kernel = ../etc/passwd\n"
                    "initrd = images/initrd.img\n"
                    "initrd = images/other.img\n"
                    "colour = blue\n"
                    "no equals sign here\n"
                    "local_after_install = perhaps\n"
                    "append = url={{server}/ks\n"
                    "kickstart = missing.ks\n");
    put("nokernel.conf", "label = nothing to boot\n");
    put("tmpl.conf", "kernel = k\nkickstart = broken.ks\n");
    put("broken.ks", "line 1\n{{#if ip}}\nno end\n");
    put("bad name!.conf", "kernel = k\n");
    struct profile_set *s;
    nproblems = 0;
    cr_assert_eq(profile_set_load(dir, &s, collect, NULL), -EINVAL);
    cr_assert_not_null(s, "the good profiles still load");
    cr_expect_eq(profile_set_count(s), 1);
    cr_expect_not_null(profile_find(s, "good"));
    cr_assert_eq(nproblems, 10, "got %d", nproblems);
    /* readdir order is arbitrary: look for each message */
    const char *want[] = {
        "D/bad.conf:1: kernel \"../etc/passwd\": not a relative path inside the served root (no '..', blanks, quotes)",
        "D/bad.conf:3: initrd set twice (first on line 2)",
        "D/bad.conf:4: unknown key \"colour\" (label, kernel, initrd, append, kickstart, loader_bios, loader_efi64, local_after_install)",
        "D/bad.conf:5: not key = value: \"no equals sign here\"",
        "D/bad.conf:6: local_after_install \"perhaps\": want yes or no",
        "D/bad.conf:7: unclosed tag: \"{{\" without \"}}\"",
        "D/bad.conf:8: kickstart D/missing.ks: no such file",
        "D/nokernel.conf: no kernel = ... line",
        "D/broken.ks:2: {{#if ip}} never closed with {{/if}}",
        "D/bad name!.conf: profile name \"bad name!\": letters, digits, '-', '_', '.' only",
    };
    bool found[10] = { false };
    for (int i = 0; i < nproblems; i++) {
        const char *got = rel(i);
        /* "D/bad.conf:8" names the missing file with the full directory */
        char fixed[512];
        const char *m = strstr(got, dir);
        if (m)
            snprintf(fixed, sizeof fixed, "%.*sD%s", (int)(m - got), got, m + strlen(dir));
        else
            snprintf(fixed, sizeof fixed, "%s", got);
        bool ok = false;
        for (int j = 0; j < 10; j++)
            if (!strcmp(fixed, want[j]))
                ok = found[j] = true;
        cr_expect(ok, "unexpected problem: %s", fixed);
    }
    for (int j = 0; j < 10; j++)
        cr_expect(found[j], "missing problem: %s", want[j]);
    profile_set_free(s);
}

Test(profile, empty_or_missing_dir)
{
    struct profile_set *s;
    nproblems = 0;
    cr_expect_eq(profile_set_load(dir, &s, collect, NULL), -EINVAL);
    cr_expect_null(s);
    cr_assert_eq(nproblems, 1);
    cr_expect_str_eq(rel(0), "D: no profiles (NAME.conf files)");
    nproblems = 0;
    cr_expect_eq(profile_set_load("/nonexistent/profiles", &s, collect, NULL), -EINVAL);
    cr_assert_eq(nproblems, 1);
    cr_expect_str_eq(problems[0], "/nonexistent/profiles: No such file or directory");
}

Test(profile, valid_path)
{
    cr_expect(profile_valid_path("images/vmlinuz"));
    cr_expect(profile_valid_path("a.b/c-d_e"));
    cr_expect_not(profile_valid_path(""));
    cr_expect_not(profile_valid_path("/abs"));
    cr_expect_not(profile_valid_path("a/../b"));
    cr_expect_not(profile_valid_path(".."));
    cr_expect_not(profile_valid_path("a//b"));
    cr_expect_not(profile_valid_path("a/./b"));
    cr_expect_not(profile_valid_path("a/"));
    cr_expect_not(profile_valid_path("with space"));
    cr_expect_not(profile_valid_path("quo\"te"));
}
