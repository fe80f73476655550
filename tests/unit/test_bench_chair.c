/* test_bench_chair.c — CHAIR mention finding and CHAIR_s / CHAIR_i,
 * hand-worked on a small synonym table. */
#include "bench_chair.h"
#include "bench_chair_words.h"
#include "check.h"
#include "err.h"
#include "fs.h"

#include <stdlib.h>
#include <string.h>

static const char TABLE[] =
    "# comment\n"
    "person, man, woman, people, child\n"
    "dog, puppy\n"
    "\n"
    "hot dog, hotdog\n"
    "dining table, table\n"
    "teddy bear\n"
    "bus\n"
    "bench\n";

static void test_parse(void)
{
    bench_chair_vocab *v = NULL;
    CHECK_OK(bench_chair_vocab_parse(TABLE, "t.txt", &v));
    CHECK_EQ(bench_chair_category_count(v), 7);
    CHECK_EQ(bench_chair_category_id(v, "hot dog"), 2);
    CHECK_EQ(bench_chair_category_id(v, "table"), -1); /* a synonym, not a category */
    CHECK(strcmp(bench_chair_category_name(v, 3), "dining table") == 0);
    CHECK(bench_chair_category_name(v, 7) == NULL);
    bench_chair_vocab_free(v);

    CHECK_FAILS_WITH(bench_chair_vocab_parse("# nothing\n", "e.txt", &v), "no object categories");
    CHECK_FAILS_WITH(bench_chair_vocab_parse("dog\n, puppy\n", "e.txt", &v),
                     "line 2: empty category name");
    /* chair.py keeps a three-word name ("stove top oven") but can never
     * match it: captions are joined at most two words at a time */
    CHECK_OK(bench_chair_vocab_parse("oven, stove, stove top oven\n", "o.txt", &v));
    int ov[4];
    CHECK_EQ(bench_chair_mentions(v, "a stove top oven", ov, 4), 2); /* stove, oven */
    bench_chair_vocab_free(v);
    /* pieces split at ", " and kept verbatim: " cheesecake" (doubled space)
     * and "iPhone" (capital) never equal a lower-cased caption word */
    CHECK_OK(bench_chair_vocab_parse("cake,  cheesecake, cupcake\nphone, iPhone\n", "q.txt",
                                     &v));
    CHECK_EQ(bench_chair_mentions(v, "cheesecake and an iphone", ov, 4), 0);
    CHECK_EQ(bench_chair_mentions(v, "cupcakes", ov, 4), 1);
    bench_chair_vocab_free(v);
    /* a name under two categories goes to the later one */
    CHECK_OK(bench_chair_vocab_parse("cat, kitty\ntoy, kitty\n", "d.txt", &v));
    int id = -1;
    CHECK_EQ(bench_chair_mentions(v, "a kitty", &id, 1), 1);
    CHECK_EQ(id, 1);
    bench_chair_vocab_free(v);
}

static void test_mentions(void)
{
    bench_chair_vocab *v = NULL;
    CHECK_OK(bench_chair_vocab_parse(TABLE, "t.txt", &v));
    int ids[16];
    /* "Two men" -> person (men -> man); "hot dogs" is the two-word hot dog,
     * not dog; "tables" -> dining table */
    size_t n = bench_chair_mentions(v, "Two men eat hot dogs at the tables.", ids, 16);
    CHECK_EQ(n, 3);
    CHECK_EQ(ids[0], 0);
    CHECK_EQ(ids[1], 2);
    CHECK_EQ(ids[2], 3);
    /* plural forms: puppies -> puppy, buses -> bus, benches -> bench */
    n = bench_chair_mentions(v, "Puppies near buses and benches", ids, 16);
    CHECK_EQ(n, 3);
    CHECK_EQ(ids[0], 1);
    CHECK_EQ(ids[1], 5);
    CHECK_EQ(ids[2], 6);
    /* "teddy bears" two words; "bear" alone is nothing here */
    n = bench_chair_mentions(v, "teddy bears, a bear", ids, 16);
    CHECK_EQ(n, 1);
    CHECK_EQ(ids[0], 4);
    /* every word is singularised first, as chair.py does: "bus" becomes
     * "bu" (pattern.en) and mentions nothing; "buses" is a bus */
    CHECK_EQ(bench_chair_mentions(v, "bus", ids, 16), 0);
    CHECK_EQ(bench_chair_mentions(v, "two buses", ids, 16), 1);
    /* nltk's words: "hot-dog" and "dog/puppy" are one word each (no
     * mention), "dog's" is "dog" + "'s", a period inside a sentence stays
     * on its word ("puppy.the"), the last one is split off */
    CHECK_EQ(bench_chair_mentions(v, "a hot-dog and dog/puppy", ids, 16), 0);
    n = bench_chair_mentions(v, "the dog's bowl. a puppy.the end. a puppy.", ids, 16);
    CHECK_EQ(n, 2);
    CHECK_EQ(ids[0], 1);
    CHECK_EQ(ids[1], 1);
    /* the count is returned even past max */
    CHECK_EQ(bench_chair_mentions(v, "dog dog dog", ids, 1), 3);
    CHECK_EQ(bench_chair_mentions(v, "", ids, 16), 0);
    bench_chair_vocab_free(v);
}

/* chair.py's fixed rules, on a table shaped like the COCO one. */
static const char COCO_LIKE[] =
    "person, man, baby, passenger, adult\n"
    "dog, puppy\n"
    "elephant\n"
    "train, locomotive\n"
    "airplane, jet, plane\n"
    "toilet, urinal\n"
    "chair, seat, stool\n"
    "tie, bow, bow tie\n";

static void test_chair_rules(void)
{
    bench_chair_vocab *v = NULL;
    CHECK_OK(bench_chair_vocab_parse(COCO_LIKE, "c.txt", &v));
    int ids[16];
    int person = bench_chair_category_id(v, "person"), dog = bench_chair_category_id(v, "dog");
    int elephant = bench_chair_category_id(v, "elephant");
    int train = bench_chair_category_id(v, "train"), plane = bench_chair_category_id(v, "airplane");
    int toilet = bench_chair_category_id(v, "toilet"), chair = bench_chair_category_id(v, "chair");
    /* "baby elephant" is an elephant, "adult dogs" dogs: the qualifier is
     * no person; "a baby" alone is a person */
    size_t n = bench_chair_mentions(v, "A baby elephant and two adult dogs near a baby.", ids, 16);
    CHECK_EQ(n, 3);
    CHECK_EQ(ids[0], elephant);
    CHECK_EQ(ids[1], dog);
    CHECK_EQ(ids[2], person);
    /* "passenger train" / "passenger jet": the vehicle only */
    n = bench_chair_mentions(v, "a passenger train and a passenger jet", ids, 16);
    CHECK_EQ(n, 2);
    CHECK_EQ(ids[0], train);
    CHECK_EQ(ids[1], plane);
    /* "train tracks" is chair.py's pair "train track", in no table: nothing */
    CHECK_EQ(bench_chair_mentions(v, "train tracks in the snow", ids, 16), 0);
    /* "toilet seat" is the toilet; with a toilet in the caption every
     * "seat" is dropped, without one a seat is a chair */
    n = bench_chair_mentions(v, "a toilet seat", ids, 16);
    CHECK_EQ(n, 1);
    CHECK_EQ(ids[0], toilet);
    n = bench_chair_mentions(v, "the seat of the toilet", ids, 16);
    CHECK_EQ(n, 1);
    CHECK_EQ(ids[0], toilet);
    n = bench_chair_mentions(v, "a seat by the window", ids, 16);
    CHECK_EQ(n, 1);
    CHECK_EQ(ids[0], chair);
    /* "bow tie" becomes "tie" */
    n = bench_chair_mentions(v, "a man in a bow tie", ids, 16);
    CHECK_EQ(n, 2);
    CHECK_EQ(ids[1], bench_chair_category_id(v, "tie"));
    /* CHAIR of "A baby elephant." for an image whose objects are only the
     * elephant: 1 mention, none hallucinated (the old reading counted a
     * person too: CHAIR_i 1/2, CHAIR_s 1) */
    bool truth[8] = {0};
    truth[elephant] = true;
    bench_chair_counts c = {0};
    CHECK_OK(bench_chair_add(&c, v, "A baby elephant.", truth));
    CHECK_EQ(c.mentions, 1);
    CHECK_EQ(c.hallucinated_mentions, 0);
    CHECK_NEAR(bench_chair_s(&c), 0.0, 0);
    bench_chair_vocab_free(v);
}

static void test_chair_metrics(void)
{
    bench_chair_vocab *v = NULL;
    CHECK_OK(bench_chair_vocab_parse(TABLE, "t.txt", &v));
    bool truth[7] = {0};
    truth[0] = true; /* person */
    truth[1] = true; /* dog */
    bench_chair_counts c = {0};
    /* caption 1: man, dog -> 2 mentions, 0 hallucinated */
    CHECK_OK(bench_chair_add(&c, v, "A man walks a dog.", truth));
    /* caption 2: woman, table, hot dog -> 3 mentions, 2 hallucinated */
    CHECK_OK(bench_chair_add(&c, v, "A woman at a table with a hot dog.", truth));
    /* caption 3: no objects */
    CHECK_OK(bench_chair_add(&c, v, "A sunny day.", truth));
    /* caption 4: puppy, puppy -> each mention counts: 2, 0 hallucinated */
    CHECK_OK(bench_chair_add(&c, v, "A puppy and another puppy.", truth));
    CHECK_EQ(c.captions, 4);
    CHECK_EQ(c.mentions, 7);
    CHECK_EQ(c.hallucinated_mentions, 2);
    CHECK_EQ(c.hallucinated_captions, 1);
    CHECK_NEAR(bench_chair_s(&c), 1.0 / 4, 1e-12);
    CHECK_NEAR(bench_chair_i(&c), 2.0 / 7, 1e-12);
    bench_chair_counts empty = {0};
    CHECK_NEAR(bench_chair_s(&empty), 0, 0);
    CHECK_NEAR(bench_chair_i(&empty), 0, 0);
    bench_chair_vocab_free(v);
}

static void test_example_file(void)
{
    char *path = fs_join(SIMA_SOURCE_DIR, "data/benchmarks/chair_synonyms_example.txt");
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(fs_read_all(path, &text, &len));
    bench_chair_vocab *v = NULL;
    CHECK_OK(bench_chair_vocab_parse(text ? text : "", path, &v));
    if (v) {
        CHECK_EQ(bench_chair_category_count(v), 10);
        int ids[4];
        CHECK_EQ(bench_chair_mentions(v, "a kitten on a desk", ids, 4), 2);
        CHECK_EQ(ids[0], bench_chair_category_id(v, "cat"));
        CHECK_EQ(ids[1], bench_chair_category_id(v, "dining table"));
    }
    bench_chair_vocab_free(v);
    free(text);
    free(path);
}

/* chair.py's word reading: nltk.word_tokenize and pattern.en's
 * singularize, quirks included (checked against both on the parity
 * fixtures, tests/parity/). */
static void test_chair_words(void)
{
    static const char *const SINGULAR[][2] = {
        {"dogs", "dog"}, {"glasses", "glass"}, {"glass", "glas"}, {"bus", "bu"},
        {"buses", "bus"}, {"ties", "ty"}, {"skis", "ski"}, {"people", "person"},
        {"women", "woman"}, {"knives", "knife"}, {"mice", "mouse"}, {"doggies", "doggies"},
        {"scissors", "scissors"}, {"sheep", "sheep"}, {"is", "is"}, {"this", "thi"},
        {"pasta", "pastum"}, {"analyses", "analysis"}, {"bases", "basis"},
        {"mothers-in-law", "mother-in-law"}, {"dogs'", "dog's"}, {"shelves", "shelve"},
        {"wolves", "wolf"}, {"cacti", "cactus"}, {"oxen", "ox"}, {"s", "s"},
    };
    for (size_t i = 0; i < sizeof SINGULAR / sizeof *SINGULAR; i++) {
        char *s = bench_chair_singularize(SINGULAR[i][0]);
        CHECK_MSG(strcmp(s, SINGULAR[i][1]) == 0, "singular of %s: %s", SINGULAR[i][0], s);
        free(s);
    }
    char **w;
    size_t n;
    CHECK_OK(bench_chair_tokenize("A Dog's \"toy\" (red), cannot-fly... Mr. T. Books.The end.",
                                  &w, &n));
    /* nltk: "cannot" splits even before a hyphen; "mr." ends a sentence
     * for an untrained Punkt, the initial "t." before a lower-case word
     * does not */
    static const char *const WANT[] = {"a", "dog", "'s", "``", "toy", "''", "(", "red", ")",
                                       ",", "can", "not", "-fly", "...", "mr", ".", "t.",
                                       "books.the", "end", "."};
    CHECK_EQ(n, sizeof WANT / sizeof *WANT);
    for (size_t i = 0; i < n && i < sizeof WANT / sizeof *WANT; i++)
        CHECK_MSG(strcmp(w[i], WANT[i]) == 0, "word %zu: %s, want %s", i, w[i], WANT[i]);
    bench_chair_words_free(w, n);
}

int main(void)
{
    test_parse();
    test_mentions();
    test_chair_rules();
    test_chair_words();
    test_chair_metrics();
    test_example_file();
    return check_finish();
}
