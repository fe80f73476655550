/* sima-prep-import.c — sima-prep import: read the input's records, share
 * the reading and checking of the images between the ranks, write the
 * report of skipped prompts and the sima.prompts file. */
#define _GNU_SOURCE
#include "sima-prep.h"

#include "err.h"
#include "hash.h"
#include "fs.h"
#include "h5io.h"
#include "image.h"
#include "log.h"
#include "strbuf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ============================================================ helpers === */

/* A growable array of int64. */
typedef struct {
    int64_t *v;
    size_t n, cap;
} i64s;

static void i64s_push(i64s *a, int64_t x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

static void i64s_free(i64s *a)
{
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* Collective over MPI_COMM_WORLD: true when rc == 0 on every rank. */
static bool all_ok(int rc)
{
    int bad = rc != 0, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return !any;
}

static int parse_count(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 1) return -1;
    *out = v;
    return 0;
}

/* Fields of the report are tab-separated: keep them on one line. */
static void report_put_field(strbuf *b, const char *s)
{
    for (; *s; s++) strbuf_putc(b, (*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s);
}

/* ====================================================== import: images === */

typedef enum { IMAGE_GOOD = 0, IMAGE_MISSING = 1, IMAGE_UNREADABLE = 2 } image_status;

/* The file of an image: NAME under ROOT, or NAME itself when absolute. */
static char *image_path(const char *root, const char *name)
{
    return name[0] == '/' ? xstrdup(name) : fs_join(root, name);
}

/* Read one image and check that it decodes. On success *data holds the
 * original bytes; otherwise why says what is wrong. */
static image_status load_image(const char *root, const char *name, char **data, size_t *len,
                               char *why, size_t why_n)
{
    char *path = image_path(root, name);
    image_status s = IMAGE_GOOD;
    struct stat st;
    *data = NULL;
    *len = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            snprintf(why, why_n, "missing: %s", path);
            s = IMAGE_MISSING;
        } else {
            snprintf(why, why_n, "unreadable: %s: %s", path, strerror(errno));
            s = IMAGE_UNREADABLE;
        }
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_n, "unreadable: %s: not a regular file", path);
        s = IMAGE_UNREADABLE;
    } else if (fs_read_all(path, data, len) != 0) {
        snprintf(why, why_n, "unreadable: %s", err_msg());
        s = IMAGE_UNREADABLE;
    } else {
        img_rgb8 im = {0};
        if (img_decode((const uint8_t *)*data, *len, path, &im) != 0) {
            snprintf(why, why_n, "unreadable: %s", err_msg());
            s = IMAGE_UNREADABLE;
            free(*data);
            *data = NULL;
            *len = 0;
        }
        img_free(&im);
    }
    err_clear();
    free(path);
    return s;
}

/* The images one rank reads: the r-th of `size` consecutive blocks of the
 * distinct images, so that the ranks' rows, in rank order, are in order of
 * first use. */
typedef struct {
    int64_t n;            /* distinct images, all ranks */
    int64_t lo, hi;       /* this rank's block [lo, hi) */
    int8_t *status;       /* [n] image_status, all ranks after the exchange */
    uint64_t *hash;       /* [n] FNV-1a of the bytes of good images */
    strbuf jpeg;          /* this rank's good images, concatenated */
    i64s jpeg_len;
    strbuf names;         /* and their names */
    i64s name_len;
    strbuf reasons;       /* "index\treason\n" per bad image of this rank */
    char **why;           /* [n] on rank 0 after the exchange: reason or NULL */
} image_block;

static void block_range(int64_t n, int rank, int size, int64_t *lo, int64_t *hi)
{
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

static void load_block(image_block *b, const char *root, char **names)
{
    for (int64_t i = b->lo; i < b->hi; i++) {
        char *data, why[1500];
        size_t len;
        image_status s = load_image(root, names[i - b->lo], &data, &len, why, sizeof why);
        b->status[i] = (int8_t)s;
        if (s != IMAGE_GOOD) {
            strbuf_printf(&b->reasons, "%" PRId64 "\t", i);
            report_put_field(&b->reasons, why);
            strbuf_putc(&b->reasons, '\n');
            continue;
        }
        b->hash[i] = hash_fnv1a(data, len, HASH_FNV_INIT);
        strbuf_put(&b->jpeg, data, len);
        i64s_push(&b->jpeg_len, (int64_t)len);
        strbuf_puts(&b->names, names[i - b->lo]);
        i64s_push(&b->name_len, (int64_t)strlen(names[i - b->lo]));
        free(data);
    }
}

/* Every rank learns the status and hash of every image; rank 0 also gets
 * the reasons of the bad ones, for the report. */
static void exchange_status(image_block *b, int rank, int size)
{
    int *counts = xmalloc((size_t)size * sizeof *counts);
    int *displs = xmalloc((size_t)size * sizeof *displs);
    for (int r = 0; r < size; r++) {
        int64_t lo, hi;
        block_range(b->n, r, size, &lo, &hi);
        counts[r] = (int)(hi - lo);
        displs[r] = (int)lo;
    }
    int mine = (int)(b->hi - b->lo);
    MPI_Allgatherv(MPI_IN_PLACE, mine, MPI_INT8_T, b->status, counts, displs, MPI_INT8_T,
                   MPI_COMM_WORLD);
    MPI_Allgatherv(MPI_IN_PLACE, mine, MPI_UINT64_T, b->hash, counts, displs, MPI_UINT64_T,
                   MPI_COMM_WORLD);

    int rlen = (int)b->reasons.len, total = 0;
    MPI_Gather(&rlen, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0)
        for (int r = 0; r < size; r++) {
            displs[r] = total;
            total += counts[r];
        }
    char *all = rank == 0 ? xmalloc((size_t)total + 1) : NULL;
    MPI_Gatherv(b->reasons.s ? b->reasons.s : "", rlen, MPI_CHAR, all, counts, displs,
                MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        all[total] = '\0';
        b->why = xcalloc((size_t)b->n + 1, sizeof *b->why);
        for (char *line = all, *next; *line; line = next) {
            char *nl = strchr(line, '\n');
            *nl = '\0';
            next = nl + 1;
            char *tab = strchr(line, '\t');
            int64_t i = strtoll(line, NULL, 10);
            if (tab && i >= 0 && i < b->n) b->why[i] = xstrdup(tab + 1);
        }
        free(all);
    }
    free(counts);
    free(displs);
}

static void image_block_free(image_block *b)
{
    free(b->status);
    free(b->hash);
    strbuf_free(&b->jpeg);
    i64s_free(&b->jpeg_len);
    strbuf_free(&b->names);
    i64s_free(&b->name_len);
    strbuf_free(&b->reasons);
    if (b->why)
        for (int64_t i = 0; i < b->n; i++) free(b->why[i]);
    free(b->why);
}

/* ============================================== import: output and report === */

typedef struct {
    const char *input, *image_root, *out;
    char *report;
    input_format format;
    long long limit;
} import_opts;

/* The prompts that remain, as ragged columns (rank 0 only). */
typedef struct {
    int64_t n;
    strbuf id, question, truth;
    i64s id_len, question_len, truth_len;
    i64s image; /* row in /images or -1 */
} prompt_rows;

static void prompt_rows_free(prompt_rows *r)
{
    strbuf_free(&r->id);
    strbuf_free(&r->question);
    strbuf_free(&r->truth);
    i64s_free(&r->id_len);
    i64s_free(&r->question_len);
    i64s_free(&r->truth_len);
    i64s_free(&r->image);
}

/* Keep the prompts whose image is good; an image's row in /images is its
 * rank among the good images (every good image has at least one prompt). */
static int64_t keep_prompts(const prompt_list *all, const image_block *b, prompt_rows *kept)
{
    int64_t *row = xmalloc(((size_t)b->n + 1) * sizeof *row);
    int64_t good = 0;
    for (int64_t i = 0; i < b->n; i++) row[i] = b->status[i] == IMAGE_GOOD ? good++ : -1;
    int64_t skipped = 0;
    for (size_t i = 0; i < all->n; i++) {
        const prompt *p = &all->v[i];
        if (p->image >= 0 && row[p->image] < 0) {
            skipped++;
            continue;
        }
        strbuf_puts(&kept->id, p->id);
        i64s_push(&kept->id_len, (int64_t)strlen(p->id));
        strbuf_puts(&kept->question, p->question);
        i64s_push(&kept->question_len, (int64_t)strlen(p->question));
        strbuf_puts(&kept->truth, p->truth);
        i64s_push(&kept->truth_len, (int64_t)strlen(p->truth));
        i64s_push(&kept->image, p->image >= 0 ? row[p->image] : -1);
        kept->n++;
    }
    free(row);
    return skipped;
}


/* The report: a short header, then one tab-separated line per skipped
 * prompt (record, line, id, image as given, reason). */
static int write_report(const import_opts *o, input_format format, const prompt_list *all,
                        const image_set *images, const image_block *b, int64_t n_kept,
                        int64_t n_skipped)
{
    strbuf r = {0};
    strbuf_printf(&r, "# sima-prep import report\n# input: %s (format %s), image root: %s\n",
                  o->input, format_name(format), o->image_root);
    strbuf_printf(&r, "# records read: %zu, prompts kept: %" PRId64 ", skipped: %" PRId64
                  " (missing or unreadable image)\n", all->n, n_kept, n_skipped);
    strbuf_puts(&r, "record\tline\tid\timage\treason\n");
    for (size_t i = 0; i < all->n; i++) {
        const prompt *p = &all->v[i];
        if (p->image < 0 || b->status[p->image] == IMAGE_GOOD) continue;
        strbuf_printf(&r, "%ld\t%ld\t", p->record, p->line);
        report_put_field(&r, p->id);
        strbuf_putc(&r, '\t');
        report_put_field(&r, images->names[p->image]);
        strbuf_putc(&r, '\t');
        report_put_field(&r, b->why[p->image] ? b->why[p->image] : "unreadable");
        strbuf_putc(&r, '\n');
    }
    int rc = fs_write_atomic(o->report, r.s, r.len);
    strbuf_free(&r);
    return rc;
}

/* Digest of everything that determines the file: the input's bytes, the
 * options that select records, and each image's name, status and bytes. */
static void import_run_key(uint64_t input_hash, const import_opts *o, input_format format,
                           const image_set *images, const image_block *b, char key[17])
{
    char opts[64];
    snprintf(opts, sizeof opts, "format=%s limit=%lld", format_name(format), o->limit);
    uint64_t h = hash_fnv1a(&input_hash, sizeof input_hash, HASH_FNV_INIT);
    h = hash_fnv1a(opts, strlen(opts), h);
    for (size_t i = 0; i < images->n; i++) {
        h = hash_fnv1a(images->names[i], strlen(images->names[i]) + 1, h);
        h = hash_fnv1a(&b->status[i], 1, h);
        h = hash_fnv1a(&b->hash[i], sizeof b->hash[i], h);
    }
    h5io_hex64(h, key);
}

static const void *nonnull(const void *p) { return p ? p : ""; }

/* Write prompts.h5 (collective): rank 0 the prompt rows, every rank its
 * block of images. Returns this rank's own result; any failure anywhere
 * abandons the file on every rank. */
static int write_prompts_file(const import_opts *o, const tool_ctx *t, const prompt_rows *kept,
                              const image_block *b, int64_t n_skipped, const char *run_key)
{
    const char *inputs[2] = {o->input, o->image_root};
    h5io_provenance prov = {.tool = "sima-prep", .schema = "sima.prompts", .schema_version = 1,
                            .argc = t->argc, .argv = t->argv, .inputs = inputs, .n_inputs = 2,
                            .model_dir = NULL, .model_hash = NULL, .seed = -1,
                            .run_key = run_key};
    int64_t n_img = (int64_t)b->jpeg_len.n;
    h5io_file f;
    int rc = h5io_create(&f, o->out, MPI_COMM_WORLD);
    if (!all_ok(rc)) return rc;
#define STEP(call)                                                                 \
    do {                                                                           \
        if (rc == 0) rc = (call);                                                  \
        if (!all_ok(rc)) goto fail;                                                \
    } while (0)
    STEP(h5io_group(&f, "/prompts"));
    STEP(h5io_group(&f, "/images"));
    STEP(h5io_write_ragged(&f, "/prompts/id", H5IO_TEXT, kept->n, nonnull(kept->id_len.v),
                           nonnull(kept->id.s)));
    STEP(h5io_write_ragged(&f, "/prompts/question", H5IO_TEXT, kept->n,
                           nonnull(kept->question_len.v), nonnull(kept->question.s)));
    STEP(h5io_write_ragged(&f, "/prompts/ground_truth", H5IO_TEXT, kept->n,
                           nonnull(kept->truth_len.v), nonnull(kept->truth.s)));
    STEP(h5io_write_column(&f, "/prompts/image", H5IO_I64, kept->n, 1,
                           nonnull(kept->image.v)));
    STEP(h5io_write_ragged(&f, "/images/name", H5IO_TEXT, n_img, nonnull(b->name_len.v),
                           nonnull(b->names.s)));
    STEP(h5io_write_ragged(&f, "/images/jpeg", H5IO_U8, n_img, nonnull(b->jpeg_len.v),
                           nonnull(b->jpeg.s)));
    STEP(h5io_write_provenance(&f, &prov));
    STEP(h5io_set_attr_i64(&f, "/", "n_skipped", n_skipped));
#undef STEP
    return h5io_commit(&f);
fail:
    h5io_abandon(&f);
    return rc;
}

/* Rank 0: parse the whole input into st. */
static int read_input(const import_opts *o, import_state *st, uint64_t *input_hash)
{
    char *buf;
    size_t len;
    if (fs_read_all(o->input, &buf, &len) != 0) return -1;
    *input_hash = hash_fnv1a(buf, len, HASH_FNV_INIT);
    int rc = read_records(o->input, buf, len, add_record, st);
    free(buf);
    if (rc == 0 && st->prompts.n == 0) rc = ERR("%s: no records", o->input);
    if (rc == 0 && st->images.n > INT_MAX) rc = ERR("%s: more than %d images", o->input, INT_MAX);
    return rc;
}

/* Every rank gets the names of all distinct images (NUL-separated, in order
 * of first use) from rank 0; names[i] points into *blob. */
static void share_image_names(const tool_ctx *t, const image_set *images, int64_t *n,
                              strbuf *blob, char ***names)
{
    if (t->rank == 0) {
        *n = (int64_t)images->n;
        for (size_t i = 0; i < images->n; i++)
            strbuf_put(blob, images->names[i], strlen(images->names[i]) + 1);
    }
    int rc = t->rank == 0 && blob->len > INT_MAX ? ERR("image names: more than 2 GB") : 0;
    tool_agree((tool_ctx *)t, rc);
    int64_t len = (int64_t)blob->len;
    MPI_Bcast(n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(&len, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (t->rank != 0) {
        blob->s = xmalloc((size_t)len + 1);
        blob->len = blob->cap = (size_t)len;
    }
    MPI_Bcast(blob->s ? blob->s : "", (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    *names = xmalloc(((size_t)*n + 1) * sizeof **names);
    size_t at = 0;
    for (int64_t i = 0; i < *n; i++) {
        (*names)[i] = blob->s + at;
        at += strlen(blob->s + at) + 1;
    }
}

static void import_usage_check(tool_ctx *t, const import_opts *o)
{
    int rc = 0;
    if (t->rank == 0) {
        char *out_dir = fs_dir_of(o->out);
        if (!fs_is_dir(o->image_root))
            rc = ERR("%s: image root is not a folder", o->image_root);
        else if (!fs_is_dir(out_dir))
            rc = ERR("%s: the output's folder %s does not exist", o->out, out_dir);
        free(out_dir);
    }
    tool_agree(t, rc);
}

static void parse_import_options(tool_ctx *t, int argc, char **argv, import_opts *o)
{
    static struct option opts[] = {TOOL_COMMON_OPTIONS,
                                   {"format", required_argument, 0, 'f'},
                                   {"image-root", required_argument, 0, 'i'},
                                   {"out", required_argument, 0, 'o'},
                                   {"report", required_argument, 0, 'r'},
                                   {"limit", required_argument, 0, 'n'},
                                   {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    const char *report = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhVo:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        switch (c) {
        case 'f':
            if (!strcmp(optarg, "llava")) o->format = FMT_LLAVA;
            else if (!strcmp(optarg, "sima")) o->format = FMT_SIMA;
            else if (!strcmp(optarg, "auto")) o->format = FMT_AUTO;
            else tool_usage_error(t, "--format: expected llava, sima or auto, got '%s'", optarg);
            break;
        case 'i': o->image_root = optarg; break;
        case 'o': o->out = optarg; break;
        case 'r': report = optarg; break;
        case 'n':
            if (parse_count(optarg, &o->limit) != 0)
                tool_usage_error(t, "--limit: expected a positive count, got '%s'", optarg);
            break;
        default: bad_option(t, c, "import", argv);
        }
    }
    if (optind != argc - 1)
        tool_usage_error(t, "'import' takes one input file (LLaVA .json/.jsonl or SIMA .jsonl)");
    o->input = argv[optind];
    if (!o->out) tool_usage_error(t, "'import' needs --out prompts.h5");
    if (!o->image_root) tool_usage_error(t, "'import' needs --image-root DIR");
    if (report) {
        o->report = xstrdup(report);
    } else {
        size_t n = strlen(o->out) + sizeof ".report.txt";
        o->report = xmalloc(n);
        snprintf(o->report, n, "%s.report.txt", o->out);
    }
}

int cmd_import(tool_ctx *t, int argc, char **argv)
{
    import_opts o;
    parse_import_options(t, argc, argv, &o);
    import_usage_check(t, &o);

    /* rank 0 parses the input */
    import_state st = {.format = o.format, .limit = o.limit};
    uint64_t input_hash = 0;
    tool_agree(t, t->rank == 0 ? read_input(&o, &st, &input_hash) : 0);

    /* all ranks read and check their block of images */
    image_block b = {0};
    strbuf blob = {0};
    char **names = NULL;
    share_image_names(t, &st.images, &b.n, &blob, &names);
    block_range(b.n, t->rank, t->size, &b.lo, &b.hi);
    b.status = xcalloc((size_t)b.n + 1, sizeof *b.status);
    b.hash = xcalloc((size_t)b.n + 1, sizeof *b.hash);
    load_block(&b, o.image_root, names + b.lo);
    exchange_status(&b, t->rank, t->size);

    /* rank 0 drops the prompts with bad images and writes the report */
    prompt_rows kept = {0};
    int64_t n_skipped = 0;
    char run_key[17] = "";
    int rc = 0;
    if (t->rank == 0) {
        n_skipped = keep_prompts(&st.prompts, &b, &kept);
        import_run_key(input_hash, &o, st.format, &st.images, &b, run_key);
        rc = write_report(&o, st.format, &st.prompts, &st.images, &b, kept.n, n_skipped);
        if (rc == 0 && kept.n == 0)
            rc = ERR("%s: nothing usable: all %" PRId64 " prompts have a missing or unreadable "
                     "image (listed in %s)", o.input, n_skipped, o.report);
    }
    tool_agree(t, rc);
    MPI_Bcast(&n_skipped, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(run_key, sizeof run_key, MPI_CHAR, 0, MPI_COMM_WORLD);

    tool_agree(t, write_prompts_file(&o, t, &kept, &b, n_skipped, run_key));
    if (t->rank == 0) {
        int64_t text_only = 0, n_images = 0;
        for (size_t i = 0; i < kept.image.n; i++) text_only += kept.image.v[i] < 0;
        for (int64_t i = 0; i < b.n; i++) n_images += b.status[i] == IMAGE_GOOD;
        if (n_skipped)
            log_warn("skipped %" PRId64 " of %zu prompts for a missing or unreadable image "
                     "(listed in %s)", n_skipped, st.prompts.n, o.report);
        log_info("wrote %s: %" PRId64 " prompts (%" PRId64 " text-only), %" PRId64
                 " images, format %s", o.out, kept.n, text_only, n_images,
                 format_name(st.format));
    }
    prompt_rows_free(&kept);
    image_block_free(&b);
    free(names);
    strbuf_free(&blob);
    prompts_free(&st.prompts);
    image_set_free(&st.images);
    free(o.report);
    return TOOL_OK;
}

