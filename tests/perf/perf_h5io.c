/* perf_h5io.c — write (and read) throughput of the io layer.
 *
 *   mpirun -np N perf_h5io [ROWS] [DIR]
 *
 * ROWS ragged text rows (default 10^6) of generated English-like text,
 * 20-400 bytes each (about 210 on average, like short model answers), plus
 * their int32 token ids (one per ~4 bytes of text); rows split evenly over
 * the ranks. For deflate levels 0 (contiguous), 1 and 4: the time from
 * h5io_create to h5io_commit, best of 3, then the time for every rank to read
 * its text rows back in 1000-row blocks, and its first 20000 rows one at a
 * time (the access of a tool walking a file row by row). Prints one line per figure.
 * DIR (default $TMPDIR or /tmp) holds the file, removed at the end. */
#include "err.h"
#include "h5io.h"
#include "libcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Row g's text, a function of g only (so any split gives the same file). */
static int64_t make_text(int64_t g, char *out)
{
    static const char *const words[] = {
        "the", "a", "man", "is", "standing", "next", "to", "red", "bus", "on", "street",
        "image", "shows", "two", "people", "sitting", "at", "wooden", "table", "with",
        "plates", "of", "food", "and", "there", "are", "several", "cars", "parked", "behind",
        "them", "in", "background", "dog", "running", "across", "green", "field", "while",
        "white", "clouds", "fill", "blue", "sky", "above", "kitchen", "counter", "has",
        "bowl", "fruit", "bananas", "apples", "oranges", "near", "window", "café", "naïve"};
    const int n_words = (int)(sizeof words / sizeof words[0]);
    uint64_t s = (uint64_t)g * 0x2545F4914F6CDD1DULL + 1;
    int64_t target = 20 + (int64_t)(splitmix(&s) % 381), n = 0;
    while (n < target) {
        const char *w = words[splitmix(&s) % (uint64_t)n_words];
        size_t k = strlen(w);
        if (n + (int64_t)k + 2 > target + 8) break;
        if (n) out[n++] = splitmix(&s) % 9 == 0 ? ',' : ' ';
        if (out[n - 1] == ',') out[n++] = ' ';
        memcpy(out + n, w, k);
        n += (int64_t)k;
    }
    out[n++] = '.';
    return n;
}

typedef struct {
    int64_t rows, g0;
    int64_t *text_len, *tok_len;
    char *text;
    int32_t *tokens;
    int64_t text_bytes, n_tokens;
} block;

static void make_block(block *b, int64_t g0, int64_t rows)
{
    b->rows = rows;
    b->g0 = g0;
    b->text_len = xmalloc((size_t)(rows + 1) * sizeof(int64_t));
    b->tok_len = xmalloc((size_t)(rows + 1) * sizeof(int64_t));
    b->text = xmalloc((size_t)(rows + 1) * 420);
    b->text_bytes = b->n_tokens = 0;
    for (int64_t i = 0; i < rows; i++) {
        b->text_len[i] = make_text(g0 + i, b->text + b->text_bytes);
        b->text_bytes += b->text_len[i];
        b->tok_len[i] = b->text_len[i] / 4 + 1;
        b->n_tokens += b->tok_len[i];
    }
    b->tokens = xmalloc((size_t)(b->n_tokens + 1) * sizeof(int32_t));
    for (int64_t i = 0, k = 0; i < rows; i++)
        for (int64_t j = 0; j < b->tok_len[i]; j++, k++)
            b->tokens[k] = (int32_t)((uint64_t)(g0 + i) * 2654435761u % 32000u + (uint64_t)j % 7u);
}

static int write_file(const char *path, const block *b, int deflate)
{
    h5io_file f;
    if (h5io_create(&f, path, MPI_COMM_WORLD)) return -1;
    h5io_set_deflate(&f, deflate);
    if (h5io_write_ragged(&f, "/responses/text", H5IO_TEXT, b->rows, b->text_len, b->text) ||
        h5io_write_ragged(&f, "/responses/tokens", H5IO_I32, b->rows, b->tok_len, b->tokens)) {
        h5io_abandon(&f);
        return -1;
    }
    return h5io_commit(&f);
}

/* Every rank reads its own rows back (the first `limit`), `step` at a time. */
static int read_back(const char *path, const block *b, int64_t step, int64_t limit)
{
    h5io_file f;
    if (h5io_open(&f, path, MPI_COMM_WORLD)) return -1;
    int64_t *off = xmalloc((size_t)(step + 1) * sizeof *off);
    int rc = 0;
    int64_t rows = b->rows < limit ? b->rows : limit;
    for (int64_t r = 0; r < rows && rc == 0; r += step) {
        int64_t n = rows - r < step ? rows - r : step;
        void *data = NULL;
        rc = h5io_read_ragged(&f, "/responses/text", H5IO_TEXT, b->g0 + r, n, off, &data);
        free(data);
    }
    free(off);
    h5io_close(&f);
    return rc;
}

int main(int argc, char **argv)
{
    MUST_MPI(MPI_Init(&argc, &argv));
    int rank, size;
    MUST_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MUST_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
    err_set_program("perf_h5io");
    int64_t rows = argc > 1 ? strtoll(argv[1], NULL, 10) : 1000000;
    const char *dir = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[1024];
    snprintf(path, sizeof path, "%s/perf_h5io.h5", dir);

    block b;
    int64_t g0 = rows * rank / size, g1 = rows * (rank + 1) / size;
    make_block(&b, g0, g1 - g0);
    int64_t bytes[2] = {b.text_bytes, b.n_tokens * 4};
    MPI_Allreduce(MPI_IN_PLACE, bytes, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    double mb = (double)(bytes[0] + bytes[1]) / 1e6;
    if (rank == 0)
        printf("%d rank(s), %" PRId64 " rows: %.1f MB text + %.1f MB int32 tokens\n", size, rows,
               (double)bytes[0] / 1e6, (double)bytes[1] / 1e6);

    const int levels[] = {0, 1, 4};
    for (int li = 0; li < 3; li++) {
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            if (write_file(path, &b, levels[li])) {
                err_print();
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            double t = MPI_Wtime() - t0;
            MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (t < best) best = t;
        }
        struct stat st;
        double file_mb = stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (read_back(path, &b, 1000, INT64_MAX)) {
            err_print();
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double tr = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &tr, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        int64_t one_by_one = 20000;
        t0 = MPI_Wtime();
        if (read_back(path, &b, 1, one_by_one)) {
            err_print();
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double t1 = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &t1, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rank == 0)
            printf("deflate %d: write %.2f s = %.0f MB/s, %.0fk rows/s; file %.1f MB (%.0f%%); "
                   "text read back in 1000-row blocks %.2f s = %.0f MB/s, "
                   "one row at a time %.0fk rows/s per rank\n",
                   levels[li], best, mb / best, (double)rows / best / 1e3, file_mb,
                   100.0 * file_mb / mb, tr, (double)bytes[0] / 1e6 / tr,
                   (double)(b.rows < one_by_one ? b.rows : one_by_one) / t1 / 1e3);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (rank == 0) unlink(path);
    free(b.text_len);
    free(b.tok_len);
    free(b.text);
    free(b.tokens);
    MPI_Finalize();
    return 0;
}
