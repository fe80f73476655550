/* bench_chair.h — CHAIR object hallucination (Rohrbach et al. 2018, the
 * chair.py of the official release): CHAIR_i = hallucinated object mentions
 * / object mentions; CHAIR_s = captions with a hallucination / captions. */
#ifndef SIMA_BENCH_CHAIR_H
#define SIMA_BENCH_CHAIR_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bench_chair_vocab bench_chair_vocab;

/* Parses a synonym table in chair.py's format: one object category a line,
 * "category, synonym, synonym, ...", split at ", " with the pieces kept as
 * written (as chair.py does: a piece with a stray space or a capital never
 * matches); names may hold two words ("hot dog"); a longer name is kept but
 * never matches. Blank lines and lines starting with '#' are skipped. A name
 * listed under two categories belongs to the later one (chair.py's dict
 * assignment).
 * Returns 0, or -1 with err set (`what` names the source in messages). */
int bench_chair_vocab_parse(const char *text, const char *what, bench_chair_vocab **out);
void bench_chair_vocab_free(bench_chair_vocab *v);

int bench_chair_category_count(const bench_chair_vocab *v);
const char *bench_chair_category_name(const bench_chair_vocab *v, int id);
int bench_chair_category_id(const bench_chair_vocab *v, const char *name); /* -1: none */

/* The object mentions of a caption, in order, as category ids, found as
 * chair.py's caption_to_words finds them: lower-cased words, each as
 * written when the table knows it, else singular; chair.py's special pairs
 * joined ("baby dog" -> dog, "passenger train" -> train, "toilet seat" ->
 * toilet, "train track" -> nothing, "hot dog", ...) and two-word names of
 * the table; "seat" dropped when the caption also holds "toilet".
 * Writes up to `max` ids and returns how many mentions there are. */
size_t bench_chair_mentions(const bench_chair_vocab *v, const char *caption, int *ids,
                            size_t max);

typedef struct {
    long captions, hallucinated_captions, mentions, hallucinated_mentions;
} bench_chair_counts;

/* Adds one caption; truth[id] tells whether category id is among the
 * image's ground-truth objects. Returns 0, or -1 (err set) when out of
 * memory. */
int bench_chair_add(bench_chair_counts *c, const bench_chair_vocab *v, const char *caption,
                    const bool *truth);

double bench_chair_s(const bench_chair_counts *c);
double bench_chair_i(const bench_chair_counts *c);

#endif
