/* make_golden_alt — write a second reference folder with the layout of
 * tests/golden but other shapes (vocabulary, image size, hidden sizes,
 * layer and head counts, LoRA rank and targets, images, case counts), its
 * values computed by our own CPU implementation.
 *
 *   make_golden_alt OUT_DIR [BUNDLED_DIR]
 *
 * BUNDLED_DIR (default: tests/golden of the source tree) lends the
 * tokenizer vocabulary that is cut down and the tokenizer case texts.
 * OUT_DIR is replaced only once the new folder is complete. Point
 * SIMA_GOLDEN_DIR at it to check that the tests take every shape and count
 * from the folder they are given (see README.md beside this file). */
#define _XOPEN_SOURCE 700
#include "alt.h"
#include "err.h"
#include "fs.h"
#include "h5util.h"
#include "strbuf.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_tmp; /* the folder being written; removed on failure */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "make_golden_alt: could not remove all of %s\n", dir);
}

static void remove_unfinished(void)
{
    if (g_tmp) remove_tree(g_tmp);
}

/* README.md of the written folder, its numbers from the shape. */
static void write_readme(const alt_shape *s, const char *dir, int n_images)
{
    strbuf b = {0};
    strbuf_printf(&b,
        "# An alternative reference folder (generated)\n\n"
        "Written by `make_golden_alt` (tests/golden_alt in the sima sources) with the\n"
        "layout of tests/golden (see tests/golden/README.md) and other shapes: a\n"
        "vocabulary of %d (%d sentencepiece pieces cut from the bundled tokenizer, then\n"
        "<image> and <pad>), %d px images of %d px patches, CLIP %d wide with %d layers\n"
        "and %d heads, LLaMA %d wide with %d layers, %d heads and %d KV heads and %d\n"
        "positions, a %d px shortest edge before the crop, other normalisation\n"
        "constants, LoRA r %d (alpha %g) on %s, DPO beta %g, %d JPEGs of other sizes\n"
        "and kinds, other forward cases and DPO pairs.\n\n",
        s->vocab, s->n_pieces, s->image_size, s->patch_size, s->v_hidden, s->v_layers,
        s->v_heads, s->t_hidden, s->t_layers, s->t_heads, s->t_kv_heads, s->max_positions,
        s->shortest_edge, s->lora_r, s->lora_alpha, s->lora_targets, s->dpo_beta, n_images);
    strbuf_puts(&b,
        "Every value here (golden.h5, tokenizer_cases.json, the F16/BF16 subsets) was\n"
        "computed by sima's own CPU code on this folder's random model. Tests run\n"
        "against it show that they take every shape, count and file name from the\n"
        "folder they are given. They do NOT show conformance to transformers: only\n"
        "tests/golden, computed by the Python reference stack, does that.\n");
    char *path = fs_join(dir, "README.md");
    MUST(fs_write_atomic(path, b.s, b.len));
    free(path);
    strbuf_free(&b);
}

int main(int argc, char **argv)
{
    err_set_program("make_golden_alt");
    if (argc < 2 || argc > 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: make_golden_alt OUT_DIR [BUNDLED_DIR]\n");
        return 2;
    }
    const char *out = argv[1], *bundled = argc > 2 ? argv[2] : SIMA_GOLDEN_DEFAULT;
    h5u_init();
    size_t n = strlen(out) + 32;
    g_tmp = xmalloc(n);
    snprintf(g_tmp, n, "%s.tmp-%ld", out, (long)getpid());
    if (mkdir(g_tmp, 0755) != 0) DIE("cannot create %s", g_tmp);
    atexit(remove_unfinished);

    alt_shape s = alt_shape_default();
    char *bundled_model = fs_join(bundled, "tiny-llava");
    char *bundled_cases = fs_join(bundled, "tokenizer_cases.json");
    char **images = NULL;
    alt_write_model(&s, bundled_model, g_tmp, 15);
    alt_write_adapter(&s, g_tmp, 1515);
    alt_write_subsets(g_tmp);
    int n_images = alt_write_images(g_tmp, &images);
    alt_write_tokenizer_cases(&s, bundled_cases, g_tmp);
    alt_write_golden_h5(&s, g_tmp, images, n_images);
    write_readme(&s, g_tmp, n_images);

    /* put it in place: the old folder goes only after the new one is there */
    char *old = NULL;
    if (fs_is_dir(out)) {
        old = xmalloc(n);
        snprintf(old, n, "%s.old-%ld", out, (long)getpid());
        if (rename(out, old) != 0) DIE("cannot move the old %s aside", out);
    }
    if (rename(g_tmp, out) != 0) DIE("cannot rename %s to %s", g_tmp, out);
    free(g_tmp);
    g_tmp = NULL;
    if (old) remove_tree(old);
    printf("make_golden_alt: wrote %s (vocabulary %d, %d px images, %d images)\n", out, s.vocab,
           s.image_size, n_images);
    for (int i = 0; i < n_images; i++) free(images[i]);
    free(images);
    free(old);
    free(bundled_model);
    free(bundled_cases);
    return 0;
}
