/* pairscore.c — engine layer: summed reference log-probs of preference pairs. */
#include "pairscore.h"
#include "err.h"
#include "generate.h"

#include <stdlib.h>
#include <string.h>

/* prompt ++ response as one scoring request (ids malloc'd into *buf). */
static gen_score_request concat_request(const pairscore_pair *p, const int32_t *resp,
                                        int64_t n_resp, int32_t **buf)
{
    int64_t n = p->n_prompt + n_resp;
    *buf = xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    memcpy(*buf, p->prompt, sizeof(int32_t) * (size_t)p->n_prompt);
    memcpy(*buf + p->n_prompt, resp, sizeof(int32_t) * (size_t)n_resp);
    return (gen_score_request){*buf, n, p->n_prompt, p->pixels, p->n_images};
}

static double sum_logp(const float *logp, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += logp[i];
    return s;
}

int pairscore_ref_logps(llava_model *m, const pairscore_pair *pairs, int n, double *chosen,
                        double *rejected)
{
    if (n <= 0) return 0;
    gen_score_request *req = xcalloc((size_t)(2 * n), sizeof *req);
    int32_t **bufs = xcalloc((size_t)(2 * n), sizeof *bufs);
    float **logp = xcalloc((size_t)(2 * n), sizeof *logp);
    for (int i = 0; i < n; i++) {
        const pairscore_pair *p = &pairs[i];
        req[2 * i] = concat_request(p, p->chosen, p->n_chosen, &bufs[2 * i]);
        req[2 * i + 1] = concat_request(p, p->rejected, p->n_rejected, &bufs[2 * i + 1]);
    }
    gen_options opt;
    gen_options_default(&opt);
    opt.max_batch = 2 * n;
    int rc = gen_score(m, req, 2 * n, &opt, logp);
    for (int i = 0; rc == 0 && i < n; i++) {
        chosen[i] = sum_logp(logp[2 * i], pairs[i].n_chosen);
        rejected[i] = sum_logp(logp[2 * i + 1], pairs[i].n_rejected);
    }
    for (int i = 0; i < 2 * n; i++) {
        free(bufs[i]);
        free(logp[i]);
    }
    free(req);
    free(bufs);
    free(logp);
    return rc;
}
