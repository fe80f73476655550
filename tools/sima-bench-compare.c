/* sima-bench-compare.c — `sima-bench compare A/ B/ [--json FILE]`: every
 * benchmark's metrics of two runs side by side, with B − A.
 *
 * A benchmark's metrics are the numeric fields of its results.json entry,
 * nested ones named by their path ("all.f1", "splits.random.accuracy",
 * "subtasks.OCR.score"); an entry that is not "scored" also shows its
 * status. A benchmark or metric present in only one run shows a dash on the
 * other side and no delta. */
#define _GNU_SOURCE
#include "sima-bench.h"

#include "err.h"
#include "fs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: sima-bench compare A/ B/ [--json FILE|-]\n"
    "\n"
    "Print a Markdown table of every benchmark's metrics in A/results.json and\n"
    "B/results.json with the difference B - A; a dash where a run lacks one.\n"
    "  --json FILE   also write the comparison as JSON to FILE (- : stdout, instead\n"
    "                of the table)\n";

/* results.json of a run folder (or the file itself); its "benchmarks". */
static int load_run(const char *dir, json_t **benches, json_t **root)
{
    char *path = fs_is_dir(dir) ? fs_join(dir, "results.json") : xstrdup(dir);
    *root = NULL;
    int rc = 0;
    if (!fs_is_file(path)) rc = ERR("%s: no such file (is %s a sima-bench results folder?)", path, dir);
    if (rc == 0) {
        json_error_t je;
        *root = json_load_file(path, 0, &je);
        if (!*root) rc = ERR("%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    }
    if (rc == 0) {
        *benches = json_object_get(*root, "benchmarks");
        if (!json_is_object(*benches))
            rc = ERR("%s: no \"benchmarks\" object: not a sima-bench results.json", path);
    }
    free(path);
    return rc;
}

/* Adds the numeric leaves of v under the name prefix to out (name -> value). */
static void flatten(json_t *v, const char *prefix, json_t *out)
{
    if (json_is_number(v)) {
        json_object_set(out, prefix, v);
        return;
    }
    if (!json_is_object(v)) return;
    const char *k;
    json_t *c;
    json_object_foreach(v, k, c) {
        char *name = NULL;
        if (asprintf(&name, "%s%s%s", prefix, prefix[0] ? "." : "", k) < 0) DIE("out of memory");
        flatten(c, name, out);
        free(name);
    }
}

/* A benchmark entry's metrics: its numeric leaves and its status. */
static json_t *metrics_of(json_t *entry)
{
    json_t *m = json_object();
    if (!entry) return m;
    flatten(entry, "", m);
    json_t *st = json_object_get(entry, "status");
    if (json_is_string(st)) json_object_set(m, "status", st);
    return m;
}

static bool is_scored(json_t *status)
{
    return !status || (json_is_string(status) && !strcmp(json_string_value(status), "scored"));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Union of the keys of a and b, sorted: a NULL-terminated array whose
 * strings belong to a and b (free the array only). */
static const char **key_union(json_t *a, json_t *b)
{
    size_t n = 0;
    const char **keys = xmalloc(sizeof *keys * (json_object_size(a) + json_object_size(b) + 1));
    const char *k;
    json_t *v;
    json_object_foreach(a, k, v) keys[n++] = k;
    json_object_foreach(b, k, v) if (!json_object_get(a, k)) keys[n++] = k;
    qsort(keys, n, sizeof *keys, compare_strings);
    keys[n] = NULL;
    return keys;
}

static json_t *delta_of(json_t *a, json_t *b)
{
    if (!json_is_number(a) || !json_is_number(b)) return json_null();
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer(json_integer_value(b) - json_integer_value(a));
    return json_real(json_number_value(b) - json_number_value(a));
}

/* {"a": A, "b": B, "benchmarks": {bench: {metric: {"a", "b", "delta"}}}} */
static json_t *compare_runs(const char *pa, json_t *ba, const char *pb, json_t *bb)
{
    json_t *benches = json_object();
    const char **names = key_union(ba, bb);
    for (const char **name = names; *name; name++) {
        json_t *ma = metrics_of(json_object_get(ba, *name));
        json_t *mb = metrics_of(json_object_get(bb, *name));
        /* the status only when a run did not score the benchmark */
        if (is_scored(json_object_get(ma, "status")) && is_scored(json_object_get(mb, "status"))) {
            json_object_del(ma, "status");
            json_object_del(mb, "status");
        }
        const char **keys = key_union(ma, mb);
        json_t *rows = json_object();
        for (const char **metric = keys; *metric; metric++) {
            json_t *va = json_object_get(ma, *metric), *vb = json_object_get(mb, *metric);
            json_object_set_new(rows, *metric,
                                json_pack("{s:o, s:o, s:o}", "a", va ? json_incref(va) : json_null(),
                                          "b", vb ? json_incref(vb) : json_null(), "delta",
                                          delta_of(va, vb)));
        }
        json_object_set_new(benches, *name, rows);
        free(keys);
        json_decref(ma);
        json_decref(mb);
    }
    free(names);
    return json_pack("{s:s, s:s, s:o}", "a", pa, "b", pb, "benchmarks", benches);
}

/* A table cell: integers as they are, reals with 4 decimals (trailing
 * zeros dropped), strings as they are, absent as a dash. */
static void cell(FILE *o, json_t *v, bool sign)
{
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        fprintf(o, sign && x ? "%+lld" : "%lld", x);
        return;
    }
    if (json_is_real(v)) {
        char buf[64];
        snprintf(buf, sizeof buf, sign ? "%+.4f" : "%.4f", json_real_value(v));
        char *e = buf + strlen(buf);
        while (e[-1] == '0') *--e = '\0';
        if (e[-1] == '.') *--e = '\0';
        if (strcmp(buf, "-0") == 0 || strcmp(buf, "+0") == 0) snprintf(buf, sizeof buf, "0");
        fputs(buf, o);
        return;
    }
    fputs(json_is_string(v) ? json_string_value(v) : "—", o);
}

static void print_table(FILE *o, json_t *cmp)
{
    fprintf(o, "A: %s\nB: %s\n\n", json_string_value(json_object_get(cmp, "a")),
            json_string_value(json_object_get(cmp, "b")));
    fputs("| benchmark | metric | A | B | B − A |\n| --- | --- | ---: | ---: | ---: |\n", o);
    const char *name, *metric;
    json_t *rows, *r;
    json_object_foreach(json_object_get(cmp, "benchmarks"), name, rows) {
        json_object_foreach(rows, metric, r) {
            fprintf(o, "| %s | %s | ", name, metric);
            cell(o, json_object_get(r, "a"), false);
            fputs(" | ", o);
            cell(o, json_object_get(r, "b"), false);
            fputs(" | ", o);
            cell(o, json_object_get(r, "delta"), true);
            fputs(" |\n", o);
        }
    }
}

static int write_json(const char *path, json_t *cmp)
{
    char *text = json_dumps(cmp, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
    if (!text) DIE("out of memory");
    int rc = 0;
    if (strcmp(path, "-") == 0) {
        if (puts(text) == EOF || fflush(stdout) != 0) rc = ERR("stdout: write failed");
    } else {
        size_t n = strlen(text);
        text = realloc(text, n + 2);
        if (!text) DIE("out of memory");
        memcpy(text + n, "\n", 2);
        rc = fs_write_atomic(path, text, n + 1);
    }
    free(text);
    return rc;
}

int bc_main(tool_ctx *t, int argc, char **argv)
{
    const char *dirs[2] = {NULL, NULL}, *json_path = NULL;
    int nd = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return TOOL_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            if (i + 1 == argc) tool_usage_error(t, "--json needs a FILE (or -)");
            json_path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            tool_usage_error(t, "compare: unknown option '%s'", argv[i]);
        } else if (nd < 2) {
            dirs[nd++] = argv[i];
        } else {
            tool_usage_error(t, "compare: unexpected argument '%s'", argv[i]);
        }
    }
    if (nd != 2) tool_usage_error(t, "compare needs two results folders: compare A/ B/");
    json_t *ra = NULL, *rb = NULL, *ba = NULL, *bb = NULL;
    int rc = load_run(dirs[0], &ba, &ra);
    if (rc == 0) rc = load_run(dirs[1], &bb, &rb);
    if (rc == 0) {
        json_t *cmp = compare_runs(dirs[0], ba, dirs[1], bb);
        if (!json_path || strcmp(json_path, "-") != 0) print_table(stdout, cmp);
        if (json_path) rc = write_json(json_path, cmp);
        json_decref(cmp);
    }
    json_decref(ra);
    json_decref(rb);
    if (rc != 0) {
        err_print();
        return TOOL_ERROR;
    }
    return TOOL_OK;
}
