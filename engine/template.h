/* engine/template.h — the small template language of profiles and kickstarts.
 *
 * Text is copied as it is, except for tags between "{{" and "}}":
 *
 *   {{name}}               the variable's value; an undefined variable is an error
 *   {{name|default text}}  the value, or the default text (trimmed; may be empty)
 *                          when the variable is undefined
 *   {{#if name}} A {{else}} B {{/if}}
 *                          A when the variable is defined and not empty, else B;
 *                          {{else}} is optional; ifs nest
 *   {{#unless name}} A {{/unless}}  the opposite test
 *   {{! comment }}         nothing
 *   {{"text"}}             the text as it is (write {{"{{"}} for a literal "{{")
 *
 * Names: a letter or '_', then letters, digits, '_' and '-'; blanks around a
 * name are allowed ({{ hostname }}).  A block tag ({{#if}}, {{else}}, {{/if}},
 * {{! }}) alone on its line takes the whole line with it, so blocks do not
 * leave blank lines in a kickstart.
 *
 * Errors name the template and the line: "profiles/centos.ks:12: ...".  Syntax
 * errors (unclosed tag or block, stray {{else}} or {{/if}}, bad name) are found
 * at compile time, undefined variables at render time.
 *
 * The variables a kickstart sees are listed in engine/bootcfg.h. */
#ifndef BOOTSTORM_ENGINE_TEMPLATE_H
#define BOOTSTORM_ENGINE_TEMPLATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define TEMPLATE_FILE_MAX (1u << 20)  /* bytes of a template file */
#define TEMPLATE_DEPTH_MAX 32         /* nested blocks */

/* A growable output buffer.  Start from {0} (or template_buf_init); data is
 * NUL-terminated whenever len > 0; release with template_buf_free or take data
 * (then it is the taker's to free()). */
struct template_buf {
    char *data;
    size_t len, cap;
};
void template_buf_init(struct template_buf *b);
void template_buf_free(struct template_buf *b);
/* 0 or -ENOMEM (the buffer then keeps what it had). */
int template_buf_append(struct template_buf *b, const char *s, size_t n);
int template_buf_puts(struct template_buf *b, const char *s);
int template_buf_printf(struct template_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The variables: NULL when name (len bytes, not NUL-terminated) is undefined,
 * else its NUL-terminated value, valid until template_render returns. */
typedef const char *(*template_lookup_fn)(void *ctx, const char *name, size_t len);

struct template;

/* Compiles text (len bytes) named name (used in messages).  0, -EINVAL with
 * "NAME:LINE: problem" in err, or -ENOMEM. */
int template_compile(const char *name, const char *text, size_t len, struct template **out, char *err,
                     size_t errlen);
/* The same for text that starts on line first_line of its file (a value
 * inside a config file), so that messages point at the file's own line. */
int template_compile_at(const char *name, unsigned first_line, const char *text, size_t len, struct template **out,
                        char *err, size_t errlen);
/* Reads and compiles a file (at most TEMPLATE_FILE_MAX bytes): errors also as
 * "PATH: reason" for a file that cannot be read. */
int template_load(const char *path, struct template **out, char *err, size_t errlen);
void template_free(struct template *t);
const char *template_name(const struct template *t);

/* Appends the rendering to out.  0, -EINVAL ("NAME:LINE: undefined variable
 * ..." in err; out then holds a partial rendering), or -ENOMEM. */
int template_render(const struct template *t, template_lookup_fn lookup, void *ctx, struct template_buf *out,
                    char *err, size_t errlen);

/* Calls fn for every variable the template names (with repeats), e.g. to
 * check a template against the inventory's columns. */
void template_each_var(const struct template *t, void (*fn)(void *ctx, const char *name, size_t len, bool has_default,
                                                              unsigned line),
                       void *ctx);

#endif
