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
 * schedule, and the new adapter is uploaded (lora_sync). Ranks stay
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
#include "chat.h"
#include "chunks.h"
#include "err.h"
#include "dpo.h"
#include "fs.h"
#include "h5io.h"
#include "h5util.h"
#include "js.h"
#include "log.h"
#include "lora.h"
#include "lora_merge.h"
#include "optim.h"
#include "peft_modules.h"
#include "train_names.h"
#include "pairs.h"
#include "prompts.h"
#include "sampling.h"
#include "safetensors.h"
#include "session.h"
#include "tool.h"
#include "weights.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: mpirun -np N sima-dpo --model DIR --pairs pairs.h5 --prompts prompts.h5 --out OUTDIR\n"
    "                             [options]\n"
    "\n"
    "LoRA DPO training (sigmoid loss) on CPU, data-parallel over MPI ranks.\n"
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
    "  --save-every N           checkpoint every N steps, 0: only at the end (default 50)\n"
    "  --resume / --no-resume   continue from OUTDIR's checkpoint of the same run\n"
    "                           (default: resume when there is one)\n"
    "  --stop-after N           stop after global step N with a checkpoint (exit 3)\n"
    "  --merge                  also write OUTDIR/merged, the model with the adapter merged\n"
    "                           (and the trained projector)\n"
    "  --train-projector        also train the multimodal projector (linear_1, linear_2 and\n"
    "                           their biases) fully; CLIP stays frozen. The adapter folder\n"
    "                           then holds the projector as PEFT modules_to_save\n"
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

typedef enum { MODE_DPO, MODE_SFT } train_mode;
/* What is trained: LoRA terms; LoRA and the projector; every weight. */
typedef enum { TRAIN_LORA, TRAIN_LORA_PROJECTOR, TRAIN_ALL } train_what;

typedef struct {
    const char *model, *pairs, *prompts, *out, *adapter, *targets, *preprocess, *template_name;
    train_mode mode;
    train_what train;
    int lora_given;             /* a LoRA option or --adapter was given */
    int lora_r, epochs, micro, accum, sima_rule, merge, resume; /* resume -1: auto */
    double lora_alpha, lora_dropout, beta, lr, warmup_ratio, weight_decay, max_grad_norm;
    int64_t seed, save_every, stop_after;
} dpo_args;

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
    enum { O_R = 256, O_ALPHA, O_TARGETS, O_ADAPTER, O_BETA, O_LR, O_WARM, O_EPOCHS, O_MICRO,
           O_ACCUM, O_WD, O_MGN, O_SEED, O_RULE, O_PRE, O_SAVE, O_RESUME, O_NORESUME, O_STOP,
           O_MERGE, O_MODE, O_TEMPLATE, O_DROPOUT, O_TRAIN_PROJ, O_TRAIN };
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
        {0, 0, 0, 0}};
    int proj = 0, all = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vqhVm:p:o:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
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

/* --------------------------------------------------------------- data -- */

/* The items trained on: DPO, every pair as a dpo_pair over whole sequences
 * (prompt ++ response); SFT, every prompt row with a ground truth as a
 * train_seq. */
typedef struct {
    int64_t n;
    dpo_pair *pair;         /* DPO [n]; image: -1 here, set per micro-batch */
    train_seq *seq;         /* SFT [n]; image likewise */
    int64_t *image_row;     /* [n] row of the prompts file's /images, -1 none */
    char *identity;         /* path@created#run_key/rows, for the run key */
} dpo_data;

static int32_t *concat_ids(const int32_t *a, int64_t na, const int32_t *b, int64_t nb)
{
    int32_t *s = xmalloc(sizeof(int32_t) * (size_t)(na + nb > 0 ? na + nb : 1));
    memcpy(s, a, sizeof(int32_t) * (size_t)na);
    memcpy(s + na, b, sizeof(int32_t) * (size_t)nb);
    return s;
}

static void data_from_rows(const pairs_rows *r, dpo_data *d)
{
    d->n = r->n;
    d->pair = xcalloc((size_t)(r->n ? r->n : 1), sizeof *d->pair);
    d->image_row = xcalloc((size_t)(r->n ? r->n : 1), sizeof *d->image_row);
    for (int64_t i = 0; i < r->n; i++) {
        int64_t np, nc, nr;
        const int32_t *p = pairs_ids(r, PAIRS_PROMPT_IDS, i, &np);
        const int32_t *c = pairs_ids(r, PAIRS_CHOSEN_IDS, i, &nc);
        const int32_t *j = pairs_ids(r, PAIRS_REJECTED_IDS, i, &nr);
        dpo_pair *q = &d->pair[i];
        q->chosen = concat_ids(p, np, c, nc);
        q->rejected = concat_ids(p, np, j, nr);
        q->n_chosen = np + nc;
        q->n_rejected = np + nr;
        q->n_prompt = np;
        q->image = -1;
        /* NaN in the file: not computed, the adapter-off model scores them */
        q->has_ref = !isnan(r->ref_chosen_logp[i]) && !isnan(r->ref_rejected_logp[i]);
        q->ref_chosen = r->ref_chosen_logp[i];
        q->ref_rejected = r->ref_rejected_logp[i];
        d->image_row[i] = r->image[i];
    }
}

static int data_load(const char *path, dpo_data *d)
{
    h5io_file f;
    pairs_rows rows;
    memset(d, 0, sizeof *d);
    if (h5io_open(&f, path, MPI_COMM_SELF) != 0) return -1;
    int rc = h5io_require_schema(&f, PAIRS_SCHEMA, PAIRS_SCHEMA_VERSION);
    if (rc == 0) rc = pairs_read(&f, &rows);
    if (rc == 0) {
        d->identity = chk_input_identity(&f, path, rows.n);
        data_from_rows(&rows, d);
        pairs_free(&rows);
        if (d->n == 0) rc = ERR("%s: no pairs to train on", path);
    }
    h5io_close(&f);
    return rc;
}

/* Only whitespace (or nothing): no answer to train on. */
static bool blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s == 0;
}

/* Prompt row `row` as an SFT sequence: the chat prompt with its question
 * (and image), the ground truth's tokens, EOS. *skip when it has no
 * ground truth. q->ids malloc'd. */
static int sft_sequence(h5io_file *f, int64_t row, const chat_template *tpl, const sess_model *s,
                        train_seq *q, int64_t *image, bool *skip)
{
    char *question = NULL, *truth = NULL;
    tok_ids ids = {0};
    const cfg_model *cfg = &s->m->cfg;
    int rc = prm_text(f, "question", row, &question);
    if (rc == 0) rc = prm_text(f, "ground_truth", row, &truth);
    if (rc == 0) rc = prm_image_index(f, row, image);
    *skip = rc == 0 && blank(truth);
    if (rc == 0 && !*skip)
        rc = chat_prompt_ids(tpl, s->tok, question, *image >= 0, cfg->image_token_index,
                             cfg->image_seq_length, &ids);
    int64_t n_prompt = (int64_t)ids.n;
    if (rc == 0 && !*skip) rc = tok_encode_plain(s->tok, truth, strlen(truth), &ids);
    if (rc == 0 && !*skip) {
        tok_ids_push(&ids, cfg->text.eos_token_id);
        *q = (train_seq){ids.ids, (int64_t)ids.n, n_prompt, -1, false, 0, 0};
        ids.ids = NULL;
    }
    if (rc != 0) err_context("prompt row %lld", (long long)row);
    tok_ids_free(&ids);
    free(question);
    free(truth);
    return rc;
}

/* SFT items: every row of the (open) prompts file with a ground truth. */
static int sft_data_load(h5io_file *f, const char *path, int64_t n_rows, const char *template_name,
                         const sess_model *s, dpo_data *d)
{
    chat_template tpl;
    memset(d, 0, sizeof *d);
    if (chat_template_load(template_name, &tpl) != 0) return -1;
    d->seq = xcalloc((size_t)(n_rows ? n_rows : 1), sizeof *d->seq);
    d->image_row = xcalloc((size_t)(n_rows ? n_rows : 1), sizeof *d->image_row);
    int rc = 0;
    for (int64_t row = 0; rc == 0 && row < n_rows; row++) {
        bool skip;
        rc = sft_sequence(f, row, &tpl, s, &d->seq[d->n], &d->image_row[d->n], &skip);
        if (rc == 0 && !skip) d->n++;
    }
    chat_template_free(&tpl);
    if (rc == 0) d->identity = chk_input_identity(f, path, d->n);
    if (rc == 0 && d->n == 0) rc = ERR("%s: no prompt has a ground truth to train on", path);
    return rc;
}

/* What an item weighs in its batch's mean loss: DPO one per pair, SFT its
 * response tokens. */
static double item_weight(const dpo_data *d, int64_t i)
{
    return d->seq ? (double)(d->seq[i].n - d->seq[i].n_prompt) : 1.0;
}

static void data_free(dpo_data *d)
{
    for (int64_t i = 0; d->pair && i < d->n; i++) {
        free((void *)d->pair[i].chosen);
        free((void *)d->pair[i].rejected);
    }
    for (int64_t i = 0; d->seq && i < d->n; i++) free((void *)d->seq[i].ids);
    free(d->pair);
    free(d->seq);
    free(d->image_row);
    free(d->identity);
}

/* Epoch e's order of the pairs: Fisher-Yates from (seed, e), the same on
 * every rank and on resume. */
static void epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *order)
{
    smp_rng rng;
    smp_rng_seed(&rng, smp_derive_seed(seed, 0x64706f /* "dpo" */, (uint64_t)epoch));
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(smp_rng_uniform(&rng) * (double)(i + 1));
        int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* ------------------------------------------------------------ params -- */

/* The trained tensors as one flat vector: gradients, AdamW moments and
 * checkpoints use it. param is the float32 master copy: the adapter's host
 * copy for a LoRA term (w NULL: lora_sync uploads it), else our own copy of
 * a model weight w (uploaded with weight_set after each update). grad is the
 * backend gradient of the tensor; grad2 a second one of the same tensor
 * (lm_head tied to the embeddings), or NULL. */
typedef struct {
    float *param;
    be_mat *grad, *grad2;
    be_weight *w;
    int64_t n, off;
} dpo_tensor;

typedef struct {
    dpo_tensor *t;
    int n, cap;
    int64_t total, largest;
    float *grad, *m, *v, *scratch;
} dpo_params;

static void params_add(dpo_params *p, float *param, be_mat *grad, be_mat *grad2, be_weight *w)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->t = xrealloc(p->t, sizeof *p->t * (size_t)p->cap);
    }
    int64_t n = grad->rows * grad->cols;
    p->t[p->n++] = (dpo_tensor){param, grad, grad2, w, n, p->total};
    p->total += n;
    if (n > p->largest) p->largest = n;
}

/* A model weight as a trained tensor: its float32 master copy from the backend. */
static void params_add_weight(dpo_params *p, be_backend *be, be_weight *w, be_mat *grad, be_mat *grad2)
{
    float *host = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
    be->weight_get(be, w, host);
    params_add(p, host, grad, grad2, w);
}

static void params_add_lora(dpo_params *p, lora_adapter *ad, llama_grads *g)
{
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            if (!lora_host_A(ad, l, i)) continue;
            params_add(p, lora_host_A(ad, l, i), &g->layers[l].lora_A[i], NULL, NULL);
            params_add(p, lora_host_B(ad, l, i), &g->layers[l].lora_B[i], NULL, NULL);
        }
}

/* Every decoder weight: embeddings (with lm_head's gradient when tied),
 * final norm, lm_head, each layer's norms and linears. */
static void params_add_llama(dpo_params *p, llava_model *m, llama_grads *g)
{
    llama_decoder *lm = &m->lm;
    bool tied = lm->lm_head.data == lm->embed.data;
    params_add_weight(p, m->be, &lm->embed, &g->embed, tied ? &g->lm_head : NULL);
    params_add_weight(p, m->be, &lm->norm, &g->norm, NULL);
    if (!tied) params_add_weight(p, m->be, &lm->lm_head, &g->lm_head, NULL);
    for (int l = 0; l < lm->n_layers; l++) {
        llama_layer *L = &lm->layers[l];
        params_add_weight(p, m->be, &L->attn_norm, &g->layers[l].attn_norm, NULL);
        params_add_weight(p, m->be, &L->mlp_norm, &g->layers[l].mlp_norm, NULL);
        for (int i = 0; i < LL_N_LINEAR; i++)
            params_add_weight(p, m->be, (be_weight *)llama_layer_weight(L, i), &g->layers[l].w[i], NULL);
    }
}

/* Every wanted vision gradient's weight (the projector's, or all). */
static void params_add_vision(dpo_params *p, llava_model *m, vision_grads *vg)
{
    int cap = 9 + 16 * m->vision.n_layers;
    be_mat **gs = xmalloc(sizeof *gs * (size_t)cap);
    be_weight **ws = xmalloc(sizeof *ws * (size_t)cap);
    int n = vision_grad_weights(m, vg, gs, ws, cap);
    for (int i = 0; i < n; i++) params_add_weight(p, m->be, ws[i], gs[i], NULL);
    free(gs);
    free(ws);
}

static void params_alloc(dpo_params *p)
{
    p->grad = xcalloc((size_t)p->total + 1, sizeof(float));
    p->m = xcalloc((size_t)p->total + 1, sizeof(float));
    p->v = xcalloc((size_t)p->total + 1, sizeof(float));
    p->scratch = xcalloc((size_t)p->largest + 1, sizeof(float));
}

/* The trained tensor whose gradient is g, or NULL. */
static dpo_tensor *params_by_grad(dpo_params *p, const be_mat *g)
{
    for (int k = 0; g && k < p->n; k++)
        if (p->t[k].grad == g) return &p->t[k];
    return NULL;
}

static void params_free(dpo_params *p)
{
    for (int k = 0; k < p->n; k++)
        if (p->t[k].w) free(p->t[k].param);
    free(p->t);
    free(p->grad);
    free(p->m);
    free(p->v);
    free(p->scratch);
}

/* grad += weight * (the backend gradients) */
static void params_accumulate(dpo_params *p, be_backend *be, double weight)
{
    for (int k = 0; k < p->n; k++) {
        const dpo_tensor *t = &p->t[k];
        float *g = p->grad + t->off;
        be_mat *src[2] = {t->grad, t->grad2};
        for (int j = 0; j < 2 && src[j]; j++) {
            be->download(be, *src[j], p->scratch);
            for (int64_t i = 0; i < t->n; i++) g[i] += (float)(weight * p->scratch[i]);
        }
    }
}

/* Upload the master copies of the model weights (LoRA: lora_sync). */
static void params_upload(dpo_params *p, be_backend *be)
{
    for (int k = 0; k < p->n; k++)
        if (p->t[k].w) be->weight_set(be, p->t[k].w, p->t[k].param);
}

/* Sum a float vector over the ranks, in pieces MPI's int count can hold. */
static int allreduce_floats(float *v, int64_t n)
{
    for (int64_t off = 0; off < n; off += INT_MAX / 2) {
        int cnt = (int)(n - off < INT_MAX / 2 ? n - off : INT_MAX / 2);
        if (MPI_Allreduce(MPI_IN_PLACE, v + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return ERR("MPI_Allreduce of the gradients failed");
    }
    return 0;
}

static void params_adamw(dpo_params *p, const optim_adamw *o, int64_t t)
{
    for (int k = 0; k < p->n; k++) {
        const dpo_tensor *x = &p->t[k];
        optim_adamw_step(o, t, x->param, p->grad + x->off, p->m + x->off, p->v + x->off, x->n);
    }
}

/* --------------------------------------------------------- projector -- */

/* The projector's tensors, canonical names and weights in one order. */
static const char *const PROJ_NAME[4] = {
    "multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.bias",
    "multi_modal_projector.linear_2.weight", "multi_modal_projector.linear_2.bias"};

static be_weight *proj_weight(llava_model *m, int i)
{
    be_weight *w[4] = {&m->proj.l1, &m->proj.l1_b, &m->proj.l2, &m->proj.l2_b};
    return w[i];
}

/* ------------------------------------------------------------ trainer -- */

typedef struct {
    const dpo_args *a;
    tool_ctx *t;
    sess_model s;
    h5io_file prompts;
    dpo_data data;
    lora_adapter *ad;           /* NULL with --train all */
    llama_grads g;
    vision_grads vg;            /* the projector's (or, --train all, every) gradient */
    dpo_params p;
    dpo_opts opts;
    /* The projector when it is not the base model's: [4] master copies in
     * PROJ_NAME order (the trained params', or owned: an adapter's frozen
     * one); NULL when the base projector is used untouched. */
    float *proj[4];
    bool proj_owned;
    bool ref_once;              /* reference log-probs scored once, before training */
    int64_t global_batch, steps_per_epoch, total_steps;
    int64_t step;               /* steps done */
    int64_t *order, order_epoch;
    char key[17];               /* the run's identity */
    double t_start;             /* MPI_Wtime when this invocation's training began */
    int64_t step_start;         /* step at that time */
    double tokens_run, seconds_run; /* this invocation's steps: tokens, step time */
} trainer;

/* What one step measured, summed over the batch's pairs (then the means). */
enum { M_LOSS, M_RCHOSEN, M_RREJECTED, M_ACC, M_MARGIN, M_TOKENS, M_N };

typedef struct {
    double sum[M_N];
    double lr, grad_norm, seconds;
} step_metrics;

/* Pixels of the batch's images (each distinct row once); image[i] gets
 * item i's index among them (-1: none). */
static int batch_pixels(trainer *tr, const int64_t *items, int n, int *image, float **pixels,
                        int *n_img)
{
    int S = tr->s.m->cfg.vision.image_size;
    size_t per = (size_t)3 * S * S;
    int64_t *rows = xcalloc((size_t)n, sizeof *rows);
    *pixels = xmalloc(sizeof(float) * per * (size_t)n);
    *n_img = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t row = tr->data.image_row[items[i]];
        image[i] = -1;
        if (row < 0) continue;
        int k = 0;
        while (k < *n_img && rows[k] != row) k++;
        if (k == *n_img) {
            float *px = NULL;
            rc = prm_image_pixels(&tr->prompts, row, &tr->s.pc, tr->s.mode, &px);
            if (rc == 0 && !px) rc = ERR("image row %lld: no pixels", (long long)row);
            if (rc == 0) memcpy(*pixels + per * (size_t)k, px, sizeof(float) * per);
            free(px);
            rows[(*n_img)++] = row;
        }
        image[i] = k;
    }
    free(rows);
    return rc;
}

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
    memset(tr->p.grad, 0, sizeof(float) * (size_t)tr->p.total);
    double batch_w;
    int rc = run_my_share(tr, tr->step, m, &batch_w);
    tool_agree(tr->t, rc);
    rc = allreduce_floats(tr->p.grad, tr->p.total);
    if (rc == 0 && MPI_Allreduce(MPI_IN_PLACE, m->sum, M_N, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) !=
                       MPI_SUCCESS)
        rc = ERR("MPI_Allreduce of the step's metrics failed");
    tool_agree(tr->t, rc);
    for (int i = 0; i < M_TOKENS; i++) m->sum[i] /= batch_w;
    float *grads[1] = {tr->p.grad};
    int64_t sizes[1] = {tr->p.total};
    m->grad_norm = optim_clip(grads, sizes, 1, a->max_grad_norm);
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
    params_adamw(&tr->p, &o, tr->step + 1);
    if (tr->ad) lora_sync(tr->ad);
    params_upload(&tr->p, tr->s.be);
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

/* --------------------------------------------------------- checkpoint -- */

/* state.bin: a header, the parameters, the first and second AdamW moments
 * (float32, this machine's byte order, as the header's mark says), then the
 * reference log-probs scored before training (n_ref pairs: chosen, rejected
 * as doubles), if any. */
#define STATE_MAGIC "SIMADPOS"
#define STATE_VERSION 2
#define STATE_BOM 0x01020304u  /* reads 0x04030201 on the other byte order */

typedef struct {
    char magic[8];
    uint32_t version, bom, float_bytes, header_bytes;
    char key[16];           /* the run key, hex */
    int64_t step, total;    /* steps done; parameters */
    int64_t n_tensors, n_ref;
} state_header;

static int64_t state_size(const state_header *h)
{
    return (int64_t)sizeof *h + 3 * h->total * (int64_t)sizeof(float) + 2 * h->n_ref * (int64_t)sizeof(double);
}

static int write_bytes(FILE *f, const void *v, size_t size, int64_t n, const char *path)
{
    if (n > 0 && fwrite(v, size, (size_t)n, f) != (size_t)n)
        return err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    return 0;
}

static int64_t ref_count(const trainer *tr) { return tr->ref_once ? tr->data.n : 0; }

static int write_refs(FILE *f, const trainer *tr, const char *path)
{
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < ref_count(tr); i++) {
        double r[2] = {tr->data.pair[i].ref_chosen, tr->data.pair[i].ref_rejected};
        rc = write_bytes(f, r, sizeof(double), 2, path);
    }
    return rc;
}

static int state_write(const trainer *tr, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return err_errno_at(__FILE__, __LINE__, "%s: cannot create", path);
    state_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, STATE_MAGIC, 8);
    h.version = STATE_VERSION;
    h.bom = STATE_BOM;
    h.float_bytes = sizeof(float);
    h.header_bytes = sizeof h;
    memcpy(h.key, tr->key, 16);
    h.step = tr->step;
    h.total = tr->p.total;
    h.n_tensors = tr->p.n;
    h.n_ref = ref_count(tr);
    int rc = write_bytes(f, &h, sizeof h, 1, path);
    for (int k = 0; rc == 0 && k < tr->p.n; k++)
        rc = write_bytes(f, tr->p.t[k].param, sizeof(float), tr->p.t[k].n, path);
    if (rc == 0) rc = write_bytes(f, tr->p.m, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = write_bytes(f, tr->p.v, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = write_refs(f, tr, path);
    if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    if (fclose(f) != 0 && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    return rc;
}

static int read_bytes(FILE *f, void *v, size_t size, int64_t n, const char *path)
{
    if (n > 0 && fread(v, size, (size_t)n, f) != (size_t)n) return ERR("%s: truncated", path);
    return 0;
}

/* Is h a state header this build reads, and the file of its size? */
static int state_check(const state_header *h, int64_t file_size, const char *path)
{
    if (!memcmp(h->magic, "SIMADPO1", 8))
        return ERR("%s: a checkpoint of an older sima-dpo (no format version); start over with "
                   "--no-resume", path);
    if (memcmp(h->magic, STATE_MAGIC, 8) != 0) return ERR("%s: not a sima-dpo checkpoint", path);
    if (h->bom != STATE_BOM)
        return ERR("%s: written on a machine of another byte order (mark 0x%08x); start over "
                   "with --no-resume", path, (unsigned)h->bom);
    if (h->version != STATE_VERSION)
        return ERR("%s: checkpoint format version %u, this sima-dpo reads version %d", path,
                   (unsigned)h->version, STATE_VERSION);
    if (h->float_bytes != sizeof(float) || h->header_bytes != sizeof *h)
        return ERR("%s: header of %u bytes with %u-byte floats; expected %zu and %zu", path,
                   (unsigned)h->header_bytes, (unsigned)h->float_bytes, sizeof *h, sizeof(float));
    if (h->total < 0 || h->n_ref < 0 || h->step < 0 || state_size(h) != file_size)
        return ERR("%s: %lld bytes, the header describes %lld (truncated or corrupted)", path,
                   (long long)file_size, (long long)state_size(h));
    return 0;
}

/* Read and check a checkpoint's header; *found false when there is none. */
static int state_peek(const char *path, state_header *h, bool *found)
{
    *found = false;
    if (!fs_is_file(path)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    struct stat st;
    int rc = fstat(fileno(f), &st) == 0 ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot stat", path);
    memset(h, 0, sizeof *h);
    size_t want = rc == 0 && st.st_size < (off_t)sizeof *h ? (size_t)st.st_size : sizeof *h;
    if (rc == 0 && fread(h, 1, want, f) != want) rc = ERR("%s: cannot read", path);
    if (rc == 0 && want < sizeof *h && memcmp(h->magic, "SIMADPO1", 8) != 0)
        rc = ERR("%s: %lld bytes: too short for a sima-dpo checkpoint", path, (long long)st.st_size);
    if (rc == 0) rc = state_check(h, (int64_t)st.st_size, path);
    fclose(f);
    *found = rc == 0;
    return rc;
}

static int read_refs(FILE *f, trainer *tr, int64_t n_ref, const char *path)
{
    if (n_ref != ref_count(tr))
        return ERR("%s: %lld reference log-probs, this run scores %lld", path, (long long)n_ref,
                   (long long)ref_count(tr));
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < n_ref; i++) {
        double r[2];
        rc = read_bytes(f, r, sizeof(double), 2, path);
        tr->data.pair[i].ref_chosen = r[0];
        tr->data.pair[i].ref_rejected = r[1];
        tr->data.pair[i].has_ref = true;
    }
    return rc;
}

static int state_read(trainer *tr, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    state_header h;
    int rc = read_bytes(f, &h, sizeof h, 1, path);
    if (rc == 0 && (h.total != tr->p.total || h.n_tensors != tr->p.n))
        rc = ERR("%s: %lld parameters in %lld tensors, this run trains %lld in %d", path,
                 (long long)h.total, (long long)h.n_tensors, (long long)tr->p.total, tr->p.n);
    for (int k = 0; rc == 0 && k < tr->p.n; k++)
        rc = read_bytes(f, tr->p.t[k].param, sizeof(float), tr->p.t[k].n, path);
    if (rc == 0) rc = read_bytes(f, tr->p.m, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = read_bytes(f, tr->p.v, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = read_refs(f, tr, h.n_ref, path);
    fclose(f);
    if (rc == 0) tr->step = h.step;
    return rc;
}

/* rm -r of a folder we wrote (files and one level of subfolders). */
static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot open", dir);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = fs_join(dir, e->d_name);
        if (fs_is_dir(p)) rc = remove_tree(p);
        else if (unlink(p) != 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot remove", p);
        free(p);
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot remove", dir);
    return rc;
}

/* Put folder tmp in place of dst: dst -> dst.old, tmp -> dst, drop dst.old.
 * A crash between the renames leaves dst.old, which checkpoint_path finds. */
static int replace_dir(const char *tmp, const char *dst)
{
    char *old = NULL;
    if (asprintf(&old, "%s.old", dst) < 0) DIE("out of memory");
    int rc = remove_tree(old);
    if (rc == 0 && fs_is_dir(dst) && rename(dst, old) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename", dst);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", tmp, dst);
    if (rc == 0) rc = remove_tree(old);
    free(old);
    return rc;
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_errno_at(__FILE__, __LINE__, "%s: cannot create", dir);
    return 0;
}

/* The adapter folder: LoRA terms, and the projector when it is not the
 * base's (PEFT modules_to_save). */
static int save_adapter(const trainer *tr, const char *dir)
{
    int rc = lora_save_peft(tr->ad, dir, tr->a->model);
    if (rc != 0 || !tr->proj[0]) return rc;
    peft_module_tensor ts[4];
    for (int i = 0; i < 4; i++) {
        const be_weight *w = proj_weight(tr->s.m, i);
        ts[i] = (peft_module_tensor){PROJ_NAME[i], tr->proj[i], w->rows, w->cols};
    }
    return peft_add_module(dir, PEFT_PROJECTOR_MODULE, ts, 4);
}

/* Rank 0 writes OUT/checkpoint (atomically); collective. */
static void checkpoint_save(trainer *tr)
{
    int rc = 0;
    if (tr->t->rank == 0) {
        char *dir = fs_join(tr->a->out, "checkpoint"), *tmp = fs_join(tr->a->out, "checkpoint.tmp");
        char *adapter = fs_join(tmp, "adapter"), *state = fs_join(tmp, "state.bin");
        rc = remove_tree(tmp);
        if (rc == 0) rc = make_dir(tmp);
        if (rc == 0 && tr->ad) rc = save_adapter(tr, adapter);
        if (rc == 0) rc = state_write(tr, state);
        if (rc == 0) rc = replace_dir(tmp, dir);
        if (rc == 0) log_debug("checkpoint at step %lld", (long long)tr->step);
        free(dir);
        free(tmp);
        free(adapter);
        free(state);
    }
    tool_agree(tr->t, rc);
}

/* The checkpoint's state.bin: checkpoint/, else checkpoint.old/ (a crash
 * mid-replace); malloc'd. */
static char *checkpoint_state_path(const char *out)
{
    const char *dirs[] = {"checkpoint/state.bin", "checkpoint.old/state.bin"};
    for (int i = 0; i < 2; i++) {
        char *p = fs_join(out, dirs[i]);
        if (fs_is_file(p)) return p;
        free(p);
    }
    return fs_join(out, dirs[0]);
}

/* Resume when asked or (auto) when the checkpoint is of this run. */
static int maybe_resume(trainer *tr, bool *resumed)
{
    *resumed = false;
    if (tr->a->resume == 0) return 0;  /* the checkpoint, whatever it holds, is replaced */
    char *path = checkpoint_state_path(tr->a->out);
    state_header h;
    bool found;
    int rc = state_peek(path, &h, &found);
    if (rc == 0 && found && tr->a->resume != 0) {
        if (memcmp(h.key, tr->key, 16) != 0)
            rc = ERR("%s holds a checkpoint of a different run (other settings or inputs); "
                     "use --no-resume to start over", tr->a->out);
        else if (h.step > tr->total_steps)
            rc = ERR("%s: checkpoint at step %lld, past this run's %lld steps", path,
                     (long long)h.step, (long long)tr->total_steps);
        else
            rc = state_read(tr, path);
        if (rc == 0) {
            if (tr->ad) lora_sync(tr->ad);
            params_upload(&tr->p, tr->s.be);
            *resumed = true;
        }
    } else if (rc == 0 && !found && tr->a->resume == 1) {
        log_info("no checkpoint in %s: starting from step 0", tr->a->out);
    }
    free(path);
    return rc;
}

/* -------------------------------------------------------------- merge -- */

/* The trained weights (and a non-base projector) as overrides of the base
 * model's tensors; names malloc'd. */
static int model_overrides(trainer *tr, lora_override **out, int *n_out)
{
    st_set *set = NULL;
    if (st_open_dir(tr->a->model, &set) != 0) return -1;
    size_t n = st_count(set);
    lora_override *ov = xcalloc(n + 4, sizeof *ov);
    int k = 0;
    char canon[512];
    for (size_t i = 0; i < n; i++) {
        const char *name = st_at(set, i)->name;
        dpo_tensor *t = params_by_grad(&tr->p, train_grad_by_name(tr->s.m, &tr->g, &tr->vg, name));
        if (t && t->w && wt_canonical(name, canon, sizeof canon))
            ov[k++] = (lora_override){xstrdup(canon), t->param, t->n};
    }
    st_close(set);
    /* a projector loaded from an adapter and kept frozen */
    for (int i = 0; tr->proj_owned && i < 4; i++) {
        const be_weight *w = proj_weight(tr->s.m, i);
        ov[k++] = (lora_override){xstrdup(PROJ_NAME[i]), tr->proj[i], w->rows * w->cols};
    }
    *out = ov;
    *n_out = k;
    return 0;
}

/* Rank 0 writes OUT/<name> (atomically), the base model with the adapter
 * merged and the trained tensors in place; collective. */
static void write_model(trainer *tr, const char *name)
{
    int rc = 0;
    if (tr->t->rank == 0) {
        char *dir = fs_join(tr->a->out, name), *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", dir) < 0) DIE("out of memory");
        lora_override *ov = NULL;
        int n_ov = 0;
        rc = model_overrides(tr, &ov, &n_ov);
        if (rc == 0) rc = remove_tree(tmp);
        if (rc == 0) rc = make_dir(tmp);
        if (rc == 0) rc = lora_write_model(tr->ad, ov, n_ov, tr->a->model, tmp);
        if (rc == 0) rc = replace_dir(tmp, dir);
        if (rc == 0)
            log_info("wrote %s (%s, F32)", dir,
                     tr->ad ? "the model with the adapter merged" : "the trained model");
        for (int i = 0; i < n_ov; i++) free((void *)ov[i].name);
        free(ov);
        free(dir);
        free(tmp);
    }
    tool_agree(tr->t, rc);
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
    h5io_hex64(h5io_fnv1a(s, strlen(s), H5IO_FNV_INIT), tr->key);
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
    if (rc == 0) rc = sess_load(a->model, a->preprocess, &tr->s);
    if (rc == 0) rc = prm_open(&tr->prompts, a->prompts, &n_prompts);
    if (rc == 0 && a->mode == MODE_DPO) rc = data_load(a->pairs, &tr->data);
    if (rc == 0 && a->mode == MODE_SFT)
        rc = sft_data_load(&tr->prompts, a->prompts, n_prompts, a->template_name, &tr->s, &tr->data);
    if (rc == 0) rc = make_adapter(tr);
    return rc;
}

/* The projector tensors of --adapter into proj[4] (malloc'd); *found false
 * when the adapter has none. All four or none. */
static int adapter_projector(trainer *tr, float **proj, bool *found)
{
    *found = false;
    if (!tr->a->adapter) return 0;
    int have = 0, rc = 0;
    for (int i = 0; rc == 0 && i < 4; i++) {
        const be_weight *w = proj_weight(tr->s.m, i);
        bool f;
        proj[i] = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
        rc = peft_read_module_tensor(tr->a->adapter, PROJ_NAME[i], w->rows, w->cols, proj[i], &f);
        have += f;
    }
    if (rc == 0 && have != 0 && have != 4)
        rc = ERR("%s: the adapter holds %d of the projector's 4 tensors", tr->a->adapter, have);
    *found = rc == 0 && have == 4;
    if (!*found)
        for (int i = 0; i < 4; i++) {
            free(proj[i]);
            proj[i] = NULL;
        }
    return rc;
}

/* Gradients and the flat parameter vector of what is trained; an adapter's
 * projector put in place (trained or frozen). Call with the base model's
 * weights still untouched (the reference is scored before). */
static int setup_params(trainer *tr)
{
    llava_model *m = tr->s.m;
    const dpo_args *a = tr->a;
    memset(&tr->p, 0, sizeof tr->p);
    float *loaded[4] = {0};
    bool found;
    if (adapter_projector(tr, loaded, &found) != 0) return -1;
    if (a->train == TRAIN_ALL) {
        llama_grads_new(m, LLAMA_GRAD_WEIGHTS, &tr->g);
        vision_grads_new(m, &tr->vg);
        params_add_llama(&tr->p, m, &tr->g);
        params_add_vision(&tr->p, m, &tr->vg);
    } else {
        llama_grads_new(m, LLAMA_GRAD_LORA, &tr->g);
        params_add_lora(&tr->p, tr->ad, &tr->g);
        if (a->train == TRAIN_LORA_PROJECTOR) {
            vision_grads_new_projector(m, &tr->vg);
            int k0 = tr->p.n;
            params_add_vision(&tr->p, m, &tr->vg); /* l1, l1_b, l2, l2_b: PROJ_NAME's order */
            for (int i = 0; i < 4; i++) tr->proj[i] = tr->p.t[k0 + i].param;
        }
    }
    params_alloc(&tr->p);
    for (int i = 0; found && i < 4; i++) {
        be_weight *w = proj_weight(m, i);
        if (tr->proj[i]) {
            memcpy(tr->proj[i], loaded[i], sizeof(float) * (size_t)(w->rows * w->cols));
            free(loaded[i]);
        } else {
            tr->proj[i] = loaded[i];
            tr->proj_owned = true;
        }
        tr->s.be->weight_set(tr->s.be, w, tr->proj[i]);
    }
    if (found) log_info("%s: the adapter's projector %s", a->adapter,
                        a->train == TRAIN_LORA_PROJECTOR ? "(trained further)" : "(kept frozen)");
    return 0;
}

/* DPO scores the reference log-probs once, before training, wherever the
 * pairs file has none: once per pair instead of once per pair and epoch,
 * and the base model (adapter off, base projector) cannot be recovered
 * from the policy once the projector or the weights change. */
static bool need_ref_once(const trainer *tr)
{
    return tr->a->mode == MODE_DPO;
}

/* Pair i's reference log-probs, scored alone (so the values do not depend
 * on how pairs are spread over ranks), into r[0..1]. */
static int score_ref_pair(trainer *tr, int64_t i, double *r)
{
    const dpo_pair *q = &tr->data.pair[i];
    if (q->has_ref) {
        r[0] = q->ref_chosen;
        r[1] = q->ref_rejected;
        return 0;
    }
    int image;
    float *pixels = NULL;
    int n_img = 0;
    int rc = batch_pixels(tr, &i, 1, &image, &pixels, &n_img);
    train_seq seqs[2] = {{q->chosen, q->n_chosen, q->n_prompt, image, false, 0, 0},
                         {q->rejected, q->n_rejected, q->n_prompt, image, tr->opts.sima_rule, 0, 0}};
    train_pass p;
    if (rc == 0) rc = train_pass_run(tr->s.m, seqs, 2, pixels, n_img, TRAIN_SCORE_ONLY, &p);
    if (rc == 0) {
        r[0] = p.seq_logp[0];
        r[1] = p.seq_logp[1];
        train_pass_free(&p);
    }
    if (rc != 0) err_context("reference log-probs of pair %lld", (long long)i);
    free(pixels);
    return rc;
}

/* Every pair's reference log-probs with the base model: rank r scores the
 * r-th block of pairs, MPI_Allgatherv gives everyone all. Collective. */
static void score_references(trainer *tr)
{
    int size = tr->t->size, rank = tr->t->rank;
    int64_t n = tr->data.n;
    int *counts = xcalloc((size_t)size, sizeof *counts), *displs = xcalloc((size_t)size, sizeof *displs);
    for (int r = 0; r < size; r++) {
        int64_t b0 = n * r / size, b1 = n * (r + 1) / size;
        counts[r] = (int)(2 * (b1 - b0));
        displs[r] = (int)(2 * b0);
    }
    double *all = xcalloc((size_t)(2 * n + 1), sizeof *all);
    double t0 = MPI_Wtime();
    bool was = tr->s.m->lm.lora_off;
    tr->s.m->lm.lora_off = true;
    int rc = 0;
    for (int64_t i = n * rank / size; rc == 0 && i < n * (rank + 1) / size; i++)
        rc = score_ref_pair(tr, i, all + 2 * i);
    tr->s.m->lm.lora_off = was;
    tool_agree(tr->t, rc);
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, counts, displs, MPI_DOUBLE,
                       MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = ERR("MPI_Allgatherv of the reference log-probs failed");
    tool_agree(tr->t, rc);
    for (int64_t i = 0; i < n; i++) {
        tr->data.pair[i].ref_chosen = all[2 * i];
        tr->data.pair[i].ref_rejected = all[2 * i + 1];
        tr->data.pair[i].has_ref = true;
    }
    log_info("reference log-probs of %lld pairs scored with the base model in %.1f s", (long long)n,
             MPI_Wtime() - t0);
    free(all);
    free(counts);
    free(displs);
}

/* Will maybe_resume take the checkpoint (which then holds the references)? */
static bool checkpoint_resumable(trainer *tr)
{
    if (tr->a->resume == 0) return false;
    char *path = checkpoint_state_path(tr->a->out);
    state_header h;
    bool found;
    int rc = state_peek(path, &h, &found);
    free(path);
    err_clear();  /* maybe_resume reports what is wrong */
    return rc == 0 && found && !memcmp(h.key, tr->key, 16) && h.n_ref == tr->data.n;
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
