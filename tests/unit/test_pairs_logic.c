/* test_pairs_logic.c — choosing preference pairs from verdicts (pairs_select)
 * and the sima.pairs columns (pairs_write / pairs_read).
 *
 * Responses and hand-chosen verdicts cover every case: a verdict for either
 * candidate in one order, no verdict, a critic skip, both orders agreeing,
 * disagreeing, one order without verdict, identical token ids (one ending
 * with EOS, one cut by length), a pair too long for max_length, verdict rows
 * stored out of order; and malformed verdicts files. Selection over parts
 * of the file (as sima-pairs' ranks do it) gives the picks of the whole. They go through real
 * files (resp_write, verd_write with provenance, then h5io_require_schema
 * and the readers), as sima-pairs reads them.
 *
 * Helper modes for the command-line test (tests/cli/test_sima_pairs.sh):
 *   test_pairs_logic --make-verdicts responses.h5 verdicts.h5 [--reversed]
 * writes a verdicts file for candidates 0 and 1 of every prompt of a real
 * responses file, prompt p getting pattern p % 6 (synth_verdicts);
 *   test_pairs_logic --make-responses N responses.h5
 * writes made-up responses, 2 per prompt, for prompts 0 .. N-1
 * (synth_responses);
 *   test_pairs_logic --damage FILE DATASET ROW VALUE
 * overwrites element ROW of an int64 dataset (a corrupt input). */
#include "check.h"
#include "err.h"
#include "golden.h"
#include "h5io.h"
#include "h5util.h"
#include "mpi_test.h"
#include "pairs.h"
#include "responses.h"
#include "synth_files.h"
#include "verdicts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EOS = 2 };

static char *g_dir;

static char *tmp_path(const char *name)
{
    char *p = xmalloc(strlen(g_dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", g_dir, name);
    return p;
}

/* One response: n tokens 100 + seed + k, optionally EOS-terminated. */
static void push_response(resp_rows *r, int64_t prompt, int32_t cand, int n, int seed, int eos)
{
    int32_t tok[64];
    float lp[64];
    for (int k = 0; k < n; k++) {
        tok[k] = 100 + seed + k;
        lp[k] = -0.5f;
    }
    if (eos) tok[n - 1] = EOS;
    char text[32];
    int len = snprintf(text, sizeof text, "answer %lld.%d", (long long)prompt, cand);
    resp_push(r, prompt, cand, cand == 0 ? RESP_GREEDY : RESP_SAMPLED, 0, eos ? 1 : 2, tok, lp, n,
              text, len);
}


/* Eleven prompts, candidates 0 (greedy) and 1 (sampled). */
static void make_responses(resp_rows *r)
{
    memset(r, 0, sizeof *r);
    for (int p = 0; p < 11; p++) {
        if (p == 7) {   /* identical ids: one ends with EOS, the other was cut */
            push_response(r, p, 0, 5, 0, 1);
            push_response(r, p, 1, 4, 0, 0);
            continue;
        }
        if (p == 8) {   /* a long one */
            push_response(r, p, 0, 40, 0, 1);
            push_response(r, p, 1, 6, 3, 1);
            continue;
        }
        push_response(r, p, 0, 3 + p % 3, 0, 1);
        push_response(r, p, 1, 6, 7, p % 2);
    }
}

static void make_verdicts(verd_rows *v)
{
    memset(v, 0, sizeof *v);
    synth_push_verdict(v, 0, 1, 0, 0, 1, -1);     /* sampled wins */
    synth_push_verdict(v, 1, 1, 0, 0, 2, -1);     /* greedy wins */
    synth_push_verdict(v, 2, 1, 0, 0, 0, -1);     /* no verdict */
    synth_push_verdict(v, 3, 1, 0, 0, -1, -1);    /* skipped by the critic */
    synth_push_verdict(v, 4, 1, 0, 0, 2, 1);      /* both orders: greedy twice */
    synth_push_verdict(v, 4, 0, 1, 1, 1, 1);
    synth_push_verdict(v, 5, 1, 0, 0, 1, 0);      /* both orders: position bias */
    synth_push_verdict(v, 5, 0, 1, 1, 1, 0);
    synth_push_verdict(v, 6, 1, 0, 0, 1, 0);      /* both orders, one without verdict */
    synth_push_verdict(v, 6, 0, 1, 1, 0, 0);
    synth_push_verdict(v, 7, 1, 0, 0, 1, -1);     /* identical after EOS */
    synth_push_verdict(v, 8, 1, 0, 0, 2, -1);     /* too long */
    synth_push_verdict(v, 9, 1, 0, 0, 0, 0);      /* both orders, no verdict */
    synth_push_verdict(v, 9, 0, 1, 1, 0, 0);
    synth_push_verdict(v, 10, 0, 1, 1, 2, 1);     /* both orders, stored swapped first */
    synth_push_verdict(v, 10, 1, 0, 0, 1, 1);
}

static int write_file(const char *path, const char *schema, int version, const resp_rows *r,
                      const verd_rows *v)
{
    char *argv[] = {"test_pairs_logic", NULL};
    h5io_provenance prov = {"test_pairs_logic", schema, version, 1, argv, NULL, 0,
                            NULL, NULL, -1, "0123456789abcdef"};
    h5io_file f;
    if (h5io_create(&f, path, MPI_COMM_SELF) != 0) return -1;
    int rc = r ? resp_write(&f, r) : verd_write(&f, v);
    if (rc == 0) rc = h5io_write_provenance(&f, &prov);
    if (rc != 0) {
        h5io_abandon(&f);
        return rc;
    }
    return h5io_commit(&f);
}

static void read_back(const char *rpath, const char *vpath, resp_rows *r, verd_rows *v)
{
    h5io_file f;
    CHECK_OK(h5io_open(&f, rpath, MPI_COMM_SELF));
    CHECK_OK(h5io_require_schema(&f, RESP_SCHEMA, RESP_SCHEMA_VERSION));
    CHECK_OK(resp_read(&f, r));
    h5io_close(&f);
    CHECK_OK(h5io_open(&f, vpath, MPI_COMM_SELF));
    CHECK_OK(h5io_require_schema(&f, VERD_SCHEMA, VERD_SCHEMA_VERSION));
    CHECK_FAILS_WITH(h5io_require_schema(&f, RESP_SCHEMA, RESP_SCHEMA_VERSION),
                     "sima.verdicts file, expected sima.responses");
    CHECK_OK(verd_read(&f, v));
    h5io_close(&f);
}

/* The selection tests' options: max length 50, every prompt 20 tokens. */
static pairs_select_opts test_opts(int64_t prompt_len[11])
{
    for (int i = 0; i < 11; i++) prompt_len[i] = 20;
    return (pairs_select_opts){EOS, 50, prompt_len, 11, -1, 0, 0};
}

static void check_pick(const pairs_pick *p, int64_t prompt, int chosen, int consistent)
{
    CHECK_EQ(p->row.prompt, prompt);
    CHECK_EQ(p->row.chosen, chosen);
    CHECK_EQ(p->row.rejected, 1 - chosen);
    CHECK_EQ(p->row.chosen_kind, chosen == 0 ? RESP_GREEDY : RESP_SAMPLED);
    CHECK_EQ(p->row.consistent, consistent);
    CHECK_EQ(p->row.order, 0);
    CHECK(isnan(p->row.ref_chosen_logp) && isnan(p->row.ref_rejected_logp));
}

static void test_selection(void)
{
    resp_rows r0, r;
    verd_rows v0, v;
    make_responses(&r0);
    make_verdicts(&v0);
    char *rpath = tmp_path("responses.h5"), *vpath = tmp_path("verdicts.h5");
    CHECK_OK(write_file(rpath, RESP_SCHEMA, RESP_SCHEMA_VERSION, &r0, NULL));
    CHECK_OK(write_file(vpath, VERD_SCHEMA, VERD_SCHEMA_VERSION, NULL, &v0));
    read_back(rpath, vpath, &r, &v);
    CHECK_EQ(v.n, v0.n);

    pairs_resp_index x;
    pairs_resp_index_build(&x, &r);
    int64_t prompt_len[11];
    pairs_select_opts o = test_opts(prompt_len);
    pairs_pick *picks;
    int64_t n;
    pairs_stats st;
    CHECK_OK(pairs_select(&x, &v, &o, &picks, &n, &st));
    CHECK_EQ(st.judged, 11);
    CHECK_EQ(st.no_verdict, 3);     /* 2, 3, 9 */
    CHECK_EQ(st.inconsistent, 2);   /* 5, 6 */
    CHECK_EQ(st.identical, 1);      /* 7 */
    CHECK_EQ(st.too_long, 1);       /* 8: 20 + 40 > 50 */
    CHECK_EQ(st.kept, 4);
    CHECK_EQ(n, 4);
    if (n == 4) {
        check_pick(&picks[0], 0, 1, -1);
        check_pick(&picks[1], 1, 0, -1);
        check_pick(&picks[2], 4, 0, 1);
        check_pick(&picks[3], 10, 1, 1);
        CHECK_EQ(picks[3].row.verdict_row, 15);          /* the order-0 row */
        CHECK_EQ(picks[3].row.verdict_row_swapped, 14);
        CHECK_EQ(picks[0].row.verdict_row_swapped, -1);
    }
    CHECK_EQ(st.chosen_greedy, 2);
    CHECK_EQ(st.chosen_sampled, 2);
    /* chosen: p0 c1 (6 + EOS), p1 c0 (4), p4 c0 (4), p10 c1 (6 + EOS);
     * rejected: p0 c0 (3), p1 c1 (6, EOS-terminated), p4 c1 (6 + EOS), p10 c0 (4) */
    CHECK_NEAR(st.mean_chosen_len, (7 + 4 + 4 + 7) / 4.0, 1e-12);
    CHECK_NEAR(st.mean_rejected_len, (3 + 6 + 7 + 4) / 4.0, 1e-12);
    free(picks);

    /* without a length limit the long pair stays */
    o.max_length = 0;
    CHECK_OK(pairs_select(&x, &v, &o, &picks, &n, &st));
    CHECK_EQ(st.too_long, 0);
    CHECK_EQ(st.kept, 5);
    free(picks);

    /* a response holding the image token (106 is in both of p8's answers) */
    o.image_token_id = 106;
    CHECK_OK(pairs_select(&x, &v, &o, &picks, &n, &st));
    CHECK_EQ(st.image_token, 1);
    CHECK_EQ(st.kept, 4);
    CHECK(n == 4 && picks[3].row.prompt == 10);
    free(picks);
    o.image_token_id = -1;

    /* malformed verdicts: the same order twice; a candidate not generated */
    verd_rows bad = {0};
    synth_push_verdict(&bad, 0, 1, 0, 0, 1, -1);
    synth_push_verdict(&bad, 0, 0, 1, 0, 1, -1);
    CHECK_FAILS_WITH(pairs_select(&x, &bad, &o, &picks, &n, &st), "in the same order");
    verd_free(&bad);
    memset(&bad, 0, sizeof bad);
    synth_push_verdict(&bad, 3, 2, 0, 0, 1, -1);
    CHECK_FAILS_WITH(pairs_select(&x, &bad, &o, &picks, &n, &st), "not in the responses file");
    verd_free(&bad);

    pairs_resp_index_free(&x);
    resp_free(&r0);
    resp_free(&r);
    verd_free(&v0);
    verd_free(&v);
    free(rpath);
    free(vpath);
}

static bool same_pick(const pairs_pick *a, const pairs_pick *b, int64_t resp_row0)
{
    const pairs_row *x = &a->row, *y = &b->row;
    return x->prompt == y->prompt && x->chosen == y->chosen && x->rejected == y->rejected &&
           x->chosen_kind == y->chosen_kind && x->image == y->image && x->verdict == y->verdict &&
           x->order == y->order && x->consistent == y->consistent &&
           x->verdict_row == y->verdict_row && x->verdict_row_swapped == y->verdict_row_swapped &&
           a->chosen_resp == b->chosen_resp + resp_row0 &&
           a->rejected_resp == b->rejected_resp + resp_row0;
}

/* The rows of prompts [p_lo, p_hi] of r (sorted by prompt) into part;
 * returns the first row's index. */
static int64_t resp_part(const resp_rows *r, int64_t p_lo, int64_t p_hi, resp_rows *part)
{
    memset(part, 0, sizeof *part);
    int64_t first = -1, tok = 0, text = 0;
    for (int64_t i = 0; i < r->n; i++) {
        if (r->prompt[i] >= p_lo && r->prompt[i] <= p_hi) {
            if (first < 0) first = i;
            float lp[64];
            for (int k = 0; k < r->n_tokens[i]; k++) lp[k] = r->logprobs[tok + k];
            resp_push(part, r->prompt[i], r->candidate[i], r->kind[i], r->seed[i], r->finish[i],
                      r->tokens + tok, lp, r->n_tokens[i], r->text + text, r->text_len[i]);
        }
        tok += r->n_tokens[i];
        text += r->text_len[i];
    }
    return first;
}

/* Selection over parts of the verdicts (whole prompts, each with only its
 * own responses and prompt lengths) gives the picks and counts of the
 * whole file, for every way of cutting the eleven prompts into parts; and
 * every pick comes back from its two verdict rows. */
static void test_selection_in_parts(void)
{
    resp_rows r;
    verd_rows v;
    make_responses(&r);
    make_verdicts(&v);
    pairs_resp_index x;
    pairs_resp_index_build(&x, &r);
    int64_t prompt_len[11];
    pairs_select_opts o = test_opts(prompt_len);
    pairs_pick *whole;
    int64_t n_whole;
    pairs_stats st_whole;
    CHECK_OK(pairs_select(&x, &v, &o, &whole, &n_whole, &st_whole));
    int bad = 0;
    for (unsigned cuts = 0; cuts < 1u << 10; cuts++) { /* bit k: a part starts at prompt k + 1 */
        pairs_stats st;
        memset(&st, 0, sizeof st);
        int64_t n_all = 0, v0 = 0;
        bool same = true;
        for (int64_t p_lo = 0; p_lo < 11;) {
            int64_t p_hi = p_lo;
            while (p_hi < 10 && !(cuts >> p_hi & 1)) p_hi++;
            verd_rows vp = {0};
            int64_t v1 = v0;
            for (; v1 < v.n && v.prompt[v1] <= p_hi; v1++) {
                verd_row row;
                int64_t len;
                verd_get(&v, v1, &row);
                const char *text = verd_text(&v, v1, &len);
                verd_push(&vp, &row, text, len);
            }
            resp_rows rp;
            int64_t r0 = resp_part(&r, p_lo, p_hi, &rp);
            pairs_resp_index xp;
            pairs_resp_index_build(&xp, &rp);
            pairs_select_opts op = {EOS, 50, prompt_len + p_lo, p_hi - p_lo + 1, -1, p_lo, v0};
            pairs_pick *picks;
            int64_t n;
            same = same && pairs_select_part(&xp, &vp, &op, &picks, &n, &st) == 0;
            for (int64_t i = 0; same && i < n; i++)
                same = n_all + i < n_whole && same_pick(&whole[n_all + i], &picks[i], r0);
            n_all += n;
            free(picks);
            pairs_resp_index_free(&xp);
            resp_free(&rp);
            verd_free(&vp);
            v0 = v1;
            p_lo = p_hi + 1;
        }
        pairs_stats_finish(&st);
        same = same && n_all == n_whole && !memcmp(&st, &st_whole, sizeof st);
        bad += !same;
    }
    CHECK_MSG(bad == 0, "%d of 1024 ways of cutting the verdicts give other picks", bad);
    for (int64_t i = 0; i < n_whole; i++) {
        pairs_pick p;
        CHECK_OK(pairs_pick_rebuild(&x, &v, 0, whole[i].row.verdict_row,
                                    whole[i].row.verdict_row_swapped, &p));
        CHECK(same_pick(&whole[i], &p, 0));
    }
    CHECK_FAILS_WITH(pairs_pick_rebuild(&x, &v, 3, 1, -1, &(pairs_pick){0}),
                     "not among the rows read");
    free(whole);
    pairs_resp_index_free(&x);
    resp_free(&r);
    verd_free(&v);
}

static void test_round_trip(void)
{
    pairs_rows rows = {0};
    for (int i = 0; i < 70; i++) {
        int32_t p[5] = {1, 10, 2000, 2000, 11}, c[3] = {5 + i, 6, EOS}, rj[2] = {7, EOS};
        pairs_row row = {i, i % 2, 1 - i % 2, (int8_t)(i % 2), i % 3 ? i / 3 : -1, 1, 0, -1, 2 * i,
                         -1, -1.5 * i, i % 4 ? -2.5 : NAN};
        pairs_ids_in ids[PAIRS_N_IDS] = {{p, 5}, {c, 3}, {rj, i % 5 ? 2 : 0}};
        pairs_text_in text[PAIRS_N_TEXTS] = {{"id", 2}, {"Qué?", 5}, {"chosen", 6},
                                             {"", 0}, {"img.jpg", i % 3 ? 7 : 0}};
        pairs_push(&rows, &row, ids, text);
    }
    char *path = tmp_path("pairs.h5");
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(pairs_write(&f, &rows));
    CHECK_OK(h5io_commit(&f));
    pairs_rows back;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    CHECK_OK(pairs_read(&f, &back));
    h5io_close(&f);
    CHECK_EQ(back.n, 70);
    int same = back.n == rows.n;
    for (int64_t i = 0; same && i < rows.n; i++) {
        pairs_row a, b;
        pairs_get(&rows, i, &a);
        pairs_get(&back, i, &b);
        same = a.prompt == b.prompt && a.chosen == b.chosen && a.rejected == b.rejected &&
               a.image == b.image && a.verdict_row == b.verdict_row &&
               a.ref_chosen_logp == b.ref_chosen_logp &&
               (isnan(a.ref_rejected_logp) ? isnan(b.ref_rejected_logp)
                                           : a.ref_rejected_logp == b.ref_rejected_logp);
        for (int k = 0; same && k < PAIRS_N_IDS; k++) {
            int64_t na, nb;
            const int32_t *va = pairs_ids(&rows, k, i, &na), *vb = pairs_ids(&back, k, i, &nb);
            same = na == nb && !memcmp(va, vb, sizeof(int32_t) * (size_t)na);
        }
        for (int k = 0; same && k < PAIRS_N_TEXTS; k++) {
            int64_t na, nb;
            const char *ta = pairs_text(&rows, k, i, &na), *tb = pairs_text(&back, k, i, &nb);
            same = na == nb && !memcmp(ta, tb, (size_t)na);
        }
    }
    CHECK_MSG(same, "pairs rows differ after a write and read");
    /* rows read back can be appended to */
    pairs_append(&back, &rows);
    CHECK_EQ(back.n, 140);
    int64_t n;
    CHECK_EQ(pairs_ids(&back, PAIRS_CHOSEN_IDS, 139, &n)[0], 5 + 69);
    pairs_free(&rows);
    pairs_free(&back);
    free(path);
}

/* Helper mode: overwrite element `row` of an int64 dataset in place (a
 * corrupt file for the command-line tests), with plain HDF5. */
static int damage_int64(const char *path, const char *dataset, int64_t row, int64_t value)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = f < 0 ? -1 : H5Dopen2(f, dataset, H5P_DEFAULT);
    hid_t space = ds < 0 ? -1 : H5Dget_space(ds), mem = H5Screate(H5S_SCALAR);
    hsize_t at = (hsize_t)row;
    int rc = space < 0 || H5Sselect_elements(space, H5S_SELECT_SET, 1, &at) < 0 ||
             H5Dwrite(ds, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, &value) < 0;
    if (rc) fprintf(stderr, "test_pairs_logic: cannot change %s in %s\n", dataset, path);
    H5Sclose(mem);
    if (space >= 0) H5Sclose(space);
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    test_mpi_init(&argc, &argv);
    err_set_program("test_pairs_logic");
    h5u_init();
    if (argc >= 4 && !strcmp(argv[1], "--make-verdicts")) {
        int rc = synth_verdicts(argv[2], argv[3], argc == 5 && !strcmp(argv[4], "--reversed"));
        if (rc != 0) err_print();
        test_mpi_finalize();
        return rc != 0;
    }
    if (argc == 6 && !strcmp(argv[1], "--damage")) {
        int rc = damage_int64(argv[2], argv[3], strtoll(argv[4], NULL, 10),
                              strtoll(argv[5], NULL, 10));
        test_mpi_finalize();
        return rc != 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--make-responses")) {
        int rc = synth_responses(argv[3], strtoll(argv[2], NULL, 10), 2);
        if (rc != 0) err_print();
        test_mpi_finalize();
        return rc != 0;
    }
    g_dir = test_tmpdir("pairs");
    test_selection();
    test_selection_in_parts();
    test_round_trip();
    test_mpi_finalize();
    return check_finish();
}
