/* chat.h — engine layer: prompt templates (data/templates, one .txt file each).
 *
 * A template is text with "{question}" where the question goes and
 * "<image>" where the image goes; see data/templates/README.md.
 */
#ifndef SIMA_ENGINE_CHAT_H
#define SIMA_ENGINE_CHAT_H

#include "tokenizer.h"

#include <stdbool.h>

typedef struct {
    char *name;     /* as given: a name or a path */
    char *text;     /* the template */
} chat_template;

/* NAME ("vicuna_v1", looked up as $SIMA_DATA_DIR/templates/NAME.txt) or a
 * path to a template file. Errors name the file. */
int chat_template_load(const char *name_or_path, chat_template *out);
void chat_template_free(chat_template *t);

/* The folder holding templates/ and schemas/: $SIMA_DATA_DIR, else the
 * compiled-in default. */
const char *chat_data_dir(void);

/* The prompt text: {question} filled in (any "<image>" in the question
 * removed); without an image the template's "<image>" (and the newline after
 * it) removed. malloc'd. */
char *chat_format(const chat_template *t, const char *question, bool with_image);

/* Token ids of the formatted prompt, BOS first, the image placeholder
 * expanded to n_image_tokens copies of image_token_id. Appends to out. */
int chat_prompt_ids(const chat_template *t, const tok_tokenizer *tok, const char *question,
                    bool with_image, int32_t image_token_id, int n_image_tokens, tok_ids *out);

/* Replace each "{name}" of text with its value (names[i] -> values[i],
 * n pairs); with strip_newlines, newlines in the values become spaces.
 * Unknown placeholders stay as they are. malloc'd. */
char *chat_fill(const char *text, const char *const *names, const char *const *values, int n,
                bool strip_newlines);

#endif
