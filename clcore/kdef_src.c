/* The source hash that dates a descriptor's tuning entries.
 *
 * An entry is stale when what was measured changed. Hashing the whole .cl
 * file made any edit of a file (a new kernel, another kernel's fix, a comment)
 * drop every tuned entry of every descriptor in it. The hash is now taken of
 * the part of the file the descriptor's kernels can depend on: the file
 * without comments, with whitespace runs as one space, and without the
 * __kernel functions of other descriptors. Helper functions and macros stay
 * in (a kernel may use any of them), so a change to shared code still dates
 * every descriptor of the file.
 *
 * Entries written under the former whole-file hash are still accepted while
 * the file is byte for byte the one they were tuned on (clsynth_kdef_src_legacy):
 * databases keep working across this change and are rewritten with the new
 * hash when next saved. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kdef.h"
#include "clcore/program.h"

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* src without comments, whitespace runs as one space (none at either end).
 * String and character literals are kept as written. NULL: out of memory. */
static char *strip_comments(const char *src)
{
    size_t n = strlen(src);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    bool space = false;
    for (size_t i = 0; i < n;) {
        if (src[i] == '/' && src[i + 1] == '*') {
            const char *e = strstr(src + i + 2, "*/");
            i = e ? (size_t)(e - src) + 2 : n;
            space = true;
        } else if (src[i] == '/' && src[i + 1] == '/') {
            while (i < n && src[i] != '\n')
                i++;
            space = true;
        } else if (isspace((unsigned char)src[i])) {
            i++;
            space = true;
        } else {
            if (space && j > 0)
                o[j++] = ' ';
            space = false;
            if (src[i] == '"' || src[i] == '\'') {
                const char q = src[i];
                o[j++] = src[i++];
                while (i < n && src[i] != q) {
                    if (src[i] == '\\' && i + 1 < n)
                        o[j++] = src[i++];
                    o[j++] = src[i++];
                }
                if (i < n)
                    o[j++] = src[i++];
            } else {
                o[j++] = src[i++];
            }
        }
    }
    o[j] = 0;
    return o;
}

/* Whether the token "__kernel" or "kernel" starts at s[i]; *end past it. */
static bool kernel_keyword(const char *s, size_t i, size_t *end)
{
    if (i > 0 && ident_char(s[i - 1]))
        return false;
    static const char *const words[] = { "__kernel", "kernel" };
    for (int w = 0; w < 2; w++) {
        size_t len = strlen(words[w]);
        if (strncmp(s + i, words[w], len) == 0 && !ident_char(s[i + len])) {
            *end = i + len;
            return true;
        }
    }
    return false;
}

/* From just after the keyword at s[i]: the function's name (into name) and
 * the index just past its body's closing brace. False when it does not parse
 * as a definition (then the text is kept as it is). */
static bool kernel_extent(const char *s, size_t i, char *name, size_t len, size_t *end)
{
    name[0] = 0;
    for (;;) {
        while (s[i] == ' ')
            i++;
        if (strncmp(s + i, "__attribute__", 13) == 0 && !ident_char(s[i + 13])) {
            i += 13;
            while (s[i] == ' ')
                i++;
            if (s[i] != '(')
                return false;
            for (int depth = 0;; i++) { /* the attribute's balanced parentheses */
                if (!s[i])
                    return false;
                depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
                if (depth == 0) {
                    i++;
                    break;
                }
            }
        } else if (ident_char(s[i])) {
            size_t b = i;
            while (ident_char(s[i]))
                i++;
            if (i - b >= len)
                return false;
            memcpy(name, s + b, i - b);
            name[i - b] = 0;
        } else if (s[i] == '(') {
            break;
        } else {
            return false; /* a declaration this parser does not know */
        }
    }
    if (!name[0])
        return false;
    for (int depth = 0;; i++) { /* the parameter list, then the body must follow */
        if (!s[i])
            return false;
        depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
        if (depth == 0) {
            i++;
            break;
        }
    }
    while (s[i] == ' ')
        i++;
    if (s[i] != '{')
        return false;
    for (int depth = 0;; i++) {
        if (!s[i])
            return false;
        if (s[i] == '"' || s[i] == '\'') { /* literals may hold braces */
            const char q = s[i++];
            while (s[i] && s[i] != q)
                i += s[i] == '\\' && s[i + 1] ? 2 : 1;
            if (!s[i])
                return false;
            continue;
        }
        depth += s[i] == '{' ? 1 : s[i] == '}' ? -1 : 0;
        if (depth == 0) {
            *end = i + 1;
            return true;
        }
    }
}

static bool own_kernel(const clsynth_kdef *d, const char *name)
{
    for (int k = 0; k < CLSYNTH_K_MAX_KERNELS && d->kernels[k]; k++)
        if (strcmp(d->kernels[k], name) == 0)
            return true;
    return false;
}

char *clsynth_kdef_own_source(const clsynth_kdef *d, const char *src)
{
    char *s = strip_comments(src);
    if (!s)
        return NULL;
    size_t j = 0;
    int depth = 0;
    for (size_t i = 0; s[i];) {
        size_t after, end;
        char name[128];
        if (depth == 0 && kernel_keyword(s, i, &after) && kernel_extent(s, after, name, sizeof name, &end) &&
            !own_kernel(d, name)) {
            i = end;
            while (s[i] == ' ')
                i++;
            continue;
        }
        if (s[i] == '"' || s[i] == '\'') { /* a literal, copied as it is */
            const char q = s[i];
            s[j++] = s[i++];
            while (s[i] && s[i] != q) {
                if (s[i] == '\\' && s[i + 1])
                    s[j++] = s[i++];
                s[j++] = s[i++];
            }
            if (s[i])
                s[j++] = s[i++];
            continue;
        }
        if (s[i] == '{')
            depth++;
        else if (s[i] == '}' && depth > 0)
            depth--;
        s[j++] = s[i++];
    }
    s[j] = 0;
    return s;
}

static unsigned fold(uint64_t h)
{
    unsigned x = (unsigned)(h ^ (h >> 32));
    return x ? x : 1;
}

unsigned clsynth_kdef_src_hash(const clsynth_kdef *d)
{
    if (!d->file)
        return d->revision ? fold(clsynth_fnv1a(CLSYNTH_FNV_SEED, d->revision, strlen(d->revision))) : 0;
    const char *src = clsynth_kernel_source(d->file);
    if (!src)
        return 0;
    char *own = clsynth_kdef_own_source(d, src);
    if (!own) /* out of memory: the whole file, which dates entries at least as often */
        return clsynth_kdef_src_legacy(d);
    unsigned h = fold(clsynth_fnv1a(CLSYNTH_FNV_SEED, own, strlen(own)));
    free(own);
    return h;
}

unsigned clsynth_kdef_src_legacy(const clsynth_kdef *d)
{
    const char *src = d->file ? clsynth_kernel_source(d->file) : NULL;
    return src ? fold(clsynth_fnv1a(CLSYNTH_FNV_SEED, src, strlen(src))) : 0;
}
