/* chat.c — engine layer: loading and filling prompt templates. */
#include "chat.h"
#include "err.h"
#include "fs.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SIMA_DATA_DIR_DEFAULT
#define SIMA_DATA_DIR_DEFAULT "data"
#endif

const char *chat_data_dir(void)
{
    const char *d = getenv("SIMA_DATA_DIR");
    return (d && d[0]) ? d : SIMA_DATA_DIR_DEFAULT;
}

int chat_template_load(const char *name_or_path, chat_template *out)
{
    memset(out, 0, sizeof *out);
    char *path;
    if (strchr(name_or_path, '/') || fs_is_file(name_or_path)) {
        path = xstrdup(name_or_path);
    } else {
        char *dir = fs_join(chat_data_dir(), "templates");
        size_t n = strlen(name_or_path) + 5;
        char *file = xmalloc(n);
        snprintf(file, n, "%s.txt", name_or_path);
        path = fs_join(dir, file);
        free(dir);
        free(file);
        if (!fs_is_file(path)) {
            ERR("template \"%s\": no file %s (give a template name from %s/templates or a path)",
                name_or_path, path, chat_data_dir());
            free(path);
            return -1;
        }
    }
    char *text;
    size_t len;
    int rc = fs_read_all(path, &text, &len);
    if (rc == 0) {
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = '\0';
        if (!strstr(text, "{question}")) {
            rc = ERR("%s: the template has no {question} placeholder", path);
            free(text);
        }
    }
    free(path);
    if (rc != 0) return -1;
    out->name = xstrdup(name_or_path);
    out->text = text;
    return 0;
}

void chat_template_free(chat_template *t)
{
    free(t->name);
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* Copy text with every "<image>" removed, along with one newline after it
 * (or before it, when it ends the text). */
static void put_without_image(strbuf *b, const char *text)
{
    static const char tag[] = "<image>";
    const size_t tl = sizeof tag - 1;
    for (const char *p = text; *p;) {
        const char *hit = strstr(p, tag);
        if (!hit) {
            strbuf_put(b, p, strlen(p));
            break;
        }
        strbuf_put(b, p, (size_t)(hit - p));
        p = hit + tl;
        if (*p == '\n') p++;
        else if (*p == '\0' && b->len > 0 && b->s[b->len - 1] == '\n') b->s[--b->len] = '\0';
    }
}

char *chat_format(const chat_template *t, const char *question, bool with_image)
{
    strbuf q = {0}, out = {0};
    strbuf_put(&q, "", 0);
    put_without_image(&q, question);
    strbuf_put(&out, "", 0);
    const char *tpl = t->text;
    const char *hole = strstr(tpl, "{question}");
    /* template before {question}, the question, template after it */
    char *head = xmalloc((size_t)(hole - tpl) + 1);
    memcpy(head, tpl, (size_t)(hole - tpl));
    head[hole - tpl] = '\0';
    const char *tail = hole + strlen("{question}");
    if (with_image) strbuf_put(&out, head, strlen(head));
    else put_without_image(&out, head);
    strbuf_put(&out, q.s, q.len);
    if (with_image) strbuf_put(&out, tail, strlen(tail));
    else put_without_image(&out, tail);
    free(head);
    free(q.s);
    return out.s;
}

int chat_prompt_ids(const chat_template *t, const tok_tokenizer *tok, const char *question,
                    bool with_image, int32_t image_token_id, int n_image_tokens, tok_ids *out)
{
    char *text = chat_format(t, question, with_image);
    int rc = tok_llava_prompt_ids(tok, text, strlen(text), image_token_id, n_image_tokens, out);
    free(text);
    return rc;
}

char *chat_fill(const char *text, const char *const *names, const char *const *values, int n,
                bool strip_newlines)
{
    strbuf out = {0};
    strbuf_put(&out, "", 0);
    for (const char *p = text; *p;) {
        int hit = -1;
        size_t hl = 0;
        if (*p == '{')
            for (int i = 0; i < n && hit < 0; i++) {
                size_t l = strlen(names[i]);
                if (!strncmp(p + 1, names[i], l) && p[1 + l] == '}') {
                    hit = i;
                    hl = l + 2;
                }
            }
        if (hit < 0) {
            strbuf_put(&out, p++, 1);
            continue;
        }
        for (const char *v = values[hit]; *v; v++) {
            char c = (strip_newlines && (*v == '\n' || *v == '\r')) ? ' ' : *v;
            strbuf_put(&out, &c, 1);
        }
        p += hl;
    }
    return out.s;
}
