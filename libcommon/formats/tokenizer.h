/* tokenizer.h — formats layer: LLaMA-family BPE tokenizer with byte fallback.
 *
 * Loads either a Hugging Face tokenizer.json (BPE model with merges,
 * normalizer Prepend/Replace or a Metaspace pre-tokenizer, added tokens,
 * TemplateProcessing for BOS) or a sentencepiece tokenizer.model (protobuf:
 * pieces, scores, types, normalizer flags). The two encode the same text to
 * the same ids, except that tokenizer.json recognises its added tokens
 * (<s>, </s>, <image>, ...) inside text, as HF tokenizers do, and
 * tokenizer.model does not.
 *
 * Encoding follows each format's reference: tokenizer.json merges adjacent
 * symbols by merge rank (HF tokenizers), tokenizer.model by the score of
 * the merged piece (sentencepiece BPE); characters missing from the
 * vocabulary become <0xXX> byte pieces when byte fallback is on. Both run in
 * O(n log n). Input that is not valid UTF-8 is encoded as if each malformed
 * byte were U+FFFD (sentencepiece's rule). Anything in a file that is not
 * implemented (another model type, an unknown normalizer, pre-tokenizer,
 * decoder or post-processor, a non-identity sentencepiece charsmap) fails
 * to load with a one-line error naming the file and the piece: never a
 * silently different encoding.
 *
 * A loaded tokenizer is read-only: encode and decode may run on it from
 * several threads at once.
 *
 * Errors: functions returning int give 0, or -1 with err_msg() set
 * ("tiny/tokenizer.json: model.type \"WordPiece\" is not supported ...").
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
/* The same from bytes in memory; name is used in error messages. */
int tok_load_buf(const void *buf, size_t len, const char *name,
                 tok_tokenizer **out);
void tok_free(tok_tokenizer *tok);

/* Append the ids of text[0..len) to out. tokenizer.json: added tokens in
 * the text are recognised and the pieces between them are normalized and
 * encoded separately (as HF tokenizers do). add_bos adds the special tokens
 * of the file's post_processor "single" template (BOS for LLaMA; BOS if the
 * file has no template); sentencepiece: BOS. */
int tok_encode(const tok_tokenizer *tok, const char *text, size_t len,
               bool add_bos, tok_ids *out);
/* Encode one plain text chunk: no BOS and no added-token recognition (a
 * "</s>" in the text is just characters), the normalizer's dummy prefix
 * applied at the chunk's start. This is what LLaVA's tokenizer_image_token
 * gets per chunk around <image>: it calls tokenizer(chunk).input_ids (BOS +
 * chunk) and drops each chunk's BOS but the first. Unlike tokenizer(chunk)
 * with a tokenizer.json, special tokens typed inside the chunk are not
 * turned into control ids (safer for user text). */
int tok_encode_plain(const tok_tokenizer *tok, const char *text, size_t len,
                     tok_ids *out);

/* LLaVA prompt ids, the rule that reproduces golden.h5 forward/<case>/
 * input_ids: BOS (if the tokenizer has one); the text split at each literal
 * "<image>"; every chunk encoded with tok_encode_plain (so each non-empty
 * chunk gets its own dummy-prefix '▁'); each "<image>" replaced by
 * n_image_tokens copies of image_token_id (llava-hf: image_seq_length =
 * (image_size / patch_size)^2, 576 for LLaVA-1.5, image_token_index 32000).
 * Example: "USER: <image>\nWhat? ASSISTANT:". Appends to out. */
int tok_llava_prompt_ids(const tok_tokenizer *tok, const char *text, size_t len,
                         int32_t image_token_id, int n_image_tokens,
                         tok_ids *out);

/* Decode ids to UTF-8 (malloc'd, NUL-terminated; len may be NULL).
 * skip_special drops control/special tokens (BOS, EOS, <unk>, <image>, pad)
 * as HF's skip_special_tokens=True does; otherwise they decode as their
 * text (sentencepiece: control pieces as their piece, <unk> as " \u2047 ").
 * tokenizer.json runs the file's decoder chain (Replace, ByteFallback,
 * Fuse, Strip, Metaspace): a run of byte pieces that is not valid UTF-8
 * becomes one U+FFFD per byte, as HF's ByteFallback does. sentencepiece:
 * '▁' -> ' ', one leading space of the first piece dropped when the model
 * adds a dummy prefix, malformed bytes -> U+FFFD each. Ids outside the
 * vocabulary are skipped, as HF does. */
int tok_decode(const tok_tokenizer *tok, const int32_t *ids, size_t n,
               bool skip_special, char **text, size_t *len);

int tok_vocab_size(const tok_tokenizer *tok);  /* including added tokens */
int tok_bos_id(const tok_tokenizer *tok);      /* -1 if none */
int tok_eos_id(const tok_tokenizer *tok);
int tok_unk_id(const tok_tokenizer *tok);
int tok_piece_to_id(const tok_tokenizer *tok, const char *piece); /* -1 absent; added tokens too */
const char *tok_id_to_piece(const tok_tokenizer *tok, int32_t id); /* NULL bad id */
bool tok_is_special(const tok_tokenizer *tok, int32_t id);
const char *tok_source_kind(const tok_tokenizer *tok); /* "tokenizer.json" | "sentencepiece" */

#endif
