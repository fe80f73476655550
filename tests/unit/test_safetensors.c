/* test_safetensors.c — safetensors writer/reader round trips, the scalar
 * F16/BF16 conversions, and one clear error for each kind of bad file. */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "safetensors.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir; /* this run's temporary folder */

static char *tmp_path(const char *name) { return fs_join(g_dir, name); }

/* Remove a folder and everything under it (our own temporary files). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = fs_join(dir, e->d_name);
        if (fs_is_dir(p)) remove_tree(p); else unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- round trips ----------------------------------------------------- */

/* One tensor of every dtype, plus a scalar, an empty and an 8-d tensor.
 * The I8 tensor of 5 bytes comes early so later data is misaligned. */
typedef struct {
    float f32[6];
    uint16_t f16[4], bf16[4];
    double f64;
    int64_t i64[3];
    int32_t i32[2];
    int16_t i16[2];
    int8_t i8[5];
    uint8_t u8[1], boolean[3], eight[2];
} sample_data;

static sample_data make_sample(void)
{
    sample_data d = {
        .f32 = {1.0f, -2.5f, 3.25f, 0.0f, 1e-30f, -7e20f},
        .f64 = 3.141592653589793,
        .i64 = {-1, 0, INT64_MAX},
        .i32 = {-7, 123456789},
        .i16 = {-300, 300},
        .i8 = {-128, -1, 0, 1, 127},
        .boolean = {1, 0, 1},
        .eight = {42, 43},
    };
    const float halves[4] = {1.0f, -0.5f, 65504.0f, 0x1p-24f};
    for (int i = 0; i < 4; i++) {
        d.f16[i] = st_f32_to_f16(halves[i]);
        d.bf16[i] = st_f32_to_bf16(halves[i] * 3.0f);
    }
    return d;
}

static size_t make_tensors(const sample_data *d, st_write_tensor *w)
{
    size_t n = 0;
    w[n++] = (st_write_tensor){"layer.i8", ST_I8, 1, {5}, d->i8};
    w[n++] = (st_write_tensor){"layer.f32", ST_F32, 2, {2, 3}, d->f32};
    w[n++] = (st_write_tensor){"a.f16", ST_F16, 1, {4}, d->f16};
    w[n++] = (st_write_tensor){"b.bf16", ST_BF16, 2, {2, 2}, d->bf16};
    w[n++] = (st_write_tensor){"scalar.f64", ST_F64, 0, {0}, &d->f64};
    w[n++] = (st_write_tensor){"ids.i64", ST_I64, 1, {3}, d->i64};
    w[n++] = (st_write_tensor){"c.i32", ST_I32, 3, {1, 1, 2}, d->i32};
    w[n++] = (st_write_tensor){"c.i16", ST_I16, 1, {2}, d->i16};
    w[n++] = (st_write_tensor){"empty.u8", ST_U8, 2, {0, 7}, NULL};
    w[n++] = (st_write_tensor){"mask.bool", ST_BOOL, 1, {3}, d->boolean};
    w[n++] = (st_write_tensor){"eight.u8", ST_U8, 8, {1, 1, 1, 1, 1, 1, 1, 2}, d->eight};
    return n;
}

static size_t write_nbytes(const st_write_tensor *w)
{
    size_t n = st_dtype_size(w->dtype);
    for (int d = 0; d < w->ndim; d++) n *= (size_t)w->shape[d];
    return n;
}

static void check_tensor_matches(const st_set *set, const st_write_tensor *w)
{
    const st_tensor *t = st_find(set, w->name);
    CHECK_MSG(t != NULL, "tensor %s missing after round trip", w->name);
    if (!t) return;
    CHECK_EQ(t->dtype, w->dtype);
    CHECK_EQ(t->ndim, w->ndim);
    int64_t numel = 1;
    for (int d = 0; d < w->ndim; d++) {
        CHECK_EQ(t->shape[d], w->shape[d]);
        numel *= w->shape[d];
    }
    CHECK_EQ(t->numel, numel);
    CHECK_EQ(t->nbytes, write_nbytes(w));
    CHECK_MSG(t->nbytes == 0 || memcmp(t->data, w->data, t->nbytes) == 0,
              "tensor %s: bytes differ", w->name);
    CHECK_EQ(t->file_index, 0);
}

static void check_header_padding(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char len8[8] = {0};
    CHECK(f && fread(len8, 1, 8, f) == 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | len8[i];
    CHECK_MSG(n % 8 == 0, "header length %llu is not a multiple of 8",
              (unsigned long long)n);
    char *h = xmalloc(n + 1);
    CHECK(f && fread(h, 1, n, f) == n);
    h[n] = '\0';
    CHECK(h[0] == '{');
    if (f) fclose(f);
    free(h);
}

static void check_conversions_of(const st_set *set, const sample_data *d)
{
    float out[6];
    CHECK_OK(st_to_f32(st_find(set, "layer.f32"), out));
    CHECK(memcmp(out, d->f32, sizeof d->f32) == 0);
    CHECK_OK(st_to_f32(st_find(set, "a.f16"), out));
    for (int i = 0; i < 4; i++) CHECK(bits_of(out[i]) == bits_of(st_f16_to_f32(d->f16[i])));
    CHECK_NEAR(out[2], 65504.0, 0);
    CHECK_NEAR(out[3], 0x1p-24, 0);
    CHECK_OK(st_to_f32(st_find(set, "b.bf16"), out));
    for (int i = 0; i < 4; i++) CHECK(bits_of(out[i]) == bits_of(st_bf16_to_f32(d->bf16[i])));
    CHECK_OK(st_to_f32(st_find(set, "scalar.f64"), out));
    CHECK(out[0] == (float)d->f64);
    CHECK_FAILS_WITH(st_to_f32(st_find(set, "ids.i64"), out), "not a floating type");
}

static void test_round_trip(void)
{
    sample_data d = make_sample();
    st_write_tensor w[16];
    size_t n = make_tensors(&d, w);
    const char *meta[] = {"format", "pt", "note", "round trip", NULL};
    char *path = tmp_path("all.safetensors");
    CHECK_OK(st_write_file(path, w, n, meta));
    check_header_padding(path);

    st_set *set = NULL;
    CHECK_OK(st_open_file(path, &set));
    if (!set) return;
    CHECK_EQ(st_count(set), n);
    CHECK_EQ(st_file_count(set), 1);
    CHECK(strcmp(st_file_path(set, 0), path) == 0);
    CHECK(st_file_path(set, 1) == NULL);
    for (size_t i = 0; i < n; i++) check_tensor_matches(set, &w[i]);
    for (size_t i = 1; i < st_count(set); i++)
        CHECK(strcmp(st_at(set, i - 1)->name, st_at(set, i)->name) < 0);
    CHECK(st_at(set, n) == NULL);
    CHECK(st_find(set, "nope") == NULL);
    CHECK(st_find(set, "layer.f3") == NULL);
    CHECK(st_metadata(set, "format") && strcmp(st_metadata(set, "format"), "pt") == 0);
    CHECK(st_metadata(set, "note") && strcmp(st_metadata(set, "note"), "round trip") == 0);
    CHECK(st_metadata(set, "other") == NULL);
    check_conversions_of(set, &d);
    st_close(set);

    /* the folder holds that one file and nothing left over by the writer */
    CHECK_OK(st_open_dir(g_dir, &set));
    if (set) CHECK_EQ(st_count(set), n);
    st_close(set);
    free(path);
}

static void test_no_metadata_and_overwrite(void)
{
    float v[2] = {1, 2}, v2[3] = {4, 5, 6};
    st_write_tensor w = {"x", ST_F32, 1, {2}, v};
    char *path = tmp_path("sub/none.safetensors");
    CHECK(st_write_file(path, &w, 1, NULL) != 0); /* folder does not exist */
    free(path);
    path = tmp_path("plain.safetensors");
    CHECK_OK(st_write_file(path, &w, 1, NULL));
    w = (st_write_tensor){"y", ST_F32, 1, {3}, v2};
    CHECK_OK(st_write_file(path, &w, 1, NULL)); /* replaces the old file */
    st_set *set = NULL;
    CHECK_OK(st_open_file(path, &set));
    if (set) {
        CHECK_EQ(st_count(set), 1);
        CHECK(st_find(set, "y") != NULL && st_find(set, "x") == NULL);
        CHECK(st_metadata(set, "format") == NULL);
    }
    st_close(set);
    unlink(path);
    free(path);
}

static void test_writer_errors(void)
{
    float v[2] = {1, 2};
    char *path = tmp_path("bad-write.safetensors");
    st_write_tensor two[2] = {{"x", ST_F32, 1, {2}, v}, {"x", ST_F32, 1, {1}, v}};
    CHECK_FAILS_WITH(st_write_file(path, two, 2, NULL), "given twice");
    st_write_tensor neg = {"n", ST_F32, 1, {-2}, v};
    CHECK_FAILS_WITH(st_write_file(path, &neg, 1, NULL), "negative");
    st_write_tensor meta_name = {"__metadata__", ST_F32, 1, {2}, v};
    CHECK_FAILS_WITH(st_write_file(path, &meta_name, 1, NULL), "invalid name");
    const char *odd_meta[] = {"k", NULL};
    st_write_tensor ok = {"ok", ST_F32, 1, {2}, v};
    CHECK_FAILS_WITH(st_write_file(path, &ok, 1, odd_meta), "no value");
    CHECK_MSG(!fs_is_file(path), "a failed write must leave no file");
    free(path);
}

/* ---- scalar conversions ---------------------------------------------- */

/* Nearest value of a 16-bit format to f, ties to even, by exhaustive
 * comparison in double: an independent check of the bit-twiddling. */
typedef float (*decode_fn)(uint16_t);

static uint16_t reference_round(float f, decode_fn decode, uint16_t inf_bits)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    /* binary search the largest non-negative code with value <= a */
    uint32_t lo = 0, hi = inf_bits;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if ((double)decode((uint16_t)mid) <= a) lo = mid; else hi = mid - 1;
    }
    if ((double)decode((uint16_t)lo) == a || lo == inf_bits) return sign | (uint16_t)lo;
    double below = a - (double)decode((uint16_t)lo);
    double above = (double)decode((uint16_t)(lo + 1)) - a;
    if (lo + 1 == inf_bits) {
        /* IEEE overflow: round as if the exponent were unbounded */
        double max = (double)decode((uint16_t)lo);
        double next = max + (max - (double)decode((uint16_t)(lo - 1)));
        above = next - a;
    }
    uint32_t pick = below < above ? lo : above < below ? lo + 1 : (lo & 1 ? lo + 1 : lo);
    return sign | (uint16_t)pick;
}

static uint16_t ref_f16(float f) { return reference_round(f, st_f16_to_f32, 0x7c00); }
static uint16_t ref_bf16(float f) { return reference_round(f, st_bf16_to_f32, 0x7f80); }

static void test_decode_exhaustive(void)
{
    int bad16 = 0, badbf = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_f16_to_f32((uint16_t)h);
#if defined(__FLT16_MAX__)
        _Float16 hv;
        uint16_t hb = (uint16_t)h;
        memcpy(&hv, &hb, 2);
        float want = (float)hv;
        if (isnan(want) ? !isnan(f) : bits_of(f) != bits_of(want)) bad16++;
#else
        int exp = (h >> 10) & 31, mant = h & 1023;
        double want = exp == 0 ? ldexp(mant, -24) : ldexp(1024 + mant, exp - 25);
        if (h & 0x8000) want = -want;
        if (exp == 31 ? (mant ? !isnan(f) : !isinf(f)) : (double)f != want) bad16++;
#endif
        if (bits_of(st_bf16_to_f32((uint16_t)h)) != h << 16) badbf++;
    }
    CHECK_EQ(bad16, 0);
    CHECK_EQ(badbf, 0);
    CHECK(st_f16_to_f32(0x0001) == 0x1p-24f);   /* smallest subnormal */
    CHECK(st_f16_to_f32(0x03ff) == 0x3ffp-24f); /* largest subnormal */
    CHECK(st_f16_to_f32(0x0400) == 0x1p-14f);   /* smallest normal */
    CHECK(st_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(st_f16_to_f32(0xfc00)) && st_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(st_f16_to_f32(0x7e00)));
    CHECK(signbit(st_f16_to_f32(0x8000)) && st_f16_to_f32(0x8000) == 0);
    CHECK(st_bf16_to_f32(0x3f80) == 1.0f && st_bf16_to_f32(0xc000) == -2.0f);
}

static void test_round_specials(void)
{
    /* ties go to the even neighbour */
    CHECK_EQ(st_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    CHECK_EQ(st_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    CHECK_EQ(st_f32_to_f16(0x1p-25f), 0x0000);            /* tie between 0 and 2^-24 */
    CHECK_EQ(st_f32_to_f16(nextafterf(0x1p-25f, 1)), 0x0001);
    CHECK_EQ(st_f32_to_f16(1.5f * 0x1p-24f), 0x0002);     /* tie: 1 or 2 units -> 2 */
    CHECK_EQ(st_f32_to_f16(2.5f * 0x1p-24f), 0x0002);
    CHECK_EQ(st_f32_to_f16(0x3ffp-24f + 0x1p-25f), 0x0400); /* subnormal to normal carry */
    CHECK_EQ(st_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ(st_f32_to_f16(FLT_MIN), 0x0000);
    /* overflow: 65520 is the tie above 65504 and goes to inf */
    CHECK_EQ(st_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ(st_f32_to_f16(nextafterf(65520.0f, 0)), 0x7bff);
    CHECK_EQ(st_f32_to_f16(65520.0f), 0x7c00);
    CHECK_EQ(st_f32_to_f16(-1e10f), 0xfc00);
    CHECK_EQ(st_f32_to_f16(INFINITY), 0x7c00);
    CHECK((st_f32_to_f16(NAN) & 0x7fff) > 0x7c00);
    CHECK((st_f32_to_f16(-NAN) & 0x7fff) > 0x7c00);
    CHECK_EQ(st_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    CHECK_EQ(st_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    CHECK_EQ(st_f32_to_bf16(FLT_MAX), 0x7f80);
    CHECK_EQ(st_f32_to_bf16(-INFINITY), 0xff80);
    CHECK_EQ(st_f32_to_bf16(NAN), 0x7fc0);
    CHECK_EQ(st_f32_to_bf16(float_of(0x7f800001)), 0x7fc0); /* signalling NaN stays NaN */
    CHECK_EQ(st_f32_to_bf16(float_of(0x00008000)), 0x0000); /* subnormal tie to even */
    CHECK_EQ(st_f32_to_bf16(float_of(0x00018000)), 0x0002);
}

/* Values next to every rounding boundary of both formats, plus a pseudo-
 * random sweep of all exponents; compared with the reference rounding (and
 * with the compiler's _Float16 conversion where it has one). */
static void check_round(float f, int *bad16, int *badbf, int *badcc)
{
    if (st_f32_to_f16(f) != ref_f16(f)) (*bad16)++;
    if (st_f32_to_bf16(f) != ref_bf16(f)) (*badbf)++;
#if defined(__FLT16_MAX__)
    _Float16 h = (_Float16)f;
    uint16_t hb;
    memcpy(&hb, &h, 2);
    if (hb != st_f32_to_f16(f)) (*badcc)++;
#else
    (void)badcc;
#endif
}

static void test_round_sweep(void)
{
    int bad16 = 0, badbf = 0, badcc = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        for (int s = 0; s < 2; s++) {
            float a = st_f16_to_f32((uint16_t)(h | (s << 15)));
            float b = st_f16_to_f32((uint16_t)((h + 1) | (s << 15)));
            float mid = (float)(((double)a + (double)b) / 2); /* exact in f32 */
            check_round(mid, &bad16, &badbf, &badcc);
            check_round(nextafterf(mid, 0), &bad16, &badbf, &badcc);
            check_round(nextafterf(mid, mid * 2), &bad16, &badbf, &badcc);
            check_round(a, &bad16, &badbf, &badcc);
        }
    }
    for (uint32_t b = 0; b < 0x7f80; b++) {
        uint32_t base = b << 16;
        const uint32_t offs[] = {0x7fff, 0x8000, 0x8001, 0x0001, 0xffff};
        for (size_t k = 0; k < sizeof offs / sizeof *offs; k++)
            check_round(float_of(base | offs[k]), &bad16, &badbf, &badcc);
    }
    uint32_t x = 12345;
    for (int i = 0; i < 200000; i++) {
        x = x * 1664525u + 1013904223u;
        float f = float_of(x);
        if (!isnan(f)) check_round(f, &bad16, &badbf, &badcc);
    }
    CHECK_EQ(bad16, 0);
    CHECK_EQ(badbf, 0);
    CHECK_EQ(badcc, 0);
}

/* ---- bad files ----------------------------------------------------------- */

/* A file of: u64 header length (as given), the header text, data_len bytes. */
static char *write_raw(const char *name, uint64_t header_len, const char *header,
                       size_t data_len)
{
    char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(header_len >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++) fputc((int)(i & 0xff), f);
    fclose(f);
    return path;
}

static char *write_header(const char *name, const char *header, size_t data_len)
{
    return write_raw(name, strlen(header), header, data_len);
}

/* Opening must fail with one line that names the file and contains needle. */
static void expect_bad(const char *path, const char *needle, int line)
{
    st_set *set = NULL;
    err_clear();
    int rc = st_open_file(path, &set);
    const char *msg = err_msg();
    check_report(rc != 0 && set == NULL && strstr(msg, needle) && strstr(msg, path) &&
                 !strchr(msg, '\n'), __FILE__, line,
                 "%s: expected an error with \"%s\", got rc=%d \"%s\"", path, needle,
                 rc, msg);
    st_close(set);
}
#define EXPECT_BAD(path, needle) expect_bad((path), (needle), __LINE__)

static void bad_header(const char *name, const char *header, size_t data_len,
                       const char *needle, int line)
{
    char *path = write_header(name, header, data_len);
    expect_bad(path, needle, line);
    free(path);
}
#define BAD_HEADER(name, header, data_len, needle) \
    bad_header((name), (header), (data_len), (needle), __LINE__)

static void test_truncated(void)
{
    float v[16] = {0};
    st_write_tensor w = {"w", ST_F32, 2, {4, 4}, v};
    char *path = tmp_path("trunc.safetensors");
    CHECK_OK(st_write_file(path, &w, 1, NULL));
    size_t full = 0;
    char *buf;
    CHECK_OK(fs_read_all(path, &buf, &full));
    CHECK_OK(truncate(path, (off_t)(full - 10)));
    EXPECT_BAD(path, "tensor 'w': data_offsets [0, 64] end beyond the 54 bytes of data");
    CHECK_OK(truncate(path, 20));
    EXPECT_BAD(path, "beyond the file's 20 bytes");
    CHECK_OK(truncate(path, 5));
    EXPECT_BAD(path, "too short");
    CHECK_OK(truncate(path, 0));
    EXPECT_BAD(path, "too short");
    /* the same image from memory names the given name */
    st_set *set = NULL;
    CHECK_OK(st_open_mem(buf, full, "mem.safetensors", &set));
    if (set) CHECK_EQ(st_count(set), 1);
    st_close(set);
    CHECK_FAILS_WITH(st_open_mem(buf, full - 1, "mem.safetensors", &set),
                     "mem.safetensors: tensor 'w'");
    free(buf);
    free(path);
}

static void test_bad_headers(void)
{
    char *p = write_raw("hlen.safetensors", 1000, "{}", 10);
    EXPECT_BAD(p, "header length 1000 beyond the file's 20 bytes");
    free(p);
    p = write_raw("hhuge.safetensors", UINT64_C(1) << 62, "{}", 0);
    EXPECT_BAD(p, "exceeds");
    free(p);
    BAD_HEADER("notjson.safetensors", "{\"a\": [1, 2,", 0, "header is not valid JSON: line 1");
    BAD_HEADER("array.safetensors", "[1, 2]", 0, "not a JSON object");
    BAD_HEADER("trailing.safetensors", "{} {}", 0, "not valid JSON");
    BAD_HEADER("dtype.safetensors",
               "{\"x\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 2]}}",
               2, "tensor 'x': unsupported dtype 'F8_E4M3'");
    BAD_HEADER("dtype2.safetensors",
               "{\"x\": {\"dtype\": 5, \"shape\": [2], \"data_offsets\": [0, 2]}}", 2,
               "tensor 'x': \"dtype\" is not a string");
    BAD_HEADER("size.safetensors",
               "{\"x\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}",
               24, "tensor 'x': shape [2, 3] of F32 is 24 bytes but data_offsets [0, 20] span 20");
    BAD_HEADER("overflow.safetensors",
               "{\"x\": {\"dtype\": \"BF16\", \"shape\": [4611686018427387904, "
               "4611686018427387904, 4], \"data_offsets\": [0, 0]}}", 0,
               "too many bytes to count");
    BAD_HEADER("overflow2.safetensors",
               "{\"x\": {\"dtype\": \"F64\", \"shape\": [2305843009213693952], "
               "\"data_offsets\": [0, 0]}}", 0, "too many bytes to count");
    BAD_HEADER("beyond.safetensors",
               "{\"x\": {\"dtype\": \"F32\", \"shape\": [25], \"data_offsets\": [0, 100]}}",
               64, "tensor 'x': data_offsets [0, 100] end beyond the 64 bytes of data");
    BAD_HEADER("overlap.safetensors",
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
               " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [12, 28]}}",
               28, "overlap");
    BAD_HEADER("negative.safetensors",
               "{\"x\": {\"dtype\": \"F32\", \"shape\": [-1, 4], \"data_offsets\": [0, 16]}}",
               16, "tensor 'x': shape[0] is not a non-negative integer");
    BAD_HEADER("float-dim.safetensors",
               "{\"x\": {\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}}",
               8, "shape[0]");
    BAD_HEADER("backwards.safetensors",
               "{\"x\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [8, 4]}}",
               8, "end before begin");
    BAD_HEADER("negoff.safetensors",
               "{\"x\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [-4, 0]}}",
               8, "data_offsets");
    BAD_HEADER("dims.safetensors",
               "{\"x\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
               "\"data_offsets\": [0, 1]}}", 1, "9 dimensions, more than 8");
    BAD_HEADER("noshape.safetensors",
               "{\"x\": {\"dtype\": \"U8\", \"data_offsets\": [0, 1]}}", 1,
               "missing \"shape\"");
    BAD_HEADER("nooffsets.safetensors",
               "{\"x\": {\"dtype\": \"U8\", \"shape\": [1]}}", 1, "missing \"data_offsets\"");
    BAD_HEADER("entry.safetensors", "{\"x\": [1]}", 0, "tensor 'x': entry is not an object");
    BAD_HEADER("meta.safetensors",
               "{\"__metadata__\": {\"format\": 1}}", 0, "__metadata__: \"format\" is not a string");
    BAD_HEADER("meta2.safetensors", "{\"__metadata__\": [\"pt\"]}", 0, "__metadata__");
    BAD_HEADER("dup.safetensors",
               "{\"x\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
               " \"x\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
               2, "duplicate");
    BAD_HEADER("newline.safetensors",
               "{\"a\\nb\": {\"dtype\": \"X\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
               "tensor 'a?b': unsupported dtype 'X'");
    BAD_HEADER("emptyname.safetensors",
               "{\"\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
               "empty name");
}

/* Legal corner cases: gaps between tensors, header padding, empty tensors
 * at shared offsets, a header with nothing but metadata. */
static void test_legal_corners(void)
{
    char *p = write_header("gaps.safetensors",
                           "{\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]},"
                           " \"e1\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [5, 5]},"
                           " \"e2\": {\"dtype\": \"F32\", \"shape\": [3, 0], \"data_offsets\": [5, 5]}}    ",
                           10);
    st_set *set = NULL;
    CHECK_OK(st_open_file(p, &set));
    if (set) {
        CHECK_EQ(st_count(set), 3);
        const st_tensor *a = st_find(set, "a");
        CHECK(a && a->nbytes == 2 && ((const unsigned char *)a->data)[0] == 4);
        CHECK(st_find(set, "e2") && st_find(set, "e2")->numel == 0);
    }
    st_close(set);
    free(p);
    p = write_header("onlymeta.safetensors", "{\"__metadata__\": {\"k\": \"v\"}}", 0);
    CHECK_OK(st_open_file(p, &set));
    if (set) {
        CHECK_EQ(st_count(set), 0);
        CHECK(st_metadata(set, "k") && strcmp(st_metadata(set, "k"), "v") == 0);
    }
    st_close(set);
    free(p);
}

/* ---- sharded sets ----------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
    CHECK_OK(fs_write_atomic(path, text, strlen(text)));
}

static void write_two_shards(const char *dir)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    uint16_t c[3] = {0x3c00, 0x4000, 0x4200};
    st_write_tensor s1[2] = {{"model.a", ST_F32, 2, {2, 2}, a},
                             {"unmapped", ST_F32, 1, {2}, b}};
    st_write_tensor s2[2] = {{"model.b", ST_F32, 1, {2}, b},
                             {"model.c", ST_F16, 1, {3}, c}};
    const char *meta[] = {"format", "pt", NULL};
    char *p1 = fs_join(dir, "part-1.safetensors"), *p2 = fs_join(dir, "part-2.safetensors");
    CHECK_OK(st_write_file(p1, s1, 2, meta));
    CHECK_OK(st_write_file(p2, s2, 2, NULL));
    free(p1);
    free(p2);
}

static void test_sharded(void)
{
    char *dir = tmp_path("sharded");
    CHECK_OK(mkdir(dir, 0755) == 0 ? 0 : -1);
    write_two_shards(dir);
    char *index = fs_join(dir, "model.safetensors.index.json");
    write_text(index, "{\"metadata\": {\"total_size\": 36}, \"weight_map\": {"
                      "\"model.c\": \"part-2.safetensors\", "
                      "\"model.a\": \"part-1.safetensors\", "
                      "\"model.b\": \"part-2.safetensors\"}}");
    st_set *set = NULL;
    CHECK_OK(st_open_dir(dir, &set));
    if (set) {
        CHECK_EQ(st_count(set), 3); /* "unmapped" is not in the set */
        CHECK(st_find(set, "unmapped") == NULL);
        CHECK_EQ(st_file_count(set), 2);
        const st_tensor *c = st_find(set, "model.c");
        CHECK(c && strstr(st_file_path(set, c->file_index), "part-2.safetensors"));
        const st_tensor *a = st_find(set, "model.a");
        CHECK(a && strstr(st_file_path(set, a->file_index), "part-1.safetensors"));
        float out[3];
        CHECK_OK(st_to_f32(c, out));
        CHECK(out[0] == 1.0f && out[1] == 2.0f && out[2] == 3.0f);
        CHECK(st_metadata(set, "format") && strcmp(st_metadata(set, "format"), "pt") == 0);
    }
    st_close(set);
    CHECK_OK(st_open_index(index, &set));
    if (set) CHECK_EQ(st_count(set), 3);
    st_close(set);

    /* a mapped tensor missing from its shard */
    write_text(index, "{\"weight_map\": {\"model.a\": \"part-1.safetensors\", "
                      "\"model.b\": \"part-1.safetensors\"}}");
    CHECK_FAILS_WITH(st_open_dir(dir, &set),
                     "tensor 'model.b' is mapped to part-1.safetensors, which does not contain it");
    CHECK(strstr(err_msg(), index) != NULL);
    /* a shard that does not exist */
    write_text(index, "{\"weight_map\": {\"model.a\": \"part-3.safetensors\"}}");
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "part-3.safetensors: cannot open");
    CHECK(strstr(err_msg(), index) != NULL);
    /* a shard outside the folder */
    write_text(index, "{\"weight_map\": {\"model.a\": \"../part-1.safetensors\"}}");
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "leaves the folder");
    /* syntax error: line and column */
    write_text(index, "{\n  \"weight_map\": {\n    \"model.a\" \"part-1.safetensors\"\n}}\n");
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "line 3, column");
    CHECK(strstr(err_msg(), index) != NULL);
    write_text(index, "{\"weight_map\": {\"model.a\": \"part-1.safetensors\", "
                      "\"model.a\": \"part-2.safetensors\"}}");
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "duplicate");
    write_text(index, "{\"metadata\": {}}");
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "no \"weight_map\"");
    write_text(index, "{\"weight_map\": {\"model.a\": 3}}");
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "not a string");
    /* a bad shard header is reported with the shard's name */
    char *p1 = fs_join(dir, "part-1.safetensors");
    CHECK_OK(truncate(p1, 30));
    write_text(index, "{\"weight_map\": {\"model.a\": \"part-1.safetensors\"}}");
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "part-1.safetensors: ");
    /* without an index, two files are ambiguous */
    unlink(index);
    CHECK_FAILS_WITH(st_open_dir(dir, &set), "2 .safetensors files");
    CHECK(set == NULL);
    free(p1);
    free(index);
    free(dir);
}

static void test_dir_errors(void)
{
    st_set *set = NULL;
    char *empty = tmp_path("emptydir");
    CHECK_OK(mkdir(empty, 0755) == 0 ? 0 : -1);
    CHECK_FAILS_WITH(st_open_dir(empty, &set), "no model.safetensors.index.json");
    char *missing = tmp_path("nothere");
    CHECK_FAILS_WITH(st_open_dir(missing, &set), "not a folder");
    CHECK_FAILS_WITH(st_open_file(missing, &set), "cannot open");
    CHECK_FAILS_WITH(st_open_file(g_dir, &set), "not a regular file");
    free(empty);
    free(missing);
}

static void test_dtype_names(void)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        st_dtype dt;
        CHECK_OK(st_dtype_parse(st_dtype_name((st_dtype)i), &dt));
        CHECK_EQ(dt, i);
        CHECK(st_dtype_size((st_dtype)i) >= 1);
    }
    st_dtype dt;
    CHECK_FAILS_WITH(st_dtype_parse("F8_E5M2", &dt), "unsupported dtype 'F8_E5M2'");
    CHECK_EQ(st_dtype_size(ST_BF16), 2);
    CHECK_EQ(st_dtype_size(ST_F64), 8);
}

int main(void)
{
    g_dir = test_tmpdir("st");
    test_round_trip();
    test_no_metadata_and_overwrite();
    test_writer_errors();
    test_decode_exhaustive();
    test_round_specials();
    test_round_sweep();
    test_truncated();
    test_bad_headers();
    test_legal_corners();
    test_sharded();
    test_dir_errors();
    test_dtype_names();
    if (check_failed == 0) remove_tree(g_dir); /* keep it to debug a failure */
    free(g_dir);
    return check_finish();
}
