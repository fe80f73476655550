/* test_forward_dtypes.c — the model loaded from F16 and BF16 copies of the
 * golden weights (written here, rounded as PyTorch rounds) gives logits close
 * to the F32 model's, for every prompt under golden.h5/forward. On the CUDA
 * backend (SIMA_TEST_DEVICE=cuda) the copies run with weights stored in
 * their own type, products on its tensor cores, against the CPU's float32
 * model: the same bounds.
 *
 * Bounds (max |logit difference| / max |F32 logit| over all cases), measured
 * on the golden tiny model: F16 1.6e-3, BF16 9.9e-3 (max abs 0.0086 and 0.055
 * for logits up to 5.5); the test allows
 * 4e-3 and 4e-2. The greedy next token at the last prompt position must
 * agree wherever the F32 margin is above the bound. */
#include "check.h"
#include "err.h"
#include "test_backend.h"
#include "fs.h"
#include "golden.h"
#include "llava.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write DIR/model.safetensors with every tensor of `src` in dtype dt, and
 * copy config.json. */
static int write_copy(const char *src_dir, const char *dir, st_dtype dt)
{
    st_set *set = NULL;
    if (st_open_dir(src_dir, &set) != 0) return -1;
    size_t n = st_count(set);
    st_write_tensor *wt = xcalloc(n, sizeof *wt);
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_at(set, i);
        float *f = xmalloc(sizeof(float) * (size_t)t->numel);
        st_to_f32(t, f);
        uint16_t *h = xmalloc(sizeof(uint16_t) * (size_t)t->numel);
        for (int64_t j = 0; j < t->numel; j++)
            h[j] = dt == ST_F16 ? st_f32_to_f16(f[j]) : st_f32_to_bf16(f[j]);
        free(f);
        wt[i] = (st_write_tensor){t->name, dt, t->ndim, {0}, h};
        memcpy(wt[i].shape, t->shape, sizeof t->shape);
    }
    char *out = fs_join(dir, "model.safetensors");
    int rc = st_write_file(out, wt, n, NULL);
    for (size_t i = 0; i < n; i++) free((void *)wt[i].data);
    free(wt);
    free(out);
    st_close(set);
    char *cs = fs_join(src_dir, "config.json"), *cd = fs_join(dir, "config.json"), *buf = NULL;
    size_t len = 0;
    if (rc == 0) rc = fs_read_all(cs, &buf, &len);
    if (rc == 0) rc = fs_write_atomic(cd, buf, len);
    free(buf);
    free(cs);
    free(cd);
    return rc;
}

/* Logits [n, V] of a golden case's prompt; NULL after a failed check. */
static float *case_logits(llava_model *m, hid_t f, const char *cas, int64_t *n_out)
{
    be_backend *be = m->be;
    char path[256];
    int64_t dims[8];
    int nd, n_img = 0;
    snprintf(path, sizeof path, "/forward/%s/input_ids", cas);
    int64_t *ids64 = gh5_read_i64(f, path, dims, &nd);
    if (!CHECK_MSG(ids64 != NULL && nd == 1 && dims[0] > 0, "%s missing or empty", path)) {
        free(ids64);
        return NULL;
    }
    int64_t n = dims[0];
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)n);
    int64_t n_img_tok = 0;
    for (int64_t i = 0; i < n; i++) {
        ids[i] = (int32_t)ids64[i];
        n_img_tok += ids[i] == m->cfg.image_token_index;
    }
    snprintf(path, sizeof path, "/forward/%s/pixel_values", cas);
    float *px = gh5_read_pixels(f, path, m->cfg.vision.image_size, &n_img);
    be_mat feats = {0};
    if (n_img > 0 && n_img_tok == (int64_t)n_img * m->image_tokens) {
        feats = be->mat_new(be, (int64_t)n_img * m->image_tokens, m->cfg.text.hidden_size);
        CHECK_OK(llava_image_features(m, px, n_img, feats));
    }
    int64_t V = m->cfg.text.vocab_size;
    llama_seq seq = {0, n, NULL, feats.rows > 0};
    llama_batch b = {n, ids, 1, &seq, feats};
    be_mat hid = be->mat_new(be, n, m->cfg.text.hidden_size), lg = be->mat_new(be, n, V);
    CHECK_OK(llama_forward(m, &b, hid));
    llama_logits(m, hid, lg);
    float *out = xmalloc(sizeof(float) * (size_t)(n * V));
    be->download(be, lg, out);
    be->mat_free(be, &hid);
    be->mat_free(be, &lg);
    if (feats.data) be->mat_free(be, &feats);
    free(px);
    free(ids);
    free(ids64);
    *n_out = n;
    return out;
}

static int argmax_row(const float *x, int64_t n, float *margin)
{
    int64_t a = 0, b = -1;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[a]) a = i;
    for (int64_t i = 0; i < n; i++)
        if (i != a && (b < 0 || x[i] > x[b])) b = i;
    *margin = x[a] - x[b];
    return (int)a;
}

static void compare_dtype(llava_model *ref, be_dtype dt, const char *dir, const char *name,
                          double bound, hid_t f, char **cases, size_t n_cases)
{
    be_backend *be = test_backend_with(dt);
    llava_model *m = NULL;
    CHECK_OK(llava_load(dir, be, &m));
    if (!m) {
        be->destroy(be);
        return;
    }
    double worst = 0, scale = 0;
    int64_t V = m->cfg.text.vocab_size;
    for (size_t c = 0; c < n_cases; c++) {
        int64_t n, n2;
        float *a = case_logits(ref, f, cases[c], &n), *b = case_logits(m, f, cases[c], &n2);
        if (!a || !b || !CHECK_EQ(n, n2)) {
            free(a);
            free(b);
            continue;
        }
        for (int64_t i = 0; i < n * V; i++) {
            worst = fmax(worst, fabs((double)a[i] - b[i]));
            scale = fmax(scale, fabs(a[i]));
        }
        float ma, mb;
        int ta = argmax_row(a + (n - 1) * V, V, &ma), tb = argmax_row(b + (n - 1) * V, V, &mb);
        if (ma > bound * scale)
            CHECK_MSG(ta == tb, "%s %s: next token %d, F32 gives %d", name, cases[c], tb, ta);
        free(a);
        free(b);
    }
    double rel = worst / scale;
    printf("%s weights: max |logit - F32 logit| = %.3g (%.3g of max |logit| %.3g); bound %.3g\n",
           name, worst, rel, scale, bound);
    CHECK_MSG(rel <= bound, "%s logits differ from F32 by %.3g of their scale (bound %.3g)", name,
              rel, bound);
    CHECK_MSG(worst > 0, "%s logits equal F32 exactly: the weights were not rounded", name);
    llava_free(m);
    be->destroy(be);
}

static void remove_copy(const char *dir)
{
    char *a = fs_join(dir, "model.safetensors"), *b = fs_join(dir, "config.json");
    unlink(a);
    unlink(b);
    rmdir(dir);
    free(a);
    free(b);
}

int main(void)
{
    be_backend *be = be_cpu_new(0);
    char *src = golden_path("tiny-llava");
    llava_model *ref = NULL;
    if (llava_load(src, be, &ref) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", src, err_msg());
        return 1;
    }
    hid_t f = gh5_open();
    size_t n_cases;
    char **cases = gh5_list(f, "/forward", &n_cases);
    char *d16 = test_tmpdir("f16"), *dbf = test_tmpdir("bf16");
    CHECK_OK(write_copy(src, d16, ST_F16));
    CHECK_OK(write_copy(src, dbf, ST_BF16));
    compare_dtype(ref, BE_F16, d16, "F16", 4e-3, f, cases, n_cases);
    compare_dtype(ref, BE_BF16, dbf, "BF16", 4e-2, f, cases, n_cases);
    remove_copy(d16);
    remove_copy(dbf);
    gh5_free_list(cases, n_cases);
    H5Fclose(f);
    llava_free(ref);
    be->destroy(be);
    free(src);
    free(d16);
    free(dbf);
    return check_finish();
}
