/* alt.h — make_golden_alt: a second reference folder with the layout of
 * tests/golden (see tests/golden/README.md) but other shapes, written from
 * our own code. It checks that the tests take every shape, count and file
 * name from the folder they are given; it says nothing about conformance
 * to transformers (see README.md here). */
#ifndef SIMA_TEST_GOLDEN_ALT_H
#define SIMA_TEST_GOLDEN_ALT_H

#include <stdint.h>

/* The alternative model: every size differs from the bundled tiny model. */
typedef struct {
    int n_pieces;                   /* sentencepiece pieces; vocabulary = n_pieces + 2 */
    int vocab;                      /* + <image> (n_pieces) and <pad> (n_pieces + 1) */
    int v_hidden, v_ffn, v_layers, v_heads, image_size, patch_size;
    int t_hidden, t_ffn, t_layers, t_heads, t_kv_heads, t_head_dim, max_positions;
    double rope_theta, rms_eps;
    int shortest_edge;              /* preprocessor; the crop is image_size */
    double mean[3], std[3];
    int lora_r;
    double lora_alpha;
    const char *lora_targets;       /* lora_parse_targets list */
    double dpo_beta;
} alt_shape;

/* The one alternative shape this program writes. */
alt_shape alt_shape_default(void);

/* dir/tiny-llava: config.json, preprocessor_config.json, two safetensors
 * shards + index (random weights from `seed`), tokenizer files cut from the
 * bundled folder's tokenizer.json (`bundled_model`) to s->n_pieces pieces. */
void alt_write_model(const alt_shape *s, const char *bundled_model, const char *dir, uint64_t seed);
/* dir/tiny-llava-lora: a PEFT adapter of the model (random A and B). */
void alt_write_adapter(const alt_shape *s, const char *dir, uint64_t seed);
/* dir/weights-{f16,bf16}-subset.safetensors: some of the model's tensors
 * rounded to F16 / BF16. */
void alt_write_subsets(const char *dir);
/* dir/images/: JPEGs of other sizes, subsamplings and kinds than the
 * bundled ones; their names in *names (malloc'd, n returned). */
int alt_write_images(const char *dir, char ***names);

/* dir/tokenizer_cases.json from the texts of the bundled cases file plus a
 * few more, ids and decodes from the folder's own tokenizers. */
void alt_write_tokenizer_cases(const alt_shape *s, const char *bundled_cases, const char *dir);
/* dir/golden.h5: images/, forward/, dpo/, sft/ computed by our CPU code. */
void alt_write_golden_h5(const alt_shape *s, const char *dir, char **images, int n_images);

/* Normal(0, 1) draws from a 64-bit state (splitmix64 + Box-Muller). */
double alt_normal(uint64_t *state);

/* Exit with the recorded error when a call returning int fails. */
#define MUST(call)                                                             \
    do {                                                                       \
        if ((call) != 0) err_exit();                                           \
    } while (0)

#endif
