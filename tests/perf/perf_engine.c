/* perf_engine.c — the engine's own generation throughput on a prompts file,
 * for comparison with sima-gen on the same prompts and settings
 * (tests/perf/perf_sima_gen.sh runs both).
 *
 *   perf_engine MODEL_DIR prompts.h5 [candidates] [max_new_tokens] [batch]
 *
 * Builds the same requests as sima-gen with its defaults (vicuna_v1
 * template, pad preprocessing, candidate 0 greedy, others sampled at
 * temperature 0.8 / top-p 0.9, seeds from (0, row, candidate)) and runs them
 * all in one engine call. Prints new tokens/s. */
#include "chat.h"
#include "err.h"
#include "generate.h"
#include "h5io.h"
#include "image.h"
#include "llava.h"
#include "tokenizer.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    err_set_program("perf_engine");
    if (argc < 3) {
        fprintf(stderr, "usage: perf_engine MODEL_DIR prompts.h5 [candidates] [max_new] [batch]\n");
        return 2;
    }
    const char *model = argv[1], *prompts = argv[2];
    int C = argc > 3 ? atoi(argv[3]) : 2, max_new = argc > 4 ? atoi(argv[4]) : 1024;
    int batch = argc > 5 ? atoi(argv[5]) : 8;
    be_backend *be = be_cpu_new(0);
    llava_model *m;
    tok_tokenizer *tok;
    chat_template tpl;
    img_proc_cfg pc;
    h5io_file f;
    if (llava_load(model, be, &m) || tok_load(model, &tok) || chat_template_load("vicuna_v1", &tpl) ||
        img_proc_load(model, &pc) || h5io_open(&f, prompts, MPI_COMM_SELF))
        err_exit();
    int64_t n = h5io_rows(&f, "/prompts/question");
    gen_request *req = xcalloc((size_t)(n * C), sizeof *req);
    tok_ids *ids = xcalloc((size_t)n, sizeof *ids);
    float **px = xcalloc((size_t)n, sizeof *px);
    for (int64_t r = 0; r < n; r++) {
        int64_t off[2], img = -1;
        char *q = NULL;
        if (h5io_read_ragged(&f, "/prompts/question", H5IO_TEXT, r, 1, off, (void **)&q) ||
            h5io_read_column(&f, "/prompts/image", H5IO_I64, r, 1, &img))
            err_exit();
        if (img >= 0) {
            uint8_t *jpeg = NULL;
            img_rgb8 im = {0};
            if (h5io_read_ragged(&f, "/images/jpeg", H5IO_U8, img, 1, off, (void **)&jpeg) ||
                img_decode_jpeg(jpeg, (size_t)off[1], "image", &im))
                err_exit();
            px[r] = xmalloc(sizeof(float) * 3 * (size_t)pc.crop_w * pc.crop_h);
            if (img_preprocess(&im, &pc, IMG_PAD, px[r])) err_exit();
            img_free(&im);
            free(jpeg);
        }
        if (chat_prompt_ids(&tpl, tok, q, img >= 0, m->cfg.image_token_index, m->image_tokens, &ids[r]))
            err_exit();
        free(q);
        for (int c = 0; c < C; c++)
            req[r * C + c] = (gen_request){ids[r].ids, (int64_t)ids[r].n, px[r], px[r] ? 1 : 0,
                                           {c == 0 ? 0.0f : 0.8f, 0.9f, 0},
                                           smp_derive_seed(0, (uint64_t)r, (uint64_t)c), max_new, -1};
    }
    gen_output *out = xcalloc((size_t)(n * C), sizeof *out);
    gen_options opt;
    gen_options_default(&opt);
    opt.max_batch = batch;
    double t0 = now();
    if (gen_generate(m, req, (int)(n * C), &opt, out)) err_exit();
    double dt = now() - t0;
    int64_t tokens = 0;
    for (int64_t i = 0; i < n * C; i++) tokens += out[i].n;
    printf("engine: %lld prompts x %d candidates, batch %d: %lld new tokens in %.2f s = %.0f new tokens/s\n",
           (long long)n, C, batch, (long long)tokens, dt, tokens / dt);
    MPI_Finalize();
    return 0;
}
