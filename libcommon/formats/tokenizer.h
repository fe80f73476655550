/* tokenizer.h — formats layer: LLaMA-family BPE tokenizer with byte fallback.
 *
 * Loads either a Hugging Face tokenizer.json (BPE model with merges,
 * normalizer Prepend/Replace, added tokens, TemplateProcessing for BOS) or a
 * sentencepiece tokenizer.model (protobuf: pieces, scores, types, normalizer
 * flags). The two encode the same text to the same ids, except that
 * tokenizer.json recognises its special added tokens (<s>, </s>, <image>, ...)
 * inside text, as HF tokenizers do, and tokenizer.model does not.
 */
#ifndef SIMA_FORMATS_TOKENIZER_H
#define SIMA_FORMATS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tok_tokenizer tok_tokenizer;   /* opaque */

/* Growable list of token ids. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok_ids;
void tok_ids_push(tok_ids *v, int32_t id);
void tok_ids_free(tok_ids *v);

/* Load tokenizer.json or tokenizer.model (chosen by content, not by name), or
 * a model folder holding either (tokenizer.json preferred). */
int tok_load(const char *path, tok_tokenizer **out);
void tok_free(tok_tokenizer *tok);

/* Append the ids of text[0..len) to out; BOS first when add_bos. */
int tok_encode(const tok_tokenizer *tok, const char *text, size_t len,
               bool add_bos, tok_ids *out);
/* Encode without special-token recognition and without BOS: plain text
 * chunk, as LLaVA's tokenizer_image_token encodes the pieces around <image>. */
int tok_encode_plain(const tok_tokenizer *tok, const char *text, size_t len,
                     tok_ids *out);

/* Decode ids to UTF-8 (malloc'd, NUL-terminated). skip_special drops
 * control/special tokens (BOS, EOS, <image>, pad) as HF's
 * skip_special_tokens=True does. Leading-space handling follows the loaded
 * format (tokenizer.json's Strip decoder / sentencepiece's dummy prefix). */
int tok_decode(const tok_tokenizer *tok, const int32_t *ids, size_t n,
               bool skip_special, char **text, size_t *len);

int tok_vocab_size(const tok_tokenizer *tok);  /* including added tokens */
int tok_bos_id(const tok_tokenizer *tok);      /* -1 if none */
int tok_eos_id(const tok_tokenizer *tok);
int tok_unk_id(const tok_tokenizer *tok);
int tok_piece_to_id(const tok_tokenizer *tok, const char *piece); /* -1 absent */
const char *tok_id_to_piece(const tok_tokenizer *tok, int32_t id); /* NULL bad id */
bool tok_is_special(const tok_tokenizer *tok, int32_t id);
const char *tok_source_kind(const tok_tokenizer *tok); /* "tokenizer.json" | "sentencepiece" */

#endif
