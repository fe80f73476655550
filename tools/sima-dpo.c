/* sima-dpo — LoRA DPO (or SFT) training of a LLaVA model on CPU, data-parallel over MPI.
 *
 *   mpirun -np N sima-dpo --model DIR --pairs pairs.h5 --prompts prompts.h5 --out OUTDIR [options]
 *   mpirun -np N sima-dpo --mode sft --model DIR --prompts prompts.h5 --out OUTDIR [options]
 *
 * SFT trains on the prompts file's ground-truth answers: each row with a
 * ground truth is one item (the chat prompt with question and image, then
 * the answer's tokens and EOS), the loss is the cross-entropy averaged over
 * the global batch's response tokens (micro-batches weighted by their share
 * of those tokens). Everything else is the same loop.
 *
 * Every rank holds the whole model and adapter and reads every pair. Each
 * optimizer step takes one global batch of micro x accum x ranks pairs from
 * a data order shuffled per epoch from the seed (the same permutation on
 * every rank); rank r takes its accum micro-batches from the batch's r-th
 * share. Each micro-batch's gradient of its mean loss is weighted by its
 * share of the batch, so the sum over micro-batches and ranks
 * (MPI_Allreduce) is the gradient of the batch's mean loss, whatever the
 * number of ranks. Then clipping by global norm, AdamW with warm-up + cosine
 * schedule, and the trained weights are refreshed from the masters. Ranks stay
 * identical: they apply the same update to the same parameters.
 *
 * What is trained: LoRA terms (default); with --train-projector also the
 * multimodal projector, fully (CLIP runs forward only; the backward stops
 * at the projector); with --train all every weight of the model. All of it
 * is one flat float32 vector of master copies (the AdamW moments, the
 * all-reduced gradient and the global-norm clipping cover it whole); model
 * weights are uploaded to the backend after each update. In every mode the
 * DPO reference (adapter off, base projector / base weights) is scored once
 * before training where the pairs file has none, each pair alone and each
 * rank a block of pairs (MPI_Allgatherv), and kept in state.bin for resume.
 *
 * OUTDIR: metrics.csv (one line per step), checkpoint/ (every --save-every
 * steps and at the end, replaced atomically: adapter/ in PEFT format and
 * state.bin with a versioned header, the parameters, AdamW moments, step and
 * the reference log-probs scored once; the data order is a function of the
 * seed and epoch, so the step is all of its state), adapter/ (the final
 * adapter, the projector in it as PEFT modules_to_save when it is not the
 * base's) and, with --merge, merged/ (a model folder); --train all writes
 * model/ (a model folder) instead of adapter/.
 */
#define _GNU_SOURCE
#include "sima-dpo.h"

#include "err.h"
#include "hash.h"
#include "fs.h"
#include "h5util.h"
#include "log.h"
#include "prompts.h"
#include "sampling.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: mpirun -np N sima-dpo --model DIR --pairs pairs.h5 --prompts prompts.h5 --out OUTDIR\n"
    "                             [options]\n"
    "\n"
    "LoRA DPO training (sigmoid loss), data-parallel over MPI ranks (one GPU per rank).\n"
    "\n"
    "  --model DIR              LLaVA model folder (the base and the reference model)\n"
    "  --pairs FILE             preference pairs (schema sima.pairs)\n"
    "  --prompts FILE           the prompts file the pairs came from (for the images)\n"
    "  --out DIR                output folder: metrics.csv, checkpoint/, adapter/, merged/\n"
    "  --mode dpo|sft           DPO on pairs (default), or SFT on the prompts' ground truths\n"
    "  --template NAME|FILE     SFT: prompt template (default vicuna_v1; see data/templates)\n"
    "  --lora-r N               LoRA rank (default 128)\n"
    "  --lora-alpha X           LoRA alpha (default 256)\n"
    "  --targets LIST           LoRA target linears (default q,k,v,o,gate,up,down)\n"
    "  --lora-dropout X         dropout on the LoRA branch's input in training, [0, 1)\n"
    "                           (default 0; with --adapter, the adapter's own)\n"
    "  --adapter DIR            start from this PEFT adapter (its r, alpha, targets)\n"
    "  --beta X                 DPO beta (default 0.1)\n"
    "  --lr X                   peak learning rate (default 5e-5)\n"
    "  --warmup-ratio X         share of steps with linear warm-up (default 0.03)\n"
    "  --epochs N               passes over the pairs (default 3)\n"
    "  --micro-batch N          pairs per rank per forward/backward (default 1)\n"
    "  --grad-accum N           micro-batches per rank per step (default 1)\n"
    "  --weight-decay X         AdamW decoupled weight decay (default 0)\n"
    "  --max-grad-norm X        clip gradients to this global norm, 0: none (default 1.0)\n"
    "  --seed N                 adapter init and data order (default 0)\n"
    "  --rejected-logp-rule R   standard | sima (default standard)\n"
    "  --preprocess pad|crop    image preprocessing (default pad)\n"
    SESS_DEVICE_USAGE
    "  --save-every N           checkpoint every N steps, 0: only at the end (default 50)\n"
    "  --resume / --no-resume   continue from OUTDIR's checkpoint of the same run\n"
    "                           (default: resume when there is one)\n"
    "  --stop-after N           stop after global step N with a checkpoint (exit 3)\n"
    "  --merge                  also write OUTDIR/merged, the model with the adapter merged\n"
    "                           (and the trained projector)\n"
    "  --train-projector        also train the multimodal projector (linear_1, linear_2 and\n"
    "                           their biases) fully; CLIP stays frozen. The adapter folder\n"
    "                           then holds the projector as PEFT modules_to_save\n"
    "  --shard                  (GPUs, several ranks) each rank keeps a slice of the AdamW\n"
    "                           moments and computes its slice of the update; the ranks\n"
    "                           gather the new weights (ZeRO-style: optimizer memory / ranks)\n"
    "  --train lora|all         lora (default): LoRA adapters; all: every weight of the model\n"
    "                           (language model, projector, CLIP), for small models; writes\n"
    "                           OUTDIR/model, a full model folder; no LoRA options\n"
    "  --quiet, --verbose, --help, --version\n"
    "\n"
    "Global batch = micro-batch x grad-accum x ranks. Reference log-probs come from\n"
    "the pairs file when present, else from the model with the adapter off; with\n"
    "--train-projector or --train all (or an adapter holding a projector), from the\n"
    "base model, scored once before training and kept in the checkpoint.\n"
    "\n"
    "Exit status: 0 done, 1 error (also a NaN/inf loss or gradient norm: the last good\n"
    "checkpoint is kept), 2 bad usage, 3 interrupted (SIGTERM, SIGUSR1, SIGINT or\n"
    "--stop-after) after a checkpoint: rerun the same command to continue.\n";

/* What one step measured, summed over the batch's pairs (then the means). */
enum { M_LOSS, M_RCHOSEN, M_RREJECTED, M_ACC, M_MARGIN, M_TOKENS, M_N };

typedef struct {
    double sum[M_N];
    double lr, grad_norm, seconds;
} step_metrics;

/* ----------------------------------------------------------- options -- */

static void check_args(tool_ctx *t, const dpo_args *a)
{
    if (a->mode == MODE_DPO && (!a->model || !a->pairs || !a->prompts || !a->out))
        tool_usage_error(t, "--model, --pairs, --prompts and --out are required");
    if (a->mode == MODE_SFT && (!a->model || !a->prompts || !a->out))
        tool_usage_error(t, "--mode sft: --model, --prompts and --out are required");
    if (a->mode == MODE_SFT && a->pairs)
        tool_usage_error(t, "--mode sft trains on the prompts' ground truths: no --pairs");
    if (strcmp(a->preprocess, "pad") && strcmp(a->preprocess, "crop"))
        tool_usage_error(t, "--preprocess: expected pad or crop, got '%s'", a->preprocess);
    if (a->train == TRAIN_ALL && a->lora_given)
        tool_usage_error(t, "--train all trains every weight: no LoRA options (--lora-r, "
                            "--lora-alpha, --targets, --lora-dropout, --adapter)");
    if (a->train == TRAIN_ALL && a->merge)
        tool_usage_error(t, "--train all writes a full model folder (OUTDIR/model): no --merge");
    unsigned bits;
    if (lora_parse_targets(a->targets, &bits) != 0)
        tool_usage_error(t, "--targets: %s", err_msg());
}

static void parse_args(tool_ctx *t, int argc, char **argv, dpo_args *a)
{
    *a = (dpo_args){.targets = "q,k,v,o,gate,up,down", .preprocess = "pad", .template_name = "vicuna_v1",
                    .lora_r = 128,
                    .epochs = 3, .micro = 1, .accum = 1, .resume = -1, .lora_alpha = 256,
                    .lora_dropout = -1 /* not given */,
                    .beta = 0.1, .lr = 5e-5, .warmup_ratio = 0.03, .max_grad_norm = 1.0,
                    .save_every = 50};
    sess_device_default(t, &a->dev);
    enum { O_R = 256, O_ALPHA, O_TARGETS, O_ADAPTER, O_BETA, O_LR, O_WARM, O_EPOCHS, O_MICRO,
           O_ACCUM, O_WD, O_MGN, O_SEED, O_RULE, O_PRE, O_SAVE, O_RESUME, O_NORESUME, O_STOP,
           O_MERGE, O_MODE, O_TEMPLATE, O_DROPOUT, O_TRAIN_PROJ, O_TRAIN, O_SHARD };
    static struct option opts[] = {
        TOOL_COMMON_OPTIONS,
        {"model", required_argument, 0, 'm'}, {"pairs", required_argument, 0, 'P'},
        {"prompts", required_argument, 0, 'p'}, {"out", required_argument, 0, 'o'},
        {"lora-r", required_argument, 0, O_R}, {"lora-alpha", required_argument, 0, O_ALPHA},
        {"targets", required_argument, 0, O_TARGETS}, {"adapter", required_argument, 0, O_ADAPTER},
        {"beta", required_argument, 0, O_BETA}, {"lr", required_argument, 0, O_LR},
        {"warmup-ratio", required_argument, 0, O_WARM}, {"epochs", required_argument, 0, O_EPOCHS},
        {"micro-batch", required_argument, 0, O_MICRO}, {"grad-accum", required_argument, 0, O_ACCUM},
        {"weight-decay", required_argument, 0, O_WD}, {"max-grad-norm", required_argument, 0, O_MGN},
        {"seed", required_argument, 0, O_SEED}, {"rejected-logp-rule", required_argument, 0, O_RULE},
        {"preprocess", required_argument, 0, O_PRE}, {"save-every", required_argument, 0, O_SAVE},
        {"resume", no_argument, 0, O_RESUME}, {"no-resume", no_argument, 0, O_NORESUME},
        {"stop-after", required_argument, 0, O_STOP}, {"merge", no_argument, 0, O_MERGE},
        {"mode", required_argument, 0, O_MODE}, {"template", required_argument, 0, O_TEMPLATE},
        {"lora-dropout", required_argument, 0, O_DROPOUT},
        {"train-projector", no_argument, 0, O_TRAIN_PROJ}, {"train", required_argument, 0, O_TRAIN},
        {"shard", no_argument, 0, O_SHARD}, SESS_DEVICE_OPTIONS, {0, 0, 0, 0}};
    int proj = 0, all = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vqhVm:p:o:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        if (sess_device_option(t, &a->dev, c, optarg)) continue;
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'P': a->pairs = optarg; break;
        case 'p': a->prompts = optarg; break;
        case 'o': a->out = optarg; break;
        case O_R: a->lora_given = 1; a->lora_r = (int)tool_parse_int(t, "--lora-r", optarg, 1, 65536); break;
        case O_ALPHA: a->lora_given = 1; a->lora_alpha = tool_parse_real(t, "--lora-alpha", optarg, 1e-9, 1e9); break;
        case O_TARGETS: a->lora_given = 1; a->targets = optarg; break;
        case O_ADAPTER: a->lora_given = 1; a->adapter = optarg; break;
        case O_BETA: a->beta = tool_parse_real(t, "--beta", optarg, 1e-9, 1e6); break;
        case O_LR: a->lr = tool_parse_real(t, "--lr", optarg, 0, 1e300); break;
        case O_WARM: a->warmup_ratio = tool_parse_real(t, "--warmup-ratio", optarg, 0, 1); break;
        case O_EPOCHS: a->epochs = (int)tool_parse_int(t, "--epochs", optarg, 1, 1000000); break;
        case O_MICRO: a->micro = (int)tool_parse_int(t, "--micro-batch", optarg, 1, 4096); break;
        case O_ACCUM: a->accum = (int)tool_parse_int(t, "--grad-accum", optarg, 1, 1 << 20); break;
        case O_WD: a->weight_decay = tool_parse_real(t, "--weight-decay", optarg, 0, 1e6); break;
        case O_MGN: a->max_grad_norm = tool_parse_real(t, "--max-grad-norm", optarg, 0, 1e300); break;
        case O_SEED: a->seed = tool_parse_int(t, "--seed", optarg, 0, INT64_MAX); break;
        case O_RULE:
            if (!strcmp(optarg, "standard")) a->sima_rule = 0;
            else if (!strcmp(optarg, "sima")) a->sima_rule = 1;
            else tool_usage_error(t, "--rejected-logp-rule: expected standard or sima, got '%s'", optarg);
            break;
        case O_PRE: a->preprocess = optarg; break;
        case O_SAVE: a->save_every = tool_parse_int(t, "--save-every", optarg, 0, INT64_MAX); break;
        case O_RESUME: a->resume = 1; break;
        case O_NORESUME: a->resume = 0; break;
        case O_STOP: a->stop_after = tool_parse_int(t, "--stop-after", optarg, 1, INT64_MAX); break;
        case O_MERGE: a->merge = 1; break;
        case O_SHARD: a->shard = 1; break;
        case O_MODE:
            if (!strcmp(optarg, "dpo")) a->mode = MODE_DPO;
            else if (!strcmp(optarg, "sft")) a->mode = MODE_SFT;
            else tool_usage_error(t, "--mode: expected dpo or sft, got '%s'", optarg);
            break;
        case O_TEMPLATE: a->template_name = optarg; break;
        case O_DROPOUT:
            a->lora_given = 1;
            a->lora_dropout = tool_parse_real(t, "--lora-dropout", optarg, 0, 0.999999);
            break;
        case O_TRAIN_PROJ: proj = 1; break;
        case O_TRAIN:
            if (!strcmp(optarg, "all")) all = 1;
            else if (strcmp(optarg, "lora")) tool_usage_error(t, "--train: expected lora or all, got '%s'", optarg);
            break;
        default: tool_usage_error(t, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) tool_usage_error(t, "unexpected argument '%s'", argv[optind]);
    if (proj && all)
        tool_usage_error(t, "--train-projector goes with LoRA training; --train all trains the projector already");
    a->train = all ? TRAIN_ALL : proj ? TRAIN_LORA_PROJECTOR : TRAIN_LORA;
    check_args(t, a);
}

/* --------------------------------------------------------------- step -- */

/* The LoRA dropout masks of item `item` in the current step: a function of
 * (seed, step, item), never of the rank or the micro-batch (the layer and
 * linear are mixed in by llama_dropout). */
static uint64_t dropout_seed(const trainer *tr, int64_t item)
{
    return smp_derive_seed(smp_derive_seed((uint64_t)tr->a->seed, 0x64726f70 /* "drop" */,
                                           (uint64_t)tr->step),
                           (uint64_t)item, 0);
}

/* The pass mode of a training micro-batch, and its LoRA dropout. */
static int pass_mode(const trainer *tr)
{
    if (tr->a->train == TRAIN_ALL) return TRAIN_FOR_BACKWARD | TRAIN_WITH_VISION;
    if (tr->a->train == TRAIN_LORA_PROJECTOR) return TRAIN_FOR_BACKWARD | TRAIN_WITH_PROJECTOR;
    return TRAIN_FOR_BACKWARD;
}

static float lora_dropout(const trainer *tr) { return tr->ad ? (float)tr->ad->cfg.dropout : 0.0f; }

/* Zero the backend gradients before a micro-batch. */
static void grads_zero(trainer *tr)
{
    llama_grads_zero(tr->s.m, &tr->g);
    vision_grads_zero(tr->s.m, &tr->vg);
}

/* One DPO micro-batch: its gradient weighted by its share of the global
 * batch (n / batch_w) into tr->p.grad, its metrics' sums into m. */
static int run_micro_dpo(trainer *tr, const int64_t *items, int n, double batch_w, step_metrics *m)
{
    dpo_pair *batch = xcalloc((size_t)n, sizeof *batch);
    int *image = xcalloc((size_t)n, sizeof *image);
    for (int i = 0; i < n; i++) {
        batch[i] = tr->data.pair[items[i]];
        batch[i].lora_dropout = lora_dropout(tr);
        batch[i].dropout_seed = dropout_seed(tr, items[i]);
    }
    float *pixels = NULL;
    int n_img = 0;
    int rc = batch_pixels(tr, items, n, image, &pixels, &n_img);
    for (int i = 0; i < n; i++) batch[i].image = image[i];
    dpo_result r;
    if (rc == 0) {
        grads_zero(tr);
        rc = dpo_step_mode(tr->s.m, batch, n, pixels, n_img, &tr->opts, pass_mode(tr), &tr->g,
                           &tr->vg, &r);
    }
    if (rc == 0) {
        params_accumulate(&tr->p, tr->s.be, (double)n / batch_w);
        m->sum[M_LOSS] += r.loss * n;
        m->sum[M_RCHOSEN] += r.reward_chosen * n;
        m->sum[M_RREJECTED] += r.reward_rejected * n;
        m->sum[M_ACC] += r.reward_accuracy * n;
        m->sum[M_MARGIN] += r.reward_margin * n;
        for (int i = 0; i < n; i++) m->sum[M_TOKENS] += (double)(batch[i].n_chosen + batch[i].n_rejected);
        dpo_result_free(&r);
    }
    free(batch);
    free(image);
    free(pixels);
    return rc;
}

/* One SFT micro-batch: the gradient of its mean token loss weighted by its
 * share of the global batch's response tokens (w / batch_w). */
static int run_micro_sft(trainer *tr, const int64_t *items, int n, double batch_w, step_metrics *m)
{
    train_seq *batch = xcalloc((size_t)n, sizeof *batch);
    int *image = xcalloc((size_t)n, sizeof *image);
    double w = 0, loss = 0;
    for (int i = 0; i < n; i++) {
        batch[i] = tr->data.seq[items[i]];
        batch[i].lora_dropout = lora_dropout(tr);
        batch[i].dropout_seed = dropout_seed(tr, items[i]);
        w += item_weight(&tr->data, items[i]);
    }
    float *pixels = NULL;
    int n_img = 0;
    int rc = batch_pixels(tr, items, n, image, &pixels, &n_img);
    for (int i = 0; i < n; i++) batch[i].image = image[i];
    if (rc == 0) {
        grads_zero(tr);
        rc = sft_step(tr->s.m, batch, n, pixels, n_img, pass_mode(tr), &tr->g, &tr->vg, &loss);
    }
    if (rc == 0) {
        params_accumulate(&tr->p, tr->s.be, w / batch_w);
        m->sum[M_LOSS] += loss * w;
        for (int i = 0; i < n; i++) m->sum[M_TOKENS] += (double)batch[i].n;
    }
    free(batch);
    free(image);
    free(pixels);
    return rc;
}

static int run_micro(trainer *tr, const int64_t *items, int n, double batch_w, step_metrics *m)
{
    return tr->a->mode == MODE_SFT ? run_micro_sft(tr, items, n, batch_w, m)
                                   : run_micro_dpo(tr, items, n, batch_w, m);
}

/* This rank's micro-batches of step `step`'s global batch; *batch_w gets
 * the whole batch's weight (every rank computes it from the data). */
static int run_my_share(trainer *tr, int64_t step, step_metrics *m, double *batch_w)
{
    const dpo_args *a = tr->a;
    int64_t epoch = step / tr->steps_per_epoch, k = step % tr->steps_per_epoch;
    if (tr->order_epoch != epoch) {
        epoch_order((uint64_t)a->seed, epoch, tr->data.n, tr->order);
        tr->order_epoch = epoch;
    }
    int64_t b0 = k * tr->global_batch;
    int64_t b1 = b0 + tr->global_batch < tr->data.n ? b0 + tr->global_batch : tr->data.n;
    *batch_w = 0; /* the last batch of an epoch may be short */
    for (int64_t i = b0; i < b1; i++) *batch_w += item_weight(&tr->data, tr->order[i]);
    int64_t share = (int64_t)a->micro * a->accum;
    int rc = 0;
    for (int j = 0; rc == 0 && j < a->accum; j++) {
        int64_t i0 = b0 + tr->t->rank * share + (int64_t)j * a->micro;
        int64_t i1 = i0 + a->micro < b1 ? i0 + a->micro : b1;
        if (i1 > i0) rc = run_micro(tr, tr->order + i0, (int)(i1 - i0), *batch_w, m);
    }
    return rc;
}

/* One optimizer step. Collective. A NaN/inf loss or gradient norm is an
 * error (reported by rank 0) before the parameters change. */
static int train_step(trainer *tr, step_metrics *m)
{
    const dpo_args *a = tr->a;
    double t0 = MPI_Wtime();
    memset(m, 0, sizeof *m);
    params_zero_grad(&tr->p);
    double batch_w;
    int rc = run_my_share(tr, tr->step, m, &batch_w);
    tool_agree(tr->t, rc);
    rc = params_allreduce(&tr->p);
    if (rc == 0 && MPI_Allreduce(MPI_IN_PLACE, m->sum, M_N, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) !=
                       MPI_SUCCESS)
        rc = ERR("MPI_Allreduce of the step's metrics failed");
    tool_agree(tr->t, rc);
    for (int i = 0; i < M_TOKENS; i++) m->sum[i] /= batch_w;
    double clip_scale;
    m->grad_norm = params_clip(&tr->p, a->max_grad_norm, &clip_scale);
    if (!isfinite(m->sum[M_LOSS]) || !isfinite(m->grad_norm)) {
        /* every rank sees the same reduced values; rank 0 says it */
        if (tr->t->rank == 0)
            rc = ERR("step %lld: loss %g, gradient norm %g: not finite; stopped (the last good "
                     "checkpoint, if any, is kept in %s/checkpoint)",
                     (long long)tr->step + 1, m->sum[M_LOSS], m->grad_norm, a->out);
        else
            rc = -1;
        return rc;
    }
    optim_adamw o = optim_adamw_default();
    o.lr = m->lr = optim_lr(a->lr, tr->step, tr->total_steps, a->warmup_ratio);
    o.weight_decay = a->weight_decay;
    params_adamw(&tr->p, &o, tr->step + 1, clip_scale);
    tr->step++;
    m->seconds = MPI_Wtime() - t0;
    return 0;
}

/* ------------------------------------------------------------ logging -- */

static const char CSV_HEADER[] = "step,epoch,loss,rewards_chosen,rewards_rejected,"
                                 "reward_accuracy,margin,lr,grad_norm,tokens_per_s,eta_s\n";

/* Rank 0: metrics.csv with its header and the lines of steps <= keep_steps
 * (the lines after a checkpoint are redone on resume). */
static int csv_start(const char *out, int64_t keep_steps)
{
    char *path = fs_join(out, "metrics.csv");
    char *old = NULL, *kept = NULL;
    size_t len = 0, n = 0;
    if (keep_steps > 0 && fs_is_file(path) && fs_read_all(path, &old, &len) != 0) {
        free(path);
        return -1;
    }
    kept = xmalloc(len + sizeof CSV_HEADER);
    memcpy(kept, CSV_HEADER, sizeof CSV_HEADER - 1);
    n = sizeof CSV_HEADER - 1;
    for (char *line = old; line && *line;) {
        char *end = strchr(line, '\n');
        size_t l = end ? (size_t)(end - line + 1) : strlen(line);
        long long s = atoll(line);
        if (s >= 1 && s <= keep_steps && end) {
            memcpy(kept + n, line, l);
            n += l;
        }
        line += l;
    }
    int rc = fs_write_atomic(path, kept, n);
    free(old);
    free(kept);
    free(path);
    return rc;
}

static int csv_append(const char *out, const char *line)
{
    char *path = fs_join(out, "metrics.csv");
    FILE *f = fopen(path, "a");
    int rc = 0;
    if (!f) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    if (f && fputs(line, f) == EOF) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    if (f && fclose(f) != 0 && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    free(path);
    return rc;
}

/* The step line on rank 0 and its CSV row. */
static int report_step(trainer *tr, const step_metrics *m)
{
    double el = MPI_Wtime() - tr->t_start;
    double per = el / (double)(tr->step - tr->step_start);
    double eta = per * (double)(tr->total_steps - tr->step);
    double tps = m->sum[M_TOKENS] / (m->seconds > 0 ? m->seconds : 1e-9);
    tr->tokens_run += m->sum[M_TOKENS];
    tr->seconds_run += m->seconds;
    double epoch = (double)tr->step / (double)tr->steps_per_epoch;
    const double *s = m->sum;
    char b[32], line[512];
    if (tr->a->mode == MODE_SFT) {
        log_info("step %lld/%lld epoch %.2f loss %.4f lr %.3g grad_norm %.4g tokens/s %.0f ETA %s",
                 (long long)tr->step, (long long)tr->total_steps, epoch, s[M_LOSS], m->lr,
                 m->grad_norm, tps, tool_duration(eta, b));
        if (tr->t->rank != 0) return 0;
        /* no rewards in SFT: those fields stay empty */
        snprintf(line, sizeof line, "%lld,%.6f,%.9g,,,,,%.9g,%.9g,%.6g,%.3f\n", (long long)tr->step,
                 epoch, s[M_LOSS], m->lr, m->grad_norm, tps, eta);
        return csv_append(tr->a->out, line);
    }
    log_info("step %lld/%lld epoch %.2f loss %.4f rewards/chosen %.4f rewards/rejected %.4f "
             "accuracy %.2f margin %.4f lr %.3g grad_norm %.4g tokens/s %.0f ETA %s",
             (long long)tr->step, (long long)tr->total_steps, epoch, s[M_LOSS], s[M_RCHOSEN],
             s[M_RREJECTED], s[M_ACC], s[M_MARGIN], m->lr, m->grad_norm, tps, tool_duration(eta, b));
    if (tr->t->rank != 0) return 0;
    snprintf(line, sizeof line, "%lld,%.6f,%.9g,%.9g,%.9g,%.6g,%.9g,%.9g,%.9g,%.6g,%.3f\n",
             (long long)tr->step, epoch, s[M_LOSS], s[M_RCHOSEN], s[M_RREJECTED], s[M_ACC],
             s[M_MARGIN], m->lr, m->grad_norm, tps, eta);
    return csv_append(tr->a->out, line);
}

/* --------------------------------------------------------------- main -- */

/* Everything that determines the result, hashed: a checkpoint resumes only
 * a run with the same key. The number of ranks is not in it: the global
 * batch is. */
static void run_key(trainer *tr, const char *model_hash)
{
    const dpo_args *a = tr->a;
    lora_config none = {0};
    const lora_config *c = tr->ad ? &tr->ad->cfg : &none;
    char *s = NULL;
    if (asprintf(&s,
                 "model=%s pairs=%s prompts=%s preprocess=%s adapter=%s r=%d alpha=%.17g "
                 "targets=%u dropout=%.17g beta=%.17g lr=%.17g warmup=%.17g epochs=%d global_batch=%lld "
                 "micro=%d wd=%.17g max_grad_norm=%.17g seed=%lld rule=%d mode=%d template=%s train=%d",
                 model_hash, tr->data.identity, a->prompts, a->preprocess,
                 a->adapter ? a->adapter : "-", c->r, c->alpha, c->targets, c->dropout, a->beta, a->lr,
                 a->warmup_ratio, a->epochs, (long long)tr->global_batch, a->micro,
                 a->weight_decay, a->max_grad_norm, (long long)a->seed, a->sima_rule, (int)a->mode,
                 a->mode == MODE_SFT ? a->template_name : "-", (int)a->train) < 0)
        DIE("out of memory");
    h5io_hex64(hash_fnv1a(s, strlen(s), HASH_FNV_INIT), tr->key);
    free(s);
}

static int make_adapter(trainer *tr)
{
    const dpo_args *a = tr->a;
    if (a->train == TRAIN_ALL) return 0;
    if (a->adapter) {
        if (lora_load_peft(tr->s.m, a->adapter, &tr->ad) != 0) return -1;
        if (a->lora_dropout >= 0) tr->ad->cfg.dropout = a->lora_dropout;
        if (!(tr->ad->cfg.dropout >= 0 && tr->ad->cfg.dropout < 1))
            return ERR("%s: lora_dropout %g: expected [0, 1)", a->adapter, tr->ad->cfg.dropout);
        return 0;
    }
    lora_config c = lora_config_default();
    c.r = a->lora_r;
    c.alpha = a->lora_alpha;
    c.dropout = a->lora_dropout >= 0 ? a->lora_dropout : 0;
    if (lora_parse_targets(a->targets, &c.targets) != 0) return -1;
    return lora_new(tr->s.m, &c, (uint64_t)a->seed, &tr->ad);
}

static int load_inputs(trainer *tr)
{
    const dpo_args *a = tr->a;
    int64_t n_prompts;
    int rc = make_dir(a->out);
    if (rc == 0) rc = sess_load(a->model, a->preprocess, &a->dev, &tr->s);
    if (rc == 0) rc = prm_open(&tr->prompts, a->prompts, &n_prompts);
    if (rc == 0 && a->mode == MODE_DPO) rc = data_load(a->pairs, &tr->data);
    if (rc == 0 && a->mode == MODE_SFT)
        rc = sft_data_load(&tr->prompts, a->prompts, n_prompts, a->template_name, &tr->s, &tr->data);
    if (rc == 0) rc = make_adapter(tr);
    return rc;
}


static void plan_steps(trainer *tr)
{
    const dpo_args *a = tr->a;
    tr->global_batch = (int64_t)a->micro * a->accum * tr->t->size;
    tr->steps_per_epoch = (tr->data.n + tr->global_batch - 1) / tr->global_batch;
    tr->total_steps = tr->steps_per_epoch * a->epochs;
    tr->order = xmalloc(sizeof(int64_t) * (size_t)tr->data.n);
    tr->order_epoch = -1;
    tr->opts = dpo_opts_default();
    tr->opts.beta = a->beta;
    tr->opts.sima_rule = a->sima_rule;
}

/* Train until the end, a signal, or --stop-after. Returns the exit code. */
static int train_loop(trainer *tr)
{
    const dpo_args *a = tr->a;
    tr->t_start = MPI_Wtime();
    tr->step_start = tr->step;
    while (tr->step < tr->total_steps) {
        step_metrics m;
        tool_agree(tr->t, train_step(tr, &m));
        tool_agree(tr->t, report_step(tr, &m));
        bool stop = a->stop_after > 0 && tr->step >= a->stop_after && tr->step < tr->total_steps;
        bool interrupted = tool_any_interrupted(tr->t);
        if ((a->save_every > 0 && tr->step % a->save_every == 0) || stop || interrupted ||
            tr->step == tr->total_steps)
            checkpoint_save(tr);
        if (stop || interrupted) {
            log_info("%s at step %lld/%lld; checkpoint in %s/checkpoint: rerun the same "
                     "command to continue", interrupted ? "interrupted" : "stopped (--stop-after)",
                     (long long)tr->step, (long long)tr->total_steps, a->out);
            return TOOL_INTERRUPTED;
        }
    }
    return TOOL_OK;
}

static void free_trainer(trainer *tr)
{
    params_free(&tr->p);
    for (int i = 0; tr->proj_owned && i < 4; i++) free(tr->proj[i]);
    if (tr->s.m) {
        llama_grads_free(tr->s.m, &tr->g);
        vision_grads_free(tr->s.m, &tr->vg);
    }
    if (tr->ad) {
        lora_detach(tr->s.m);
        lora_free(tr->ad);
    }
    h5io_close(&tr->prompts);
    data_free(&tr->data);
    free(tr->order);
    sess_free(&tr->s);
}

/* What the run trains, for the start line. */
static void describe(const trainer *tr, char *buf, size_t size)
{
    if (!tr->ad)
        snprintf(buf, size, "%lld parameters (every weight)", (long long)tr->p.total);
    else
        snprintf(buf, size, "%lld parameters: LoRA r %d, alpha %g%s", (long long)tr->p.total,
                 tr->ad->cfg.r, tr->ad->cfg.alpha,
                 tr->a->train == TRAIN_LORA_PROJECTOR ? ", and the projector" : "");
}

/* Rank 0 writes the final adapter (or, --train all, the model); then --merge. */
static void write_outputs(trainer *tr, char **written)
{
    const dpo_args *a = tr->a;
    if (a->train == TRAIN_ALL) {
        write_model(tr, "model");
        *written = fs_join(a->out, "model");
        return;
    }
    *written = fs_join(a->out, "adapter");
    params_to_host(&tr->p);
    tool_agree(tr->t, tr->t->rank == 0 ? save_adapter(tr, *written) : 0);
    if (a->merge) write_model(tr, "merged");
}

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-dpo");
    h5u_init();
    tool_catch_signals();
    dpo_args a;
    parse_args(&t, argc, argv, &a);
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.a = &a;
    tr.t = &t;
    tool_agree(&t, load_inputs(&tr));
    if (tr.ad) lora_attach(tr.s.m, tr.ad);
    plan_steps(&tr);
    tr.ref_once = need_ref_once(&tr);
    char *model_hash = h5io_model_hash(a.model);
    tool_agree(&t, model_hash ? 0 : -1);
    run_key(&tr, model_hash);
    free(model_hash);
    /* the reference first: the base model is untouched until setup_params */
    if (tr.ref_once && !checkpoint_resumable(&tr)) score_references(&tr);
    tool_agree(&t, setup_params(&tr));
    bool resumed;
    tool_agree(&t, maybe_resume(&tr, &resumed));
    tool_agree(&t, t.rank == 0 ? csv_start(a.out, tr.step) : 0);
    char what[160];
    describe(&tr, what, sizeof what);
    log_info("%lld %s, global batch %lld (%d micro x %d accum x %d ranks), %lld steps/epoch, "
             "%lld steps; %s%s",
             (long long)tr.data.n, a.mode == MODE_SFT ? "SFT answers" : "pairs",
             (long long)tr.global_batch, a.micro, a.accum, t.size,
             (long long)tr.steps_per_epoch, (long long)tr.total_steps, what,
             resumed ? "; resumed from the checkpoint" : "");
    if (resumed) log_info("resuming at step %lld", (long long)tr.step);
    int code = train_loop(&tr);
    if (code == TOOL_OK) {
        char *dir = NULL;
        write_outputs(&tr, &dir);
        char b[32];
        int64_t ran = tr.step - tr.step_start;
        log_info("done: %lld steps in %s (this run: %lld steps, mean step %.1f ms, %.0f training "
                 "tokens/s); wrote %s", (long long)tr.total_steps,
                 tool_duration(MPI_Wtime() - t.t0, b), (long long)ran,
                 ran ? 1e3 * tr.seconds_run / (double)ran : 0.0,
                 tr.seconds_run > 0 ? tr.tokens_run / tr.seconds_run : 0.0, dir);
        free(dir);
    }
    free_trainer(&tr);
    return tool_finish(&t, code);
}

