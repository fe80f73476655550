/* bench_judge_prompt.c — loading judge prompt files and filling their
 * placeholders. */
#include "bench_judge_prompt.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "fs.h"
#include "strbuf.h"

/* Where the line "marker" (alone on its line) starts in buf; NULL if absent. */
static const char *prompt_find_marker(const char *buf, const char *marker)
{
    size_t m = strlen(marker);
    for (const char *line = buf; *line;) {
        size_t n = strcspn(line, "\n");
        size_t k = n;
        if (k > 0 && line[k - 1] == '\r')
            k--;
        if (k == m && strncmp(line, marker, m) == 0)
            return line;
        line += n + (line[n] == '\n');
    }
    return NULL;
}

/* The section's text: from after the marker line to end (exclusive),
 * without surrounding newlines. */
static char *prompt_section(const char *marker_at, const char *end)
{
    const char *s = marker_at + strcspn(marker_at, "\n");
    if (*s == '\n')
        s++;
    while (end > s && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    if (end < s)
        end = s;
    char *out = xmalloc((size_t)(end - s) + 1);
    memcpy(out, s, (size_t)(end - s));
    out[end - s] = '\0';
    return out;
}

int bench_judge_prompt_load(const char *prompts_dir, const char *bench, bench_judge_prompt *p)
{
    memset(p, 0, sizeof *p);
    size_t n = strlen(bench) + 5;
    char *name = xmalloc(n);
    snprintf(name, n, "%s.txt", bench);
    p->path = fs_join(prompts_dir, name);
    free(name);
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_all(p->path, &buf, &len) != 0) {
        err_context("judge prompt");
        bench_judge_prompt_free(p);
        return -1;
    }
    snprintf(p->hash, sizeof p->hash, "%016" PRIx64, hash_fnv1a(buf, len, HASH_FNV_INIT));
    const char *sys = prompt_find_marker(buf, "[system]");
    const char *usr = prompt_find_marker(buf, "[user]");
    int rc = 0;
    if (!sys || !usr || usr < sys) {
        rc = ERR("%s: a judge prompt needs a line \"[system]\" and, after it, a line \"[user]\"",
                 p->path);
    } else {
        p->system = prompt_section(sys, usr);
        p->user = prompt_section(usr, buf + len);
        if (p->user[0] == '\0')
            rc = ERR("%s: the [user] message is empty", p->path);
    }
    free(buf);
    if (rc != 0)
        bench_judge_prompt_free(p);
    return rc;
}

void bench_judge_prompt_free(bench_judge_prompt *p)
{
    free(p->path);
    free(p->system);
    free(p->user);
    memset(p, 0, sizeof *p);
}

/* Appends a field value; false when it has no usable value. */
static bool prompt_put_value(strbuf *b, const json_t *v)
{
    if (json_is_string(v)) {
        strbuf_put(b, json_string_value(v), json_string_length(v));
        return true;
    }
    if (json_is_number(v)) {
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        if (!t)
            return false;
        strbuf_put(b, t, strlen(t));
        free(t);
        return true;
    }
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return false;
        if (i)
            strbuf_put(b, ", ", 2);
        strbuf_put(b, json_string_value(e), json_string_length(e));
    }
    return true;
}

/* The question field a placeholder names. {gt_answer} falls back to the
 * question's own "answer" (MM-Vet's ground truth), since {answer} is the
 * model's answer. */
static const json_t *prompt_field(const json_t *question, const char *name)
{
    const json_t *v = json_object_get(question, name);
    if (!v && strcmp(name, "gt_answer") == 0)
        v = json_object_get(question, "answer");
    return v;
}

/* Length of a placeholder name at s (letters, digits, '_') closed by '}'. */
static size_t prompt_name_len(const char *s)
{
    size_t n = 0;
    while (islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_')
        n++;
    return n > 0 && s[n] == '}' ? n : 0;
}

int bench_judge_prompt_render(const bench_judge_prompt *p, const char *tmpl,
                              const json_t *question, const char *answer, char **out)
{
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    for (const char *s = tmpl; *s;) {
        size_t n = *s == '{' ? prompt_name_len(s + 1) : 0;
        if (n == 0) {
            strbuf_put(&b, s, 1);
            s++;
            continue;
        }
        char name[64];
        bool ok = n < sizeof name;
        if (ok) {
            memcpy(name, s + 1, n);
            name[n] = '\0';
            if (strcmp(name, "answer") == 0)
                strbuf_put(&b, answer, strlen(answer));
            else
                ok = prompt_put_value(&b, prompt_field(question, name));
        }
        if (!ok) {
            const char *qid = json_string_value(json_object_get(question, "question_id"));
            free(b.s);
            return ERR("%s: placeholder {%.*s} has no value (a string, number or array of "
                       "strings) in question %s",
                       p->path, (int)n, s + 1, qid ? qid : "(no question_id)");
        }
        s += n + 2;
    }
    *out = b.s;
    return 0;
}
