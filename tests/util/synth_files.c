/* synth_files.c — made-up responses and verdicts files (see synth_files.h). */
#include "synth_files.h"
#include "columns.h"
#include "err.h"
#include "h5io.h"
#include "responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows made and written per round. */
#define SYNTH_WINDOW 16384

/* A file of one column group written in rounds, with provenance. */
typedef struct {
    h5io_file f;
    cols_writer w;
} synth_out;

static int synth_begin(synth_out *o, const char *path, const cols_table *t)
{
    if (h5io_create(&o->f, path, MPI_COMM_SELF) != 0) return -1;
    int rc = cols_writer_begin(&o->f, t, H5IO_GROWING, NULL, &o->w);
    if (rc != 0) {
        cols_writer_end(&o->w);
        h5io_abandon(&o->f);
    }
    return rc;
}

static int synth_commit(synth_out *o, const char *schema, int version, int rc)
{
    char *argv[] = {"synth_files", NULL};
    h5io_provenance prov = {"synth_files", schema, version, 1, argv, NULL, 0,
                            NULL, NULL, -1, "5e1f5e1f5e1f5e1f"};
    int end = cols_writer_end(&o->w);
    if (rc == 0) rc = end;
    if (rc == 0) rc = h5io_write_provenance(&o->f, &prov);
    if (rc != 0) {
        h5io_abandon(&o->f);
        return rc;
    }
    return h5io_commit(&o->f);
}

static void push_response(resp_rows *r, int64_t p, int c)
{
    int32_t tok[32];
    float lp[32];
    int n = 6 + (int)((5 * p + 3 * c) % 23);
    for (int k = 0; k < n; k++) {
        tok[k] = 3 + (int32_t)((p * 131 + c * 977 + k * 37) % 1997);
        lp[k] = -0.25f;
    }
    if ((p + c) % 3 != 0) tok[n - 1] = 2;
    char text[96];
    int len = snprintf(text, sizeof text, "answer %lld.%d %.*s", (long long)p, c,
                       (int)((p + c) % 40), "abcdefghijklmnopqrstuvwxyzabcdefghijklmn");
    resp_push(r, p, c, c == 0 ? RESP_GREEDY : RESP_SAMPLED, (uint64_t)(p * 16 + c), 1, tok, lp,
              n, text, len);
}

int synth_responses(const char *path, int64_t n_prompts, int candidates)
{
    synth_out o;
    if (synth_begin(&o, path, &resp_table) != 0) return -1;
    int rc = 0;
    for (int64_t p0 = 0; rc == 0 && p0 < n_prompts; p0 += SYNTH_WINDOW) {
        resp_rows r = {0};
        for (int64_t p = p0; p < n_prompts && p < p0 + SYNTH_WINDOW; p++)
            for (int c = 0; c < candidates; c++) push_response(&r, p, c);
        rc = cols_writer_put(&o.w, &r);
        resp_free(&r);
    }
    return synth_commit(&o, RESP_SCHEMA, RESP_SCHEMA_VERSION, rc);
}

void synth_push_verdict(verd_rows *v, int64_t prompt, int32_t first, int32_t second, int order,
                        int verdict, int consistent)
{
    int skipped = verdict < 0;
    verd_row row = {prompt, first, second,
                    verdict == 1 ? first : verdict == 2 ? second : -1,
                    (int8_t)order, (int8_t)verdict, (int8_t)consistent, (int8_t)skipped, 0, 10};
    const char *text = verdict == 1 ? "... [[1]]" : verdict == 2 ? "... [[2]]" : "";
    verd_push(v, &row, text, (int64_t)strlen(text));
}

/* The judgements of prompt p (pattern p % 6), in file order. */
static void push_pattern(verd_rows *v, int64_t p)
{
    switch (p % 6) {
    case 0: synth_push_verdict(v, p, 1, 0, 0, 1, -1); break;
    case 1: synth_push_verdict(v, p, 1, 0, 0, 2, -1); break;
    case 2: synth_push_verdict(v, p, 1, 0, 0, 0, -1); break;
    case 3:
        synth_push_verdict(v, p, 1, 0, 0, 2, 1);
        synth_push_verdict(v, p, 0, 1, 1, 1, 1);
        break;
    case 4:
        synth_push_verdict(v, p, 1, 0, 0, 1, 0);
        synth_push_verdict(v, p, 0, 1, 1, 1, 0);
        break;
    default:
        synth_push_verdict(v, p, 1, 0, 0, 1, 1);
        synth_push_verdict(v, p, 0, 1, 1, 2, 1);
        break;
    }
}

/* The prompts with a candidate 1 (and so a 0) among responses rows
 * [r0, r0 + n), in file order. */
static int64_t judged_prompts(h5io_file *f, int64_t r0, int64_t n, int64_t *out)
{
    int64_t *prompt = xmalloc(sizeof(int64_t) * (size_t)n), k = 0;
    int32_t *cand = xmalloc(sizeof(int32_t) * (size_t)n);
    if (h5io_read_column(f, "/responses/prompt", H5IO_I64, r0, n, prompt) != 0 ||
        h5io_read_column(f, "/responses/candidate", H5IO_I32, r0, n, cand) != 0)
        k = -1;
    for (int64_t i = 0; k >= 0 && i < n; i++)
        if (cand[i] == 1) out[k++] = prompt[i];
    free(prompt);
    free(cand);
    return k;
}

int synth_verdicts(const char *responses, const char *out, bool reversed)
{
    h5io_file in;
    int64_t rows;
    if (resp_open(&in, responses, &rows) != 0) return -1;
    synth_out o;
    if (synth_begin(&o, out, &verd_table) != 0) {
        h5io_close(&in);
        return -1;
    }
    int64_t *prompts = xmalloc(sizeof(int64_t) * SYNTH_WINDOW);
    int rc = 0;
    for (int64_t w = 0; rc == 0 && w < rows; w += SYNTH_WINDOW) {
        int64_t n = rows - w < SYNTH_WINDOW ? rows - w : SYNTH_WINDOW;
        int64_t r0 = reversed ? rows - w - n : w;
        int64_t k = judged_prompts(&in, r0, n, prompts);
        if (k < 0) rc = -1;
        verd_rows v = {0};
        for (int64_t i = 0; i < k; i++) push_pattern(&v, prompts[reversed ? k - 1 - i : i]);
        if (rc == 0) rc = cols_writer_put(&o.w, &v);
        verd_free(&v);
    }
    free(prompts);
    h5io_close(&in);
    return synth_commit(&o, VERD_SCHEMA, VERD_SCHEMA_VERSION, rc);
}
