/* fuzz_tokenizer_json.c — libFuzzer target: the input is loaded as a
 * tokenizer file (tokenizer.json when it starts with '{' or '[', otherwise
 * as a sentencepiece tokenizer.model); when it loads, a short text is
 * encoded with and without added-token splitting, as a LLaVA prompt, and
 * the ids (plus a few arbitrary ones) are decoded. Every outcome is fine
 * except a crash, a leak or a sanitizer report.
 * Seed corpus: tests/fuzz/corpus/tokenizer_json/.
 *
 *   CC=clang cmake -S . -B build-fuzz -DSIMA_FUZZ=ON -DSIMA_CUDA=OFF
 *   make -C build-fuzz fuzz_tokenizer_json
 *   cp -r tests/fuzz/corpus/tokenizer_json /tmp/corpus
 *   build-fuzz/fuzz/fuzz_tokenizer_json -max_total_time=30 /tmp/corpus
 */
#include "err.h"
#include "tokenizer.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static const char TEXT[] = "Hello <s>w\xC3\xB6rld</s>\n  ab\t<image>x \xF0\x9F\x99\x82 \xFF end ";

static void decode_and_free(const tok_tokenizer *tok, tok_ids *ids, bool skip)
{
    char *text = NULL;
    size_t len = 0;
    if (tok_decode(tok, ids->ids, ids->n, skip, &text, &len) == 0) free(text);
    tok_ids_free(ids);
}

static void exercise(const tok_tokenizer *tok)
{
    tok_ids ids = {0};
    if (tok_encode(tok, TEXT, sizeof TEXT - 1, true, &ids) == 0) decode_and_free(tok, &ids, true);
    tok_ids_free(&ids);
    if (tok_encode_plain(tok, TEXT, sizeof TEXT - 1, &ids) == 0) decode_and_free(tok, &ids, false);
    tok_ids_free(&ids);
    if (tok_llava_prompt_ids(tok, TEXT, sizeof TEXT - 1, 7, 3, &ids) == 0)
        decode_and_free(tok, &ids, true);
    tok_ids_free(&ids);

    int n = tok_vocab_size(tok);
    const int32_t odd[] = {0, 1, 2, n - 1, n, n + 1, -1, 3, 3, 4};
    char *text = NULL;
    if (tok_decode(tok, odd, sizeof odd / sizeof *odd, false, &text, NULL) == 0) free(text);
    for (int32_t id = 0; id < n && id < 64; id++) {
        (void)tok_id_to_piece(tok, id);
        (void)tok_is_special(tok, id);
    }
    (void)tok_piece_to_id(tok, "<s>");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tok_tokenizer *tok = NULL;
    if (tok_load_buf(data, size, "fuzz/tokenizer.json", &tok) == 0) {
        exercise(tok);
        tok_free(tok);
    }
    err_clear();
    return 0;
}
