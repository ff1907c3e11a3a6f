/* Numbers from small text files (see tools/numfile.h). */
#include "tools/numfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int clsynth_read_number(const char *path, const char *key, double *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    size_t kl = strlen(key);
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '"')
            p++;
        if (strncmp(p, key, kl) != 0)
            continue;
        p += kl;
        if (*p == '"')
            p++;
        if (*p != ' ' && *p != '=' && *p != ':')
            continue;
        while (*p == ' ' || *p == '=' || *p == ':')
            p++;
        char *end;
        double v = strtod(p, &end);
        if (end != p) {
            *out = v;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

