/* perf_tokenizer.c — tokenizer load time and encode/decode throughput.
 *
 *   perf_tokenizer [TOKENIZER] [TEXT_FILE]
 *
 * TOKENIZER: a tokenizer.json, tokenizer.model or model folder. Default: the
 * LLaMA-2 tokenizer.json from the cache of tests/fetch-tokenizers.sh if it is
 * there, else the tiny golden tokenizer.json. TEXT_FILE: default, 4 MB of
 * generated text mixing English words, punctuation, digits, accented Latin,
 * CJK and emoji (fixed seed). Prints one line per figure. */
#define _POSIX_C_SOURCE 200809L
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *default_tokenizer(void)
{
    const char *env = getenv("SIMA_TOKENIZER_CACHE");
    const char *home = getenv("HOME");
    char buf[4096];
    if (env && env[0]) snprintf(buf, sizeof buf, "%s/llama2/tokenizer.json", env);
    else snprintf(buf, sizeof buf, "%s/.cache/sima/tokenizers/llama2/tokenizer.json", home ? home : ".");
    if (fs_is_file(buf)) return xstrdup(buf);
    return golden_path("tiny-llava/tokenizer.json");
}

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* About `bytes` of text: sentences of common words with some numbers,
 * accented words, CJK runs, emoji, newlines and double spaces. */
static char *generate_text(size_t bytes, size_t *len)
{
    static const char *const words[] = {
        "the", "a", "of", "and", "to", "in", "is", "image", "shows", "red", "circle",
        "left", "right", "blue", "square", "on", "table", "there", "are", "two", "people",
        "standing", "next", "building", "with", "large", "window", "dog", "running", "grass",
        "What", "How", "many", "Describe", "detail", "answer", "question", "USER:", "ASSISTANT:",
        "caf\xC3\xA9", "na\xC3\xAFve", "\xC3\xBC" "ber", "se\xC3\xB1or", "stra\xC3\x9F" "e",
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xE4\xB8\xAD\xE6\x96\x87", "\xF0\x9F\x99\x82",
        "\xF0\x9F\xA6\x99", "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", "12345", "3.14",
        "(see", "figure)", "--", "\"quoted\"", "it's"};
    const size_t n_words = sizeof words / sizeof *words;
    char *text = xmalloc(bytes + 64);
    size_t n = 0;
    uint32_t seed = 12345;
    while (n < bytes) {
        const char *w = words[next_rand(&seed) % n_words];
        size_t k = strlen(w);
        memcpy(text + n, w, k);
        n += k;
        uint32_t r = next_rand(&seed) % 100;
        const char *sep = r < 80 ? " " : r < 88 ? ", " : r < 95 ? ". " : r < 98 ? ".\n" : "  ";
        memcpy(text + n, sep, strlen(sep));
        n += strlen(sep);
    }
    *len = n;
    return text;
}

/* One encode of the whole text, then line by line (prompt-sized calls). */
static void measure_encode(const tok_tokenizer *tok, const char *text, size_t len,
                           tok_ids *ids)
{
    double t0 = now_s();
    if (tok_encode(tok, text, len, true, ids) != 0) err_exit();
    double whole = now_s() - t0;
    printf("encode, one call:      %8.2f MB/s  (%zu tokens, %.2f bytes/token, %.3f s)\n",
           (double)len / whole / 1e6, ids->n, (double)len / (double)ids->n, whole);

    tok_ids line_ids = {0};
    size_t lines = 0;
    t0 = now_s();
    for (const char *p = text, *end = text + len; p < end; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl + 1 : end;
        line_ids.n = 0;
        if (tok_encode(tok, p, (size_t)(stop - p), true, &line_ids) != 0) err_exit();
        p = stop;
    }
    double per_line = now_s() - t0;
    printf("encode, per line:      %8.2f MB/s  (%zu calls, %.1f us each)\n",
           (double)len / per_line / 1e6, lines, per_line / (double)lines * 1e6);
    tok_ids_free(&line_ids);
}

static void measure_decode(const tok_tokenizer *tok, const tok_ids *ids)
{
    char *back = NULL;
    size_t blen = 0;
    double t0 = now_s();
    if (tok_decode(tok, ids->ids, ids->n, true, &back, &blen) != 0) err_exit();
    double s = now_s() - t0;
    printf("decode:                %8.2f MB/s  (%zu bytes of text)\n", (double)blen / s / 1e6, blen);
    free(back);
}

int main(int argc, char **argv)
{
    err_set_program(argv[0]);
    if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [TOKENIZER] [TEXT_FILE]\n", argv[0]);
        return 2;
    }
    char *path = argc > 1 ? xstrdup(argv[1]) : default_tokenizer();
    char *text;
    size_t len;
    if (argc > 2) {
        if (fs_read_all(argv[2], &text, &len) != 0) err_exit();
    } else {
        text = generate_text(4u << 20, &len);
    }

    double best = 1e9;
    tok_tokenizer *tok = NULL;
    for (int i = 0; i < 3; i++) {
        tok_free(tok);
        double t0 = now_s();
        if (tok_load(path, &tok) != 0) err_exit();
        double s = now_s() - t0;
        if (s < best) best = s;
    }
    printf("tokenizer:             %s (%s, %d ids)\n", path, tok_source_kind(tok), tok_vocab_size(tok));
    printf("load:                  %8.3f s (best of 3)\n", best);
    printf("text:                  %zu bytes%s\n", len, argc > 2 ? "" : " (generated)");

    tok_ids ids = {0};
    measure_encode(tok, text, len, &ids);
    measure_decode(tok, &ids);
    tok_ids_free(&ids);
    tok_free(tok);
    free(text);
    free(path);
    return 0;
}
