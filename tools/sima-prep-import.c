/* sima-prep-import.c — sima-prep import: check the input's records, share
 * the reading and checking of the images between the ranks a round at a
 * time (each round's good images written at once, so a rank holds one
 * round's bytes), then read the records again to write the prompt rows and
 * the report of skipped prompts a round at a time. The file is the same for
 * any number of ranks. */
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
#include <unistd.h>

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

/* ======================================================== import: output === */

typedef struct {
    const char *input, *image_root, *out;
    char *report;
    input_format format;
    long long limit;
} import_opts;

/* What rank 0 learns of the distinct images: status, hash of the bytes,
 * the reason a bad one is bad (for the report), the row of a good one in
 * /images. 17 bytes an image, and the reasons of the bad ones. */
typedef struct {
    int64_t n, n_good;
    int8_t *status;     /* [n] image_status */
    uint64_t *hash;     /* [n] FNV-1a of a good image's bytes */
    char **why;         /* [n] reason or NULL */
    int64_t *row;       /* [n] row in /images, -1 for a bad image */
} image_results;

static void image_results_free(image_results *r)
{
    for (int64_t i = 0; r->why && i < r->n; i++) free(r->why[i]);
    free(r->why);
    free(r->status);
    free(r->hash);
    free(r->row);
}

static void block_range(int64_t n, int rank, int size, int64_t *lo, int64_t *hi)
{
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

/* The image bytes a rank holds in a round: each round has as many images
 * per rank as the last one's fullest rank shows will come to about
 * ROUND_BYTES (between ROUND_IMAGES_MIN and ROUND_IMAGES_MAX), so a round
 * costs the same memory whatever the images' size, and small images do not
 * make many rounds (each is a few collective writes). */
#define ROUND_BYTES ((int64_t)32 << 20)
#define ROUND_IMAGES_MIN 64
#define ROUND_IMAGES_MAX 16384

static int64_t next_round_images(int64_t per_rank, int64_t max_bytes)
{
    double n = max_bytes > 0 ? (double)per_rank * (double)ROUND_BYTES / (double)max_bytes
                             : (double)ROUND_IMAGES_MAX;
    return n < ROUND_IMAGES_MIN ? ROUND_IMAGES_MIN : n > ROUND_IMAGES_MAX ? ROUND_IMAGES_MAX
                                                                          : (int64_t)n;
}

/* Collective: whether rc is 0 on every rank, and the most bytes a rank held. */
static bool round_ok(int rc, int64_t bytes, int64_t *max_bytes)
{
    int64_t v[2] = {rc != 0, bytes};
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    *max_bytes = v[1];
    return v[0] == 0;
}

/* This rank's images of a round: the good ones' bytes and names, every
 * one's status and hash, the reasons of the bad ones ("index\treason\n"). */
typedef struct {
    strbuf jpeg, names, reasons;
    i64s jpeg_len, name_len;
    int8_t *status;
    uint64_t *hash;
} round_images;

static void round_images_free(round_images *b)
{
    strbuf_free(&b->jpeg);
    strbuf_free(&b->names);
    strbuf_free(&b->reasons);
    i64s_free(&b->jpeg_len);
    i64s_free(&b->name_len);
    free(b->status);
    free(b->hash);
}

/* Load images [lo, hi) (names[0] is image lo's) and check that they decode. */
static void load_images(round_images *b, const char *root, const char *names, int64_t lo,
                        int64_t hi)
{
    b->status = xcalloc((size_t)(hi - lo) + 1, 1);
    b->hash = xcalloc((size_t)(hi - lo) + 1, sizeof *b->hash);
    for (int64_t i = lo; i < hi; i++, names += strlen(names) + 1) {
        char *data, why[1500];
        size_t len;
        image_status s = load_image(root, names, &data, &len, why, sizeof why);
        b->status[i - lo] = (int8_t)s;
        if (s != IMAGE_GOOD) {
            strbuf_printf(&b->reasons, "%" PRId64 "\t", i);
            report_put_field(&b->reasons, why);
            strbuf_putc(&b->reasons, '\n');
            continue;
        }
        b->hash[i - lo] = hash_fnv1a(data, len, HASH_FNV_INIT);
        strbuf_put(&b->jpeg, data, len);
        i64s_push(&b->jpeg_len, (int64_t)len);
        strbuf_puts(&b->names, names);
        i64s_push(&b->name_len, (int64_t)strlen(names));
        free(data);
    }
}

/* Every rank gets the names of images [lo, hi) from rank 0, NUL-separated
 * (malloc'd). */
static char *share_round_names(const tool_ctx *t, const image_set *set, int64_t lo, int64_t hi)
{
    strbuf blob = {0};
    if (t->rank == 0)
        for (int64_t i = lo; i < hi; i++)
            strbuf_put(&blob, set->names[i], strlen(set->names[i]) + 1);
    int64_t len = (int64_t)blob.len;
    MPI_Bcast(&len, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (t->rank != 0) {
        blob.s = xmalloc((size_t)len + 1);
        blob.len = blob.cap = (size_t)len;
    }
    MPI_Bcast(blob.s ? blob.s : "", (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    return blob.s ? blob.s : xstrdup("");
}

/* Rank 0 gathers a round's statuses, hashes and reasons (images [lo, hi),
 * rank r's block after rank r-1's). */
static void gather_round(const tool_ctx *t, const round_images *b, int64_t lo, int64_t hi,
                         image_results *res)
{
    int *counts = xmalloc((size_t)t->size * sizeof *counts);
    int *displs = xmalloc((size_t)t->size * sizeof *displs);
    for (int r = 0; r < t->size; r++) {
        int64_t a, z;
        block_range(hi - lo, r, t->size, &a, &z);
        counts[r] = (int)(z - a);
        displs[r] = (int)a;
    }
    int mine = counts[t->rank];
    MPI_Gatherv(b->status, mine, MPI_INT8_T, res->status + lo, counts, displs, MPI_INT8_T, 0,
                MPI_COMM_WORLD);
    MPI_Gatherv(b->hash, mine, MPI_UINT64_T, res->hash + lo, counts, displs, MPI_UINT64_T, 0,
                MPI_COMM_WORLD);
    int rlen = (int)b->reasons.len, total = 0;
    MPI_Gather(&rlen, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    for (int r = 0; t->rank == 0 && r < t->size; r++) {
        displs[r] = total;
        total += counts[r];
    }
    char *all = t->rank == 0 ? xmalloc((size_t)total + 1) : NULL;
    MPI_Gatherv(b->reasons.s ? b->reasons.s : "", rlen, MPI_CHAR, all, counts, displs, MPI_CHAR,
                0, MPI_COMM_WORLD);
    if (t->rank == 0) {
        all[total] = '\0';
        for (char *line = all, *next; *line; line = next) {
            char *nl = strchr(line, '\n');
            *nl = '\0';
            next = nl + 1;
            char *tab = strchr(line, '\t');
            int64_t i = strtoll(line, NULL, 10);
            if (tab && i >= 0 && i < res->n) res->why[i] = xstrdup(tab + 1);
        }
    }
    free(all);
    free(counts);
    free(displs);
}

/* Every image, a round at a time (ROUND_BYTES): each rank reads and checks
 * its block of the round, the round's good images go to /images at once,
 * rank 0 learns how each went (collective). Returns this rank's result;
 * *failed when any rank failed. */
static int check_and_write_images(const tool_ctx *t, const import_opts *o, const image_set *set,
                                  h5io_file *f, image_results *res, bool *failed)
{
    MPI_Bcast(&res->n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (t->rank == 0) {
        res->status = xcalloc((size_t)res->n + 1, 1);
        res->hash = xcalloc((size_t)res->n + 1, sizeof *res->hash);
        res->why = xcalloc((size_t)res->n + 1, sizeof *res->why);
    }
    h5io_stream names = {.data = -1, .offsets = -1}, jpeg = {.data = -1, .offsets = -1};
    int rc = h5io_stream_ragged(f, "/images/name", H5IO_TEXT, H5IO_GROWING, H5IO_GROWING, &names);
    if (rc == 0)
        rc = h5io_stream_ragged(f, "/images/jpeg", H5IO_U8, H5IO_GROWING, H5IO_GROWING, &jpeg);
    *failed = !all_ok(rc);
    int64_t per_rank = ROUND_IMAGES_MIN;
    for (int64_t lo = 0, hi; !*failed && lo < res->n; lo = hi) {
        int64_t b0, b1, max_bytes;
        hi = lo + per_rank * t->size < res->n ? lo + per_rank * t->size : res->n;
        char *round_names = share_round_names(t, set, lo, hi), *mine = round_names;
        block_range(hi - lo, t->rank, t->size, &b0, &b1);
        for (int64_t i = 0; i < b0; i++) mine += strlen(mine) + 1;
        round_images b = {0};
        load_images(&b, o->image_root, mine, lo + b0, lo + b1);
        int64_t n_good = (int64_t)b.jpeg_len.n;
        rc = h5io_stream_put(&names, n_good, b.name_len.v, b.names.s);
        if (rc == 0) rc = h5io_stream_put(&jpeg, n_good, b.jpeg_len.v, b.jpeg.s);
        *failed = !round_ok(rc, (int64_t)b.jpeg.len, &max_bytes);
        per_rank = next_round_images(per_rank, max_bytes);
        gather_round(t, &b, lo, hi, res);
        round_images_free(&b);
        free(round_names);
    }
    int end = h5io_stream_end(&names), end2 = h5io_stream_end(&jpeg);
    if (!*failed && rc == 0) rc = end ? end : end2;
    if (!*failed) *failed = !all_ok(rc);
    return rc;
}

/* Rank 0: the rows of the good images in /images (in order), and how many
 * prompts are kept and skipped. */
static void image_rows(image_results *res, const import_state *st, int64_t *kept,
                       int64_t *skipped)
{
    res->row = xmalloc(((size_t)res->n + 1) * sizeof *res->row);
    *kept = st->text_only;
    *skipped = 0;
    for (int64_t i = 0; i < res->n; i++) {
        bool good = res->status[i] == IMAGE_GOOD;
        res->row[i] = good ? res->n_good++ : -1;
        *(good ? kept : skipped) += st->images.uses[i];
    }
}

/* Digest of everything that determines the file: the input's bytes, the
 * options that select records, and each image's name, status and bytes. */
static void import_run_key(uint64_t input_hash, const import_opts *o, input_format format,
                           const image_set *images, const image_results *res, char key[17])
{
    char opts[64];
    snprintf(opts, sizeof opts, "format=%s limit=%lld", format_name(format), o->limit);
    uint64_t h = hash_fnv1a(&input_hash, sizeof input_hash, HASH_FNV_INIT);
    h = hash_fnv1a(opts, strlen(opts), h);
    for (size_t i = 0; i < images->n; i++) {
        h = hash_fnv1a(images->names[i], strlen(images->names[i]) + 1, h);
        h = hash_fnv1a(&res->status[i], 1, h);
        h = hash_fnv1a(&res->hash[i], sizeof res->hash[i], h);
    }
    h5io_hex64(h, key);
}

/* ---------------------------------------------------------- the report -- */

/* The report, written as the prompts are read again: a short header, then
 * one tab-separated line per skipped prompt (record, line, id, image as
 * given, reason); renamed into place at the end. */
typedef struct {
    FILE *fp;
    char *tmp;
    const char *path;
} report_file;

static int report_open(report_file *r, const import_opts *o, input_format format, long records,
                       int64_t kept, int64_t skipped)
{
    r->path = o->report;
    size_t n = strlen(o->report) + 5;
    r->tmp = xmalloc(n);
    snprintf(r->tmp, n, "%s.tmp", o->report);
    r->fp = fopen(r->tmp, "w");
    CHECK_IO(r->fp, "%s: cannot create", r->tmp);
    fprintf(r->fp, "# sima-prep import report\n# input: %s (format %s), image root: %s\n",
            o->input, format_name(format), o->image_root);
    fprintf(r->fp, "# records read: %ld, prompts kept: %" PRId64 ", skipped: %" PRId64
            " (missing or unreadable image)\n", records, kept, skipped);
    fputs("record\tline\tid\timage\treason\n", r->fp);
    return 0;
}

static void report_skipped(report_file *r, const prompt *p, const char *image, const char *why)
{
    strbuf line = {0};
    strbuf_printf(&line, "%ld\t%ld\t", p->record, p->line);
    report_put_field(&line, p->id);
    strbuf_putc(&line, '\t');
    report_put_field(&line, image);
    strbuf_putc(&line, '\t');
    report_put_field(&line, why ? why : "unreadable");
    strbuf_putc(&line, '\n');
    fwrite(line.s, 1, line.len, r->fp);
    strbuf_free(&line);
}

/* Close and rename into place; on failure (or rc != 0) remove it. */
static int report_close(report_file *r, int rc)
{
    if (r->fp) {
        bool bad = ferror(r->fp) != 0;
        if (fclose(r->fp) != 0) bad = true;
        if (bad && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: write failed", r->tmp);
        if (rc == 0 && rename(r->tmp, r->path) != 0)
            rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", r->tmp, r->path);
        if (rc != 0) unlink(r->tmp);
    }
    free(r->tmp);
    memset(r, 0, sizeof *r);
    return rc;
}

/* ------------------------------------------------------ the prompt rows -- */

/* A round of prompt rows: at most this many rows or text bytes. */
#define PROMPTS_PER_ROUND 65536
#define PROMPT_ROUND_BYTES ((size_t)8 << 20)

/* Kept prompts waiting for the next round (rank 0; others put none). */
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
    memset(r, 0, sizeof *r);
}

/* The /prompts columns, written a round at a time. */
enum { COL_ID, COL_QUESTION, COL_TRUTH, COL_IMAGE, N_PROMPT_COLS };

static int begin_prompt_columns(h5io_file *f, h5io_stream *s)
{
    static const char *const text[] = {"/prompts/id", "/prompts/question", "/prompts/ground_truth"};
    int rc = 0;
    for (int i = 0; rc == 0 && i < COL_IMAGE; i++)
        rc = h5io_stream_ragged(f, text[i], H5IO_TEXT, H5IO_GROWING, H5IO_GROWING, &s[i]);
    if (rc == 0)
        rc = h5io_stream_column(f, "/prompts/image", H5IO_I64, 1, H5IO_GROWING, &s[COL_IMAGE]);
    return rc;
}

static int end_prompt_columns(h5io_stream *s)
{
    int rc = 0;
    for (int i = 0; i < N_PROMPT_COLS; i++) {
        int end = h5io_stream_end(&s[i]);
        if (rc == 0) rc = end;
    }
    return rc;
}

/* Collective: every rank puts its rows (rank 0's, the others none). */
static int put_prompt_rows(h5io_stream *s, const prompt_rows *r)
{
    int rc = h5io_stream_put(&s[COL_ID], r->n, r->id_len.v, r->id.s);
    if (rc == 0) rc = h5io_stream_put(&s[COL_QUESTION], r->n, r->question_len.v, r->question.s);
    if (rc == 0) rc = h5io_stream_put(&s[COL_TRUTH], r->n, r->truth_len.v, r->truth.s);
    if (rc == 0) rc = h5io_stream_put(&s[COL_IMAGE], r->n, NULL, r->image.v);
    return rc;
}

/* The rounds of prompt rows: rank 0 announces each (ROUND), then every
 * rank puts; DONE or FAILED ends them. */
enum { ROUND_DONE = 0, ROUND = 1, ROUND_FAILED = -1 };

/* Rank 0's second reading of the input. */
typedef struct {
    const image_set *set;
    const image_results *res;
    report_file *report;
    h5io_stream *cols;
    prompt_rows rows;
    bool failed;        /* a round failed on some rank (all know it) */
} emit_state;

/* Rank 0: announce a round, put the rows, agree on the result. */
static int flush_round(emit_state *e)
{
    int cmd = ROUND;
    MPI_Bcast(&cmd, 1, MPI_INT, 0, MPI_COMM_WORLD);
    int rc = put_prompt_rows(e->cols, &e->rows);
    e->failed = !all_ok(rc);
    prompt_rows_free(&e->rows);
    if (e->failed && rc == 0) rc = ERR("writing the prompt rows failed on another rank");
    return e->failed ? rc : 0;
}

/* The emit of import_state: a skipped prompt to the report, a kept one to
 * the next round. */
static int emit_prompt_row(const prompt *p, void *ctx)
{
    emit_state *e = ctx;
    if (p->image >= 0 && e->res->row[p->image] < 0) {
        report_skipped(e->report, p, e->set->names[p->image], e->res->why[p->image]);
        return 0;
    }
    prompt_rows *r = &e->rows;
    strbuf_puts(&r->id, p->id);
    i64s_push(&r->id_len, (int64_t)strlen(p->id));
    strbuf_puts(&r->question, p->question);
    i64s_push(&r->question_len, (int64_t)strlen(p->question));
    strbuf_puts(&r->truth, p->truth);
    i64s_push(&r->truth_len, (int64_t)strlen(p->truth));
    i64s_push(&r->image, p->image >= 0 ? e->res->row[p->image] : -1);
    bool full = ++r->n == PROMPTS_PER_ROUND ||
                r->id.len + r->question.len + r->truth.len >= PROMPT_ROUND_BYTES;
    return full ? flush_round(e) : 0;
}

/* Rank 0: read the input again, emitting each prompt; the last round, then
 * the end of the rounds. */
static int emit_prompts(import_state *st, input_map *map, emit_state *e)
{
    st->records = 0;
    st->emit = emit_prompt_row;
    st->emit_ctx = e;
    int rc = read_records(map->path, map->buf ? map->buf : "", map->len, add_record, st);
    input_map_rewind(map);
    if (rc == 0 && !e->failed && e->rows.n > 0) rc = flush_round(e);
    prompt_rows_free(&e->rows);
    if (!e->failed) {
        int cmd = rc == 0 ? ROUND_DONE : ROUND_FAILED;
        MPI_Bcast(&cmd, 1, MPI_INT, 0, MPI_COMM_WORLD);
        e->failed = rc != 0;
    }
    return rc;
}

/* The other ranks: put nothing in each round rank 0 announces. */
static int follow_rounds(h5io_stream *cols, bool *failed)
{
    prompt_rows none = {0};
    int rc = 0, cmd;
    for (;;) {
        MPI_Bcast(&cmd, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (cmd != ROUND) break;
        rc = put_prompt_rows(cols, &none);
        if (!all_ok(rc)) {
            *failed = true;
            return rc;
        }
    }
    *failed = cmd == ROUND_FAILED;
    return 0;
}

/* ------------------------------------------------------------- import -- */

/* Rank 0: the first reading of the input (every record checked). */
static int read_input(const import_opts *o, import_state *st, input_map *map, uint64_t *hash)
{
    if (input_map_open(map, o->input) != 0) return -1;
    *hash = input_map_hash(map);
    st->map = map;
    int rc = read_records(o->input, map->buf ? map->buf : "", map->len, add_record, st);
    input_map_rewind(map);
    if (rc == 0 && st->records == 0) rc = ERR("%s: no records", o->input);
    return rc;
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

/* What the import learns on its way, for the file's attributes and the
 * last lines. */
typedef struct {
    import_state st;
    input_map map;
    uint64_t input_hash;
    image_results res;
    int64_t kept, skipped;
    char run_key[17];
} import_run;

/* Rank 0: read the input again, writing the prompt rows (with the other
 * ranks, a round at a time) and the report. */
static int emit_rows_and_report(const import_opts *o, import_run *r, h5io_stream *cols,
                                bool *failed)
{
    image_rows(&r->res, &r->st, &r->kept, &r->skipped);
    import_run_key(r->input_hash, o, r->st.format, &r->st.images, &r->res, r->run_key);
    report_file report = {0};
    emit_state e = {&r->st.images, &r->res, &report, cols, {0}, false};
    int rc = report_open(&report, o, r->st.format, r->st.records, r->kept, r->skipped);
    if (rc == 0) {
        rc = emit_prompts(&r->st, &r->map, &e);
    } else { /* the others wait for the rounds */
        int cmd = ROUND_FAILED;
        MPI_Bcast(&cmd, 1, MPI_INT, 0, MPI_COMM_WORLD);
    }
    *failed = e.failed || rc != 0;
    rc = report_close(&report, rc);
    if (rc == 0 && r->kept == 0)
        rc = ERR("%s: nothing usable: all %" PRId64 " prompts have a missing or unreadable "
                 "image (listed in %s)", o->input, r->skipped, o->report);
    return rc;
}

/* The /prompts columns (collective): rank 0 reads the input again, the
 * others follow its rounds. Returns this rank's result; *failed when any
 * rank failed. */
static int write_prompt_rows(const tool_ctx *t, const import_opts *o, import_run *r,
                             h5io_file *f, bool *failed)
{
    h5io_stream cols[N_PROMPT_COLS];
    for (int i = 0; i < N_PROMPT_COLS; i++) cols[i] = (h5io_stream){.data = -1, .offsets = -1};
    int rc = begin_prompt_columns(f, cols);
    *failed = !all_ok(rc);
    if (!*failed && t->rank == 0) rc = emit_rows_and_report(o, r, cols, failed);
    else if (!*failed) rc = follow_rounds(cols, failed);
    int end = end_prompt_columns(cols);
    if (!*failed && rc == 0) rc = end;
    *failed = !all_ok(rc) || *failed;
    MPI_Bcast(&r->skipped, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(r->run_key, sizeof r->run_key, MPI_CHAR, 0, MPI_COMM_WORLD);
    return rc;
}

/* Provenance and the skip count, then the file in place (collective); on
 * an earlier failure, the file abandoned and the job ended. */
static void finish_file(tool_ctx *t, const import_opts *o, const import_run *r, h5io_file *f,
                        int rc, bool failed)
{
    const char *inputs[2] = {o->input, o->image_root};
    h5io_provenance prov = {.tool = "sima-prep", .schema = "sima.prompts", .schema_version = 1,
                            .argc = t->argc, .argv = t->argv, .inputs = inputs, .n_inputs = 2,
                            .model_dir = NULL, .model_hash = NULL, .seed = -1,
                            .run_key = r->run_key};
    if (!failed) failed = !all_ok(rc = h5io_write_provenance(f, &prov));
    if (!failed) failed = !all_ok(rc = h5io_set_attr_i64(f, "/", "n_skipped", r->skipped));
    if (failed) {
        h5io_abandon(f);
        tool_agree(t, rc);
    }
    tool_agree(t, h5io_commit(f));
}

int cmd_import(tool_ctx *t, int argc, char **argv)
{
    import_opts o;
    parse_import_options(t, argc, argv, &o);
    import_usage_check(t, &o);
    import_run r = {.st = {.format = o.format, .limit = o.limit}};

    /* rank 0 checks every record and learns the distinct images */
    tool_agree(t, t->rank == 0 ? read_input(&o, &r.st, &r.map, &r.input_hash) : 0);
    /* all ranks read and check the images a round at a time, writing them;
     * then the prompt rows */
    h5io_file f;
    tool_agree(t, h5io_create(&f, o.out, MPI_COMM_WORLD));
    r.res.n = (int64_t)r.st.images.n;
    bool failed;
    int rc = check_and_write_images(t, &o, &r.st.images, &f, &r.res, &failed);
    if (!failed) rc = write_prompt_rows(t, &o, &r, &f, &failed);
    finish_file(t, &o, &r, &f, rc, failed);

    if (t->rank == 0) {
        if (r.skipped)
            log_warn("skipped %" PRId64 " of %ld prompts for a missing or unreadable image "
                     "(listed in %s)", r.skipped, r.st.records, o.report);
        log_info("wrote %s: %" PRId64 " prompts (%" PRId64 " text-only), %" PRId64
                 " images, format %s", o.out, r.kept, r.st.text_only, r.res.n_good,
                 format_name(r.st.format));
    }
    image_results_free(&r.res);
    image_set_free(&r.st.images);
    input_map_close(&r.map);
    free(o.report);
    return TOOL_OK;
}
