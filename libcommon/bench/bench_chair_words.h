/* bench_chair_words.h — how chair.py reads a caption into words:
 * nltk.word_tokenize of the lower-cased caption (Punkt sentences, then the
 * Treebank-style word rules of NLTK 3.8's NLTKWordTokenizer), and
 * pattern.en's singularize of every word. Used by bench_chair.c; exposed
 * for its tests. ASCII case folding only. */
#ifndef SIMA_BENCH_CHAIR_WORDS_H
#define SIMA_BENCH_CHAIR_WORDS_H

#include <stddef.h>

/* The words of a caption as nltk.word_tokenize(caption.lower()) gives them,
 * with sentences split as an untrained Punkt model splits them (see
 * bench_chair_words.c). *words is a malloc'd array of malloc'd strings.
 * Returns 0, or -1 (err set) when out of memory. */
int bench_chair_tokenize(const char *caption, char ***words, size_t *n);
void bench_chair_words_free(char **words, size_t n);

/* pattern.en's singularize(word) (pattern 3.6, text/en/inflect.py) of a
 * lower-case word: its rule order and quirks included ("bus" -> "bu",
 * "glass" -> "glas", "ties" -> "ty", "doggies" kept). malloc'd; NULL when
 * out of memory. */
char *bench_chair_singularize(const char *word);

#endif
