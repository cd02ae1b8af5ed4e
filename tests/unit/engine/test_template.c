/* Criterion suite for engine/template: variables, defaults, blocks, comments,
 * literals, standalone block lines, and every compile and render error with
 * its NAME:LINE. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/template.h"

static const char *vars[][2] = {
    { "hostname", "node1" }, { "ip", "10.0.0.5" }, { "empty", "" }, { "disk", "nvme0n1" }, { "dns-2", "9.9.9.9" },
};

static const char *lookup(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (strlen(vars[i][0]) == len && !memcmp(vars[i][0], name, len))
            return vars[i][1];
    return NULL;
}

static char err[256];

static char *render(const char *src)
{
    struct template *t;
    int rc = template_compile("t.ks", src, strlen(src), &t, err, sizeof err);
    cr_assert_eq(rc, 0, "compile: %s", err);
    struct template_buf b = { 0 };
    rc = template_render(t, lookup, NULL, &b, err, sizeof err);
    cr_assert_eq(rc, 0, "render: %s", err);
    template_free(t);
    return b.data;
}

static void expect_render(const char *src, const char *want)
{
    char *got = render(src);
    cr_expect_str_eq(got, want, "for template: %s", src);
    free(got);
}

static void expect_compile_error(const char *src, const char *want)
{
    struct template *t = (struct template *)1;
    cr_expect_eq(template_compile("t.ks", src, strlen(src), &t, err, sizeof err), -EINVAL, "for %s", src);
    cr_expect_null(t);
    cr_expect_str_eq(err, want);
}

Test(template, plain_text_and_vars)
{
    expect_render("", "");
    expect_render("no tags at all\n", "no tags at all\n");
    expect_render("network --hostname={{hostname}} --ip={{ ip }}\n", "network --hostname=node1 --ip=10.0.0.5\n");
    expect_render("{{hostname}}{{ip}}", "node110.0.0.5");
    expect_render("{{dns-2}}", "9.9.9.9");
    expect_render("single { braces } and }} alone", "single { braces } and }} alone");
}

Test(template, defaults)
{
    expect_render("disk={{disk|sda}}", "disk=nvme0n1");
    expect_render("role={{role|compute}}", "role=compute");
    expect_render("role={{ role | a default with spaces  }}.", "role=a default with spaces.");
    expect_render("x{{role|}}y", "xy");
    expect_render("e={{empty|fallback}}", "e="); /* a defined empty value is used as it is */
}

Test(template, if_else_unless)
{
    expect_render("{{#if ip}}static {{ip}}{{else}}dhcp{{/if}}", "static 10.0.0.5");
    expect_render("{{#if role}}static{{else}}dhcp{{/if}}", "dhcp");
    expect_render("{{#if empty}}yes{{else}}no{{/if}}", "no"); /* empty is false */
    expect_render("{{#if empty}}yes{{/if}}", "");
    expect_render("{{#unless role}}no role{{/unless}}", "no role");
    expect_render("{{#unless ip}}x{{else}}y{{/unless}}", "y");
    expect_render("{{#if ip}}a{{#if role}}b{{else}}c{{#if disk}}d{{/if}}{{/if}}e{{else}}f{{/if}}", "acde");
    /* a branch not taken is not rendered, so its variables need not exist */
    expect_render("{{#if role}}{{undefined_inside_false_branch}}{{/if}}ok", "ok");
}

Test(template, comments_and_literals)
{
    expect_render("a{{! a comment with {braces} }}b", "ab");
    expect_render("{{\"{{\"}}hostname}}", "{{hostname}}");
    expect_render("{{\"\"}}x", "x");
}

Test(template, standalone_block_lines_vanish)
{
    const char *src = "line1\n"
                      "{{#if ip}}\n"
                      "network --bootproto=static --ip={{ip}}\n"
                      "  {{else}}  \r\n"
                      "network --bootproto=dhcp\n"
                      "{{/if}}\n"
                      "{{! comment line }}\n"
                      "%post\n"
                      "a {{#if ip}}inline{{/if}} b\n"
                      "{{! a last comment, no line break }}";
    expect_render(src, "line1\nnetwork --bootproto=static --ip=10.0.0.5\n%post\na inline b\n");
    /* two tags on one line: not standalone, the line break stays */
    expect_render("{{#if ip}}{{/if}}\nx", "\nx");
}

Test(template, compile_errors)
{
    expect_compile_error("a\nb {{hostname\n", "t.ks:2: unclosed tag: \"{{\" without \"}}\"");
    expect_compile_error("\n\n{{#if ip}}\nx\n", "t.ks:3: {{#if ip}} never closed with {{/if}}");
    expect_compile_error("{{/if}}", "t.ks:1: {{/if}} without {{#if}}");
    expect_compile_error("{{#if a}}\n{{/unless}}", "t.ks:2: {{/unless}} closes the {{#if}} of line 1");
    expect_compile_error("x\n{{else}}", "t.ks:2: {{else}} outside {{#if}}");
    expect_compile_error("{{#if a}}{{else}}\n{{else}}{{/if}}", "t.ks:2: a second {{else}} in the {{#if}} of line 1");
    expect_compile_error("{{#each hosts}}", "t.ks:1: unknown block {{#each hosts}}: there are {{#if NAME}} and {{#unless NAME}}");
    expect_compile_error("{{/each}}", "t.ks:1: unknown closing tag {{/each}}");
    expect_compile_error("{{#if 9lives}}{{/if}}", "t.ks:1: bad variable name \"9lives\"");
    expect_compile_error("{{host name}}", "t.ks:1: bad variable name \"host name\" (a letter or '_', then letters, digits, '_', '-')");
    expect_compile_error("{{}}", "t.ks:1: bad variable name \"\" (a letter or '_', then letters, digits, '_', '-')");
    expect_compile_error("{{\"a\"b\"}}", "t.ks:1: a literal is {{\"text\"}}, without '\"' inside");
    char deep[40 * 12 + 1] = "";
    for (int i = 0; i < 33; i++)
        strcat(deep, "{{#if a}}");
    expect_compile_error(deep, "t.ks:1: blocks nested deeper than 32");
    const char nul[] = "ok\nbad\0";
    struct template *t;
    cr_expect_eq(template_compile("t.ks", nul, sizeof nul - 1, &t, err, sizeof err), -EINVAL);
    cr_expect_str_eq(err, "t.ks:2: NUL byte: not a text file");
}

Test(template, render_error_names_line)
{
    const char *src = "# kickstart\nnetwork --hostname={{hostname}}\nrootpw {{password}}\n";
    struct template *t;
    cr_assert_eq(template_compile("profiles/c.ks", src, strlen(src), &t, err, sizeof err), 0);
    struct template_buf b = { 0 };
    cr_expect_eq(template_render(t, lookup, NULL, &b, err, sizeof err), -EINVAL);
    cr_expect_str_eq(err, "profiles/c.ks:3: undefined variable \"password\" (give it a default: {{password|...}})");
    template_buf_free(&b);
    template_free(t);
}

static int nvars;
static char seen[8][32];

static void each(void *ctx, const char *name, size_t len, bool has_default, unsigned line)
{
    (void)ctx;
    if (nvars < 8)
        snprintf(seen[nvars], sizeof seen[0], "%.*s/%d/%u", (int)len, name, has_default, line);
    nvars++;
}

Test(template, each_var)
{
    const char *src = "{{a}}\n{{#if b}}{{c|x}}{{/if}}";
    struct template *t;
    cr_assert_eq(template_compile("t", src, strlen(src), &t, err, sizeof err), 0);
    nvars = 0;
    template_each_var(t, each, NULL);
    cr_assert_eq(nvars, 3);
    cr_expect_str_eq(seen[0], "a/0/1");
    cr_expect_str_eq(seen[1], "b/1/2");
    cr_expect_str_eq(seen[2], "c/1/2");
    template_free(t);
}

Test(template, load_file)
{
    char path[] = "/tmp/test_template.XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *src = "host {{hostname}}\n";
    cr_assert_eq(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    struct template *t;
    cr_assert_eq(template_load(path, &t, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(template_name(t), path);
    struct template_buf b = { 0 };
    cr_assert_eq(template_render(t, lookup, NULL, &b, err, sizeof err), 0);
    cr_expect_str_eq(b.data, "host node1\n");
    template_buf_free(&b);
    template_free(t);
    unlink(path);
    cr_expect_eq(template_load(path, &t, err, sizeof err), -ENOENT);
    char want[128];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    cr_expect_str_eq(err, want);
    cr_expect_eq(template_load("/tmp", &t, err, sizeof err), -EISDIR);
}

Test(template, buffer)
{
    struct template_buf b;
    template_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(template_buf_printf(&b, "%04d,", i), 0);
    cr_expect_eq(b.len, 5000);
    cr_expect_eq(strncmp(b.data + 4995, "0999,", 5), 0);
    cr_expect_eq(b.data[b.len], '\0');
    cr_assert_eq(template_buf_puts(&b, "end"), 0);
    cr_expect_str_eq(b.data + 5000, "end");
    template_buf_free(&b);
    cr_expect_null(b.data);
}
