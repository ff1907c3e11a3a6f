/* The ablation config file (see tools/cmd_ablate.c for its format). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clcore/fsutil.h"
#include "tools/ablate.h"

static int set_field(char *dst, size_t cap, const char *v, const char *path, int line, const char *key,
                     clsynth_err *err)
{
    if (strlen(v) >= cap)
        return clsynth_fail(err, "%s:%d: the value of '%s' is too long (at most %zu characters)", path, line, key,
                            cap - 1);
    snprintf(dst, cap, "%s", v);
    return 0;
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

int clsynth_ablate_parse_config(const char *path, abl_config *c, clsynth_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->out, sizeof c->out, "ablation");
    FILE *f = fopen(path, "r");
    if (!f)
        return clsynth_fail(err, "cannot read config %s: %s", path, strerror(errno));
    char buf[4096];
    int line = 0, rc = 0;
    while (!rc && fgets(buf, sizeof buf, f)) {
        line++;
        if (!strchr(buf, '\n') && !feof(f)) {
            rc = clsynth_fail(err, "%s:%d: line too long", path, line);
            break;
        }
        char *s = clsynth_trim(buf);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = clsynth_fail(err, "%s:%d: expected 'key = value', got '%s'", path, line, s);
            break;
        }
        *eq = 0;
        char *key = clsynth_trim(s), *val = clsynth_trim(eq + 1);
        if (strcmp(key, "out") == 0) {
            rc = set_field(c->out, sizeof c->out, val, path, line, key, err);
        } else if (strcmp(key, "dataroot") == 0) {
            rc = set_field(c->dataroot, sizeof c->dataroot, val, path, line, key, err);
        } else if (strcmp(key, "common") == 0) {
            rc = set_field(c->common, sizeof c->common, val, path, line, key, err);
        } else if (strcmp(key, "segmenter") == 0) {
            rc = set_field(c->segmenter, sizeof c->segmenter, val, path, line, key, err);
        } else if (strcmp(key, "eval") == 0) {
            rc = set_field(c->eval, sizeof c->eval, val, path, line, key, err);
        } else if (strcmp(key, "synth") == 0) {
            if (sscanf(val, "%d %d %dx%d %llu", &c->synth_train, &c->synth_val, &c->synth_h, &c->synth_w,
                       &c->synth_seed) != 5 ||
                c->synth_train < 1 || c->synth_val < 1 || c->synth_w < 16 || c->synth_h < 16)
                rc = clsynth_fail(err, "%s:%d: synth = TRAIN VAL HxW SEED (counts >= 1, sides >= 16), got '%s'",
                                  path, line, val);
            c->has_synth = 1;
        } else if (strncmp(key, "variant", 7) == 0 && (key[7] == ' ' || key[7] == '\t')) {
            char *name = clsynth_trim(key + 7);
            if (!valid_name(name) || strlen(name) >= sizeof c->v[0].name) {
                rc = clsynth_fail(err, "%s:%d: variant name '%s' (letters, digits, '_' and '-', at most 63)", path,
                                  line, name);
                break;
            }
            if (c->nv == ABL_MAX_VARIANTS) {
                rc = clsynth_fail(err, "%s:%d: more than %d variants", path, line, ABL_MAX_VARIANTS);
                break;
            }
            for (int k = 0; k < c->nv; k++)
                if (strcmp(c->v[k].name, name) == 0)
                    rc = clsynth_fail(err, "%s:%d: variant '%s' defined twice", path, line, name);
            if (rc)
                break;
            snprintf(c->v[c->nv].name, sizeof c->v[0].name, "%s", name);
            rc = set_field(c->v[c->nv].opts, sizeof c->v[0].opts, val, path, line, name, err);
            c->nv++;
        } else {
            rc = clsynth_fail(err, "%s:%d: unknown key '%s' (out, dataroot, synth, common, segmenter, eval, "
                              "variant NAME)", path, line, key);
        }
    }
    fclose(f);
    if (!rc && !c->dataroot[0])
        rc = clsynth_fail(err, "%s: 'dataroot' is required", path);
    if (!rc && c->nv == 0)
        rc = clsynth_fail(err, "%s: no 'variant NAME = OPTIONS' line", path);
    return rc;
}

int clsynth_ablate_tokenize(char *s, char **tok, int *n, clsynth_err *err)
{
    for (char *p = strtok(s, " \t"); p; p = strtok(NULL, " \t")) {
        if (*n >= ABL_MAX_TOKENS)
            return clsynth_fail(err, "more than %d option words", ABL_MAX_TOKENS);
        tok[(*n)++] = p;
    }
    return 0;
}

