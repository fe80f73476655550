/* perf_scale.c — the pieces of tests/perf/perf_scale.sh, which shows the
 * memory of each rank staying flat as a run grows from 100k to 1M prompts:
 *
 *   perf_scale jpegs DIR N             N distinct small JPEGs, DIR/<i/1000>/<i>.jpg
 *   perf_scale prompts OUT.jsonl N M   N SIMA prompt records naming M images in turn
 *   perf_scale responses N OUT.h5      made-up responses, 2 per prompt (synth_files.h)
 *   perf_scale verdicts RESP.h5 OUT.h5 made-up verdicts for them, both orders for half
 *   perf_scale critic-io PROMPTS.h5 RESP.h5 [CHUNK] [--whole]   (under mpirun)
 *       sima-critic's reading: the items from one pass over the responses, then
 *       for each of this rank's chunks its responses rows, its prompts' question
 *       and ground truth and their images' bytes (the model's work left out);
 *       --whole reads every responses row on every rank first, as sima-critic
 *       did before it read a chunk at a time
 *   perf_scale rss LABEL -- CMD ARGS...
 *       run CMD (under mpirun: one per rank) and print its peak resident
 *       memory (getrusage of the child) and wall time
 */
#define _GNU_SOURCE /* wait4 */
#include "err.h"
#include "h5io.h"
#include "h5util.h"
#include "hash.h"
#include "prompts.h"
#include "responses.h"
#include "synth_files.h"

#include <errno.h>
#include <inttypes.h>
#include <jpeglib.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ----------------------------------------------------------------- jpegs -- */

enum { IMG_W = 128, IMG_H = 96 };

/* Image i: a gradient of its own colours under noise, so every image
 * differs and compresses like a small photo (about 6-10 KB at quality 90). */
static void make_pixels(int64_t i, uint8_t *pix)
{
    uint64_t h = hash_fnv1a(&i, sizeof i, HASH_FNV_INIT);
    for (int y = 0; y < IMG_H; y++)
        for (int x = 0; x < IMG_W; x++) {
            h = h * 6364136223846793005ULL + 1442695040888963407ULL;
            for (int c = 0; c < 3; c++) {
                int base = (int)((i * (c + 3) * 37 + x * (c + 1) + y * (3 - c)) & 255);
                int noise = (int)((h >> (20 + 8 * c)) & 63) - 32;
                int v = base + noise;
                pix[(y * IMG_W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

static int write_jpeg(const char *path, const uint8_t *pix)
{
    FILE *fp = fopen(path, "wb");
    CHECK_IO(fp, "%s: cannot create", path);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
    c.image_width = IMG_W;
    c.image_height = IMG_H;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * IMG_W * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    if (fclose(fp) != 0) return err_errno_at(__FILE__, __LINE__, "%s: write failed", path);
    return 0;
}

static int cmd_jpegs(const char *dir, int64_t n)
{
    uint8_t *pix = xmalloc(IMG_W * IMG_H * 3);
    char path[4096];
    int64_t bytes = 0;
    int rc = mkdir(dir, 0755) != 0 && errno != EEXIST
                 ? err_errno_at(__FILE__, __LINE__, "%s: cannot create", dir) : 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        snprintf(path, sizeof path, "%s/%" PRId64, dir, i / 1000);
        if (i % 1000 == 0 && mkdir(path, 0755) != 0 && errno != EEXIST)
            rc = err_errno_at(__FILE__, __LINE__, "%s: cannot create", path);
        snprintf(path, sizeof path, "%s/%" PRId64 "/%" PRId64 ".jpg", dir, i / 1000, i);
        struct stat st;
        if (rc == 0 && stat(path, &st) == 0) { /* made by an earlier run */
            bytes += st.st_size;
            continue;
        }
        make_pixels(i, pix);
        if (rc == 0) rc = write_jpeg(path, pix);
        if (rc == 0 && stat(path, &st) == 0) bytes += st.st_size;
    }
    free(pix);
    if (rc == 0)
        printf("%" PRId64 " JPEGs of %dx%d, %.1f MB (%.1f KB each)\n", n, IMG_W, IMG_H,
               (double)bytes / 1e6, (double)bytes / 1e3 / (double)(n ? n : 1));
    return rc;
}

/* --------------------------------------------------------------- prompts -- */

static int cmd_prompts(const char *out, int64_t n, int64_t m)
{
    FILE *fp = fopen(out, "w");
    CHECK_IO(fp, "%s: cannot create", out);
    static const char *const q[] = {"What is happening in this image?",
                                    "Describe the objects in the picture and where they are.",
                                    "What colour is the largest shape, and what is next to it?"};
    for (int64_t i = 0; i < n; i++) {
        int64_t img = i % m;
        fprintf(fp,
                "{\"id\": \"s%" PRId64 "\", \"image\": \"%" PRId64 "/%" PRId64 ".jpg\", "
                "\"text\": \"%s (%" PRId64 ")\", \"ground_truth\": \"The picture shows a "
                "gradient of colours with fine noise over it; shape %" PRId64 " sits in the "
                "middle, a smaller one to its left, and the background fades from dark to "
                "light towards the top right corner.\"}\n",
                i, img / 1000, img, q[i % 3], i, i % 97);
    }
    if (fclose(fp) != 0) return err_errno_at(__FILE__, __LINE__, "%s: write failed", out);
    return 0;
}

/* ------------------------------------------------------------- critic-io -- */

/* The prompt side of one item: question, ground truth, the image's bytes
 * (what sima-critic reads for a prompt before preprocessing the image). */
static int read_prompt(h5io_file *pf, int64_t row, int64_t *bytes)
{
    char *question = NULL, *truth = NULL;
    int64_t img = -1, off[2];
    void *jpeg = NULL;
    int rc = prm_text(pf, "question", row, &question);
    if (rc == 0) rc = prm_text(pf, "ground_truth", row, &truth);
    if (rc == 0) rc = prm_image_index(pf, row, &img);
    if (rc == 0 && img >= 0) rc = h5io_read_ragged(pf, "/images/jpeg", H5IO_U8, img, 1, off, &jpeg);
    if (rc == 0) *bytes += (int64_t)(strlen(question) + strlen(truth)) + (img >= 0 ? off[1] : 0);
    free(question);
    free(truth);
    free(jpeg);
    return rc;
}

/* One chunk of items: its responses rows, then each item's prompt. */
static int read_chunk(h5io_file *pf, h5io_file *rf, const resp_index *ix, int64_t first,
                      int64_t n, int64_t *bytes)
{
    resp_rows r;
    int64_t row0 = ix->item_row0[first];
    int rc = resp_read_range(rf, row0, ix->item_row0[first + n] - row0, &r);
    if (rc != 0) return rc;
    *bytes += r.tok_total * 8 + r.text_total;
    for (int64_t i = first; rc == 0 && i < first + n; i++)
        rc = read_prompt(pf, r.prompt[ix->item_row0[i] - row0], bytes);
    resp_free(&r);
    return rc;
}

static int cmd_critic_io(const char *prompts, const char *responses, int64_t chunk, int whole)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double t0 = now_s();
    h5io_file pf, rf;
    int64_t n_prompts, bytes = 0;
    resp_index ix = {0};
    resp_rows all = {0};
    int rc = prm_open(&pf, prompts, &n_prompts);
    if (rc == 0) rc = resp_open(&rf, responses, NULL);
    if (rc == 0 && whole) rc = resp_read(&rf, &all);
    if (rc == 0) rc = resp_index_items(&rf, n_prompts, 2, &ix);
    double t_index = now_s() - t0;
    int64_t n_chunks = (ix.n_items + chunk - 1) / chunk, items = 0;
    for (int64_t c = rank; rc == 0 && c < n_chunks; c += size) {
        int64_t first = c * chunk, n = ix.n_items - first < chunk ? ix.n_items - first : chunk;
        rc = read_chunk(&pf, &rf, &ix, first, n, &bytes);
        items += n;
    }
    if (rc != 0) err_print();
    printf("critic-io rank %d: %" PRId64 " of %" PRId64 " items, %.1f MB read, index pass %.2f s, "
           "total %.2f s%s\n", rank, items, ix.n_items, (double)bytes / 1e6, t_index,
           now_s() - t0, whole ? " (every responses row read first)" : "");
    resp_free(&all);
    free(ix.item_row0);
    h5io_close(&pf);
    h5io_close(&rf);
    return rc;
}

/* ------------------------------------------------------------------- rss -- */

static int cmd_rss(const char *label, char **argv)
{
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) return err_errno_at(__FILE__, __LINE__, "fork");
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "perf_scale: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return err_errno_at(__FILE__, __LINE__, "wait4");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%s rank %s: peak RSS %.1f MiB, wall %.2f s, exit %d\n", label, rank ? rank : "0",
           (double)ru.ru_maxrss / 1024.0, now_s() - t0, code);
    fflush(stdout);
    return code;
}

int main(int argc, char **argv)
{
    err_set_program("perf_scale");
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "rss") && argc > 4 && !strcmp(argv[3], "--"))
        return cmd_rss(argv[2], argv + 4); /* before MPI: the command is the MPI process */
    int rc;
    MPI_Init(&argc, &argv);
    h5u_init();
    if (!strcmp(cmd, "jpegs") && argc == 4) {
        rc = cmd_jpegs(argv[2], strtoll(argv[3], NULL, 10));
    } else if (!strcmp(cmd, "prompts") && argc == 5) {
        rc = cmd_prompts(argv[2], strtoll(argv[3], NULL, 10), strtoll(argv[4], NULL, 10));
    } else if (!strcmp(cmd, "responses") && argc == 4) {
        rc = synth_responses(argv[3], strtoll(argv[2], NULL, 10), 2);
    } else if (!strcmp(cmd, "verdicts") && argc == 4) {
        rc = synth_verdicts(argv[2], argv[3], false);
    } else if (!strcmp(cmd, "critic-io") && argc >= 4) {
        int whole = argc > 4 && !strcmp(argv[argc - 1], "--whole");
        int64_t chunk = argc > 4 + whole ? strtoll(argv[4], NULL, 10) : 16;
        rc = cmd_critic_io(argv[2], argv[3], chunk > 0 ? chunk : 16, whole);
    } else {
        fprintf(stderr, "usage: see the head of tests/perf/perf_scale.c\n");
        rc = 2;
    }
    if (rc == -1) err_print();
    MPI_Finalize();
    return rc == 0 ? 0 : 1;
}
