/* test_pairs_ref_golden.c — sima-pairs' reference log-probs against
 * transformers. Every pair under golden.h5/dpo becomes a row of a sima.pairs
 * file (prompt ids; chosen and rejected response ids = the reference's
 * chosen_ids / rejected_ids after the prompt, EOS last, as sima-pairs stores
 * them); the file is written and read back, and pairscore_ref_logps — the
 * function sima-pairs --ref-logps calls — gives the summed reference
 * log-probs, which must equal the attributes ref_chosen_logp and
 * ref_rejected_logp within 1e-4 relative, scored all together and one pair
 * at a time. */
#include "check.h"
#include "test_backend.h"
#include "err.h"
#include "golden.h"
#include "h5io.h"
#include "h5util.h"
#include "llava.h"
#include "mpi_test.h"
#include "pairs.h"
#include "pairscore.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    double ref_chosen, ref_rejected;
    float *pixels;
    int n_images;
} golden_pair;

static int64_t numel(const int64_t *dims, int nd)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    return n;
}

static int32_t *to_i32(const int64_t *v, int64_t n)
{
    int32_t *o = xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) o[i] = (int32_t)v[i];
    return o;
}

/* Append golden pair `name` to rows; 0 on success. */
static int load_pair(hid_t f, const llava_model *m, golden_pair *gp, pairs_rows *rows)
{
    char path[256], obj[128];
    int64_t dims[8];
    int nd = 0;
    snprintf(obj, sizeof obj, "/dpo/%s", gp->name);
#define P(leaf) (snprintf(path, sizeof path, "%s/%s", obj, leaf), path)
    int64_t *p64 = gh5_read_i64(f, P("prompt_ids"), dims, &nd);
    int64_t np = numel(dims, nd);
    int64_t *c64 = gh5_read_i64(f, P("chosen_ids"), dims, &nd);
    int64_t nc = numel(dims, nd);
    int64_t *r64 = gh5_read_i64(f, P("rejected_ids"), dims, &nd);
    int64_t nr = numel(dims, nd);
    gp->pixels = gh5_read_pixels(f, P("pixel_values"), m->cfg.vision.image_size, &gp->n_images);
#undef P
    int ok = p64 && c64 && r64 && nc > np && nr > np &&
             gh5_attr_double(f, obj, "ref_chosen_logp", &gp->ref_chosen) == 0 &&
             gh5_attr_double(f, obj, "ref_rejected_logp", &gp->ref_rejected) == 0;
    CHECK_MSG(ok, "%s: incomplete reference pair", gp->name);
    if (ok) {
        /* the reference's sequences are prompt ++ response ++ EOS */
        CHECK_MSG(!memcmp(c64, p64, sizeof(int64_t) * (size_t)np) &&
                      !memcmp(r64, p64, sizeof(int64_t) * (size_t)np),
                  "%s: chosen/rejected do not start with the prompt", gp->name);
        CHECK_EQ(c64[nc - 1], m->cfg.text.eos_token_id);
        CHECK_EQ(r64[nr - 1], m->cfg.text.eos_token_id);
        int32_t *p = to_i32(p64, np), *c = to_i32(c64 + np, nc - np), *r = to_i32(r64 + np, nr - np);
        pairs_row row = {rows->n, 0, 1, 1, gp->n_images ? 0 : -1, 1, 0, -1, rows->n, -1, NAN, NAN};
        pairs_ids_in ids[PAIRS_N_IDS] = {{p, np}, {c, nc - np}, {r, nr - np}};
        pairs_text_in text[PAIRS_N_TEXTS] = {{gp->name, (int64_t)strlen(gp->name)}, {"", 0},
                                             {"", 0}, {"", 0}, {"", 0}};
        pairs_push(rows, &row, ids, text);
        free(p);
        free(c);
        free(r);
    }
    free(p64);
    free(c64);
    free(r64);
    return ok ? 0 : -1;
}

/* Through a sima.pairs file and back. */
static int round_trip(const pairs_rows *in, pairs_rows *out)
{
    char *dir = test_tmpdir("pairs_golden");
    char path[1024];
    snprintf(path, sizeof path, "%s/pairs.h5", dir);
    h5io_file f;
    int rc = h5io_create(&f, path, MPI_COMM_SELF);
    if (rc == 0) {
        rc = pairs_write(&f, in);
        if (rc == 0) rc = h5io_commit(&f);
        else h5io_abandon(&f);
    }
    if (rc == 0) rc = h5io_open(&f, path, MPI_COMM_SELF);
    if (rc == 0) {
        rc = pairs_read(&f, out);
        h5io_close(&f);
    }
    remove(path);
    free(dir);
    return rc;
}

static pairscore_pair score_input(const pairs_rows *r, int64_t i, const golden_pair *gp)
{
    pairscore_pair q = {0};
    q.prompt = pairs_ids(r, PAIRS_PROMPT_IDS, i, &q.n_prompt);
    q.chosen = pairs_ids(r, PAIRS_CHOSEN_IDS, i, &q.n_chosen);
    q.rejected = pairs_ids(r, PAIRS_REJECTED_IDS, i, &q.n_rejected);
    q.pixels = gp->pixels;
    q.n_images = gp->n_images;
    return q;
}

static void check_sum(const char *pair, const char *side, double got, double want)
{
    CHECK_MSG(fabs(got - want) <= 1e-4 * fmax(1.0, fabs(want)),
              "%s: summed reference %s log-prob %.6f, transformers %.6f", pair, side, got, want);
}

int main(int argc, char **argv)
{
    test_mpi_init(&argc, &argv);
    h5u_init();
    be_backend *be = test_backend_new();
    llava_model *m = NULL;
    char *dir = golden_path("tiny-llava");
    if (llava_load(dir, be, &m) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", dir, err_msg());
        return 1;
    }
    hid_t f = gh5_open();
    size_t n_items = 0;
    char **items = gh5_exists(f, "/dpo") ? gh5_list(f, "/dpo", &n_items) : NULL;
    golden_pair *gp = xcalloc(n_items ? n_items : 1, sizeof *gp);
    pairs_rows rows = {0}, back = {0};
    int n = 0;
    for (size_t i = 0; i < n_items; i++) {
        if (strncmp(items[i], "pair", 4) != 0) continue;
        gp[n].name = items[i];
        if (load_pair(f, m, &gp[n], &rows) == 0) n++;
    }
    CHECK_MSG(n > 0, "no pairs under /dpo");
    CHECK_OK(round_trip(&rows, &back));
    if (back.n == n) {
        pairscore_pair *q = xcalloc((size_t)n, sizeof *q);
        double *c = xcalloc((size_t)n, sizeof *c), *r = xcalloc((size_t)n, sizeof *r);
        for (int i = 0; i < n; i++) q[i] = score_input(&back, i, &gp[i]);
        CHECK_OK(pairscore_ref_logps(m, q, n, c, r));       /* all pairs together */
        for (int i = 0; i < n; i++) {
            check_sum(gp[i].name, "chosen", c[i], gp[i].ref_chosen);
            check_sum(gp[i].name, "rejected", r[i], gp[i].ref_rejected);
            double c1, r1;
            CHECK_OK(pairscore_ref_logps(m, &q[i], 1, &c1, &r1));  /* alone */
            check_sum(gp[i].name, "chosen (alone)", c1, gp[i].ref_chosen);
            check_sum(gp[i].name, "rejected (alone)", r1, gp[i].ref_rejected);
        }
        printf("%d golden pairs scored\n", n);
        free(q);
        free(c);
        free(r);
    } else {
        CHECK_EQ(back.n, n);
    }
    for (int i = 0; i < n; i++) free(gp[i].pixels);
    free(gp);
    pairs_free(&rows);
    pairs_free(&back);
    gh5_free_list(items, n_items);
    H5Fclose(f);
    llava_free(m);
    be->destroy(be);
    free(dir);
    test_mpi_finalize();
    return check_finish();
}
