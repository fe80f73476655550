/* safetensors.c — formats layer: validated, mmap'd safetensors reader and an
 * atomic writer.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON header
 * (an object: tensor name -> {dtype, shape, data_offsets}, plus an optional
 * "__metadata__" string->string map), then the data area. Offsets are
 * relative to the data area. Every field is checked against the file before
 * any pointer into the mapping is handed out, so a corrupt or hostile file
 * gives an error, never an out-of-bounds read.
 */
#include "safetensors.h"
#include "err.h"
#include "fs.h"
#include "js.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

/* The reference implementation refuses headers above 100 MB; a real header
 * for a 7B shard is well under 100 KB. */
#define ST_MAX_HEADER_BYTES 100000000ULL
#define ST_INDEX_NAME "model.safetensors.index.json"

typedef struct {
    char *path;                 /* as opened; used in every message */
    const unsigned char *base;  /* whole file (or caller's buffer) */
    size_t size;
    bool mapped;                /* base is our mmap (else borrowed memory) */
} st_file;

struct st_set {
    st_file *files;
    int nfiles;
    st_tensor *tensors;         /* sorted by name; names owned */
    size_t ntensors;
    char **meta;                /* key, value, key, value ... (first file) */
    size_t nmeta;               /* number of pairs */
};

/* A name read from a file, made safe for a one-line message: control
 * characters become '?' and very long names are cut. Use as shown(x).s
 * within one expression (the array lives in a temporary). */
#define ST_SHOWN_MAX 160
typedef struct {
    char s[ST_SHOWN_MAX + 4];
} shown_name;

static shown_name shown(const char *name)
{
    shown_name out;
    size_t k = 0;
    for (; name[k] && k < ST_SHOWN_MAX; k++) {
        unsigned char c = (unsigned char)name[k];
        out.s[k] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (name[k]) {
        memcpy(out.s + k, "...", 3);
        k += 3;
    }
    out.s[k] = '\0';
    return out;
}

/* ---- dtypes ---------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} dtype_info[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},   [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},
};

const char *st_dtype_name(st_dtype dt)
{
    return (unsigned)dt < ST_DTYPE_COUNT ? dtype_info[dt].name : "?";
}

size_t st_dtype_size(st_dtype dt)
{
    return (unsigned)dt < ST_DTYPE_COUNT ? dtype_info[dt].size : 0;
}

int st_dtype_parse(const char *s, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    return ERR("unsupported dtype '%s' (supported: F32, F16, BF16, F64, I64, "
               "I32, I16, I8, U8, BOOL)", shown(s).s);
}

/* ---- scalar conversions --------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan: keep the payload in the top mantissa bits */
        return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    if (exp != 0)
        return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return f32_from_bits(sign);
    /* subnormal: mant * 2^-24, normalise so the leading 1 becomes implicit */
    int e = -14;
    while (!(mant & 0x400)) {
        mant <<= 1;
        e--;
    }
    mant &= 0x3ff;
    return f32_from_bits(sign | ((uint32_t)(e + 127) << 23) | (mant << 13));
}

float st_bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

/* Shift m right by `shift` bits rounding to nearest, ties to even. */
static uint32_t shift_round_even(uint32_t m, unsigned shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return q;
}

uint16_t st_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00;   /* NaN: quiet, as c10::Half */
    if (ax >= 0x477ff000u) return sign | 0x7c00;  /* >= 65520 rounds to inf */
    if (ax >= 0x38800000u) {                      /* normal half (>= 2^-14) */
        uint32_t exp = (ax >> 23) - 127 + 15;
        /* exponent and mantissa rounded together: a mantissa carry bumps
         * the exponent, which is exactly the right result */
        return sign | (uint16_t)shift_round_even((exp << 23) | (ax & 0x7fffff), 13);
    }
    if (ax < 0x33000000u) return sign;            /* <= 2^-25: rounds to 0 */
    /* subnormal half: value = m * 2^(e-23); count units of 2^-24 */
    int e = (int)(ax >> 23) - 127;               /* -25 .. -15 */
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    return sign | (uint16_t)shift_round_even(m, (unsigned)(-1 - e));
}

uint16_t st_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* as c10::BFloat16 */
    return (uint16_t)shift_round_even(x, 16);  /* overflow carries into inf */
}

/* ---- whole-tensor conversion ------------------------------------------- */

int st_to_f32(const st_tensor *t, float *dst)
{
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    /* the mapping gives no alignment guarantee: read element by element */
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, n * sizeof(float));
        return 0;
    case ST_F16:
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == ST_F16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
        }
        return 0;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return ERR("tensor '%s': dtype %s is not a floating type", t->name,
                   st_dtype_name(t->dtype));
    }
}

/* ---- header validation ----------------------------------------------- */

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A JSON integer >= 0, as int64. */
static bool json_nonneg_int(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static void format_shape(const st_tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld",
                              (long long)t->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int parse_dtype(const st_file *f, const char *name, const json_t *v,
                       st_dtype *out)
{
    if (!v) return ERR("%s: tensor '%s': missing \"dtype\"", f->path, name);
    if (!json_is_string(v))
        return ERR("%s: tensor '%s': \"dtype\" is not a string", f->path, name);
    if (st_dtype_parse(json_string_value(v), out) != 0)
        return err_context("%s: tensor '%s'", f->path, name);
    return 0;
}

static int parse_shape(const st_file *f, const char *name, const json_t *v,
                       st_tensor *t)
{
    if (!v) return ERR("%s: tensor '%s': missing \"shape\"", f->path, name);
    if (!json_is_array(v))
        return ERR("%s: tensor '%s': \"shape\" is not an array", f->path, name);
    size_t nd = json_array_size(v);
    if (nd > ST_MAX_DIMS)
        return ERR("%s: tensor '%s': shape has %zu dimensions, more than %d",
                   f->path, name, nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    int64_t numel = 1;
    bool zero = false, overflow = false;
    for (size_t d = 0; d < nd; d++) {
        int64_t dim;
        if (!json_nonneg_int(json_array_get(v, d), &dim))
            return ERR("%s: tensor '%s': shape[%zu] is not a non-negative integer",
                       f->path, name, d);
        t->shape[d] = dim;
        if (dim == 0)
            zero = true;
        else if (numel > INT64_MAX / dim)
            overflow = true;
        else
            numel *= dim;
    }
    /* an overflowing product saturates; it can never match the byte span */
    t->numel = zero ? 0 : overflow ? INT64_MAX : numel;
    return 0;
}

static int parse_offsets(const st_file *f, const char *name, const json_t *v,
                         int64_t *begin, int64_t *end)
{
    if (!v) return ERR("%s: tensor '%s': missing \"data_offsets\"", f->path, name);
    if (!json_is_array(v) || json_array_size(v) != 2 ||
        !json_nonneg_int(json_array_get(v, 0), begin) ||
        !json_nonneg_int(json_array_get(v, 1), end))
        return ERR("%s: tensor '%s': \"data_offsets\" is not [begin, end] with "
                   "non-negative integers", f->path, name);
    if (*end < *begin)
        return ERR("%s: tensor '%s': data_offsets [%lld, %lld] end before begin",
                   f->path, name, (long long)*begin, (long long)*end);
    return 0;
}

/* Parse and check one header entry; t->data points into the data area.
 * `name` is the tensor's name as shown in messages. */
static int parse_entry(const st_file *f, const char *name, const json_t *v,
                       const unsigned char *data, size_t data_size, st_tensor *t,
                       int64_t *begin, int64_t *end)
{
    if (!json_is_object(v))
        return ERR("%s: tensor '%s': entry is not an object", f->path, name);
    if (name[0] == '\0') return ERR("%s: a tensor has an empty name", f->path);
    if (parse_dtype(f, name, json_object_get(v, "dtype"), &t->dtype) != 0 ||
        parse_shape(f, name, json_object_get(v, "shape"), t) != 0 ||
        parse_offsets(f, name, json_object_get(v, "data_offsets"), begin, end) != 0)
        return -1;
    if ((uint64_t)*end > data_size)
        return ERR("%s: tensor '%s': data_offsets [%lld, %lld] end beyond the "
                   "%zu bytes of data", f->path, name, (long long)*begin,
                   (long long)*end, data_size);
    uint64_t span = (uint64_t)(*end - *begin);
    size_t esize = st_dtype_size(t->dtype);
    bool overflow = t->numel == INT64_MAX || (uint64_t)t->numel > UINT64_MAX / esize;
    if (overflow || (uint64_t)t->numel * esize != span) {
        char shape[160], need[48] = "too many bytes to count";
        format_shape(t, shape, sizeof shape);
        if (!overflow)
            snprintf(need, sizeof need, "%llu bytes",
                     (unsigned long long)((uint64_t)t->numel * esize));
        return ERR("%s: tensor '%s': shape %s of %s is %s but data_offsets "
                   "[%lld, %lld] span %llu", f->path, name, shape,
                   st_dtype_name(t->dtype), need, (long long)*begin,
                   (long long)*end, (unsigned long long)span);
    }
    t->data = data + *begin;
    t->nbytes = (size_t)span;
    return 0;
}

static int parse_metadata(const st_file *f, const json_t *v, char ***meta,
                          size_t *nmeta)
{
    if (!json_is_object(v))
        return ERR("%s: __metadata__ is not an object of strings", f->path);
    size_t n = json_object_size(v), i = 0;
    char **kv = xcalloc(2 * n + 1, sizeof *kv);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (!json_is_string(val)) {
            for (size_t j = 0; j < 2 * i; j++) free(kv[j]);
            free(kv);
            return ERR("%s: __metadata__: \"%s\" is not a string", f->path,
                       shown(key).s);
        }
        kv[2 * i] = xstrdup(key);
        kv[2 * i + 1] = xstrdup(json_string_value(val));
        i++;
    }
    *meta = kv;
    *nmeta = n;
    return 0;
}

typedef struct {
    int64_t begin, end;
    const char *name;
} span_ref;

static int cmp_span(const void *a, const void *b)
{
    const span_ref *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* No two tensors may share a byte (empty tensors share nothing). */
static int check_overlaps(const st_file *f, span_ref *spans, size_t n)
{
    qsort(spans, n, sizeof *spans, cmp_span);
    const span_ref *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (spans[i].begin == spans[i].end) continue;
        if (prev && spans[i].begin < prev->end)
            return ERR("%s: tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap",
                       f->path, shown(prev->name).s, (long long)prev->begin,
                       (long long)prev->end, shown(spans[i].name).s,
                       (long long)spans[i].begin, (long long)spans[i].end);
        prev = &spans[i];
    }
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static void free_tensors(st_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++) free((char *)t[i].name);
    free(t);
}

static void free_meta(char **kv, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) free(kv[i]);
    free(kv);
}

/* Locate and parse the JSON header of a file. */
static json_t *load_header(const st_file *f, size_t *header_len)
{
    if (f->size < 8) {
        ERR("%s: file is %zu bytes, too short for the 8-byte header length",
            f->path, f->size);
        return NULL;
    }
    uint64_t n = read_le64(f->base);
    if (n > ST_MAX_HEADER_BYTES) {
        ERR("%s: header length %llu exceeds the %llu-byte limit (not a "
            "safetensors file?)", f->path, (unsigned long long)n,
            ST_MAX_HEADER_BYTES);
        return NULL;
    }
    if (n > f->size - 8) {
        ERR("%s: header length %llu beyond the file's %zu bytes (truncated?)",
            f->path, (unsigned long long)n, f->size);
        return NULL;
    }
    json_error_t e;
    json_t *root = json_loadb((const char *)f->base + 8, (size_t)n,
                              JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        ERR("%s: header is not valid JSON: line %d, column %d: %s", f->path,
            e.line, e.column, shown(e.text).s);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        ERR("%s: header is not a JSON object", f->path);
        return NULL;
    }
    *header_len = (size_t)n;
    return root;
}

/* Parse a file's header into tensors sorted by name, plus its metadata. */
static int parse_file(const st_file *f, int file_index, st_tensor **out,
                      size_t *nout, char ***meta, size_t *nmeta)
{
    size_t hlen;
    json_t *root = load_header(f, &hlen);
    if (!root) return -1;
    const unsigned char *data = f->base + 8 + hlen;
    size_t data_size = f->size - 8 - hlen;
    size_t cap = json_object_size(root), n = 0;
    st_tensor *ts = xcalloc(cap + 1, sizeof *ts);
    span_ref *spans = xcalloc(cap + 1, sizeof *spans);
    *meta = NULL;
    *nmeta = 0;
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(f, val, meta, nmeta);
        } else {
            st_tensor *t = &ts[n];
            rc = parse_entry(f, shown(key).s, val, data, data_size, t, &spans[n].begin,
                             &spans[n].end);
            if (rc == 0) {
                t->name = xstrdup(key);
                t->file_index = file_index;
                spans[n].name = t->name;
                n++;
            }
        }
        if (rc != 0) break;
    }
    if (rc == 0) rc = check_overlaps(f, spans, n);
    free(spans);
    json_decref(root);
    if (rc != 0) {
        free_tensors(ts, n);
        free_meta(*meta, *nmeta);
        *meta = NULL;
        *nmeta = 0;
        return -1;
    }
    qsort(ts, n, sizeof *ts, cmp_tensor_name);
    *out = ts;
    *nout = n;
    return 0;
}

/* ---- files ---------------------------------------------------------------- */

static int map_file(const char *path, st_file *f)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    CHECK_IO(fd >= 0, "%s: cannot open", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        err_errno_at(__FILE__, __LINE__, "%s: cannot stat", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ERR("%s: not a regular file", path);
    }
    f->path = xstrdup(path);
    f->size = (size_t)sb.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            err_errno_at(__FILE__, __LINE__, "%s: cannot mmap %zu bytes", path,
                         f->size);
            close(fd);
            free(f->path);
            f->path = NULL;
            return -1;
        }
        f->base = p;
        f->mapped = true;
    }
    close(fd); /* the mapping keeps the file alive */
    return 0;
}

static void unmap_file(st_file *f)
{
    if (f->mapped) munmap((void *)f->base, f->size);
    free(f->path);
}

void st_close(st_set *set)
{
    if (!set) return;
    for (int i = 0; i < set->nfiles; i++) unmap_file(&set->files[i]);
    free(set->files);
    free_tensors(set->tensors, set->ntensors);
    free_meta(set->meta, set->nmeta);
    free(set);
}

/* A set of one already-mapped (or borrowed) file; takes ownership of f. */
static int open_single(st_file *f, st_set **out)
{
    st_set *set = xcalloc(1, sizeof *set);
    set->files = xmalloc(sizeof *set->files);
    set->files[0] = *f;
    set->nfiles = 1;
    if (parse_file(&set->files[0], 0, &set->tensors, &set->ntensors, &set->meta,
                   &set->nmeta) != 0) {
        st_close(set);
        return -1;
    }
    *out = set;
    return 0;
}

int st_open_file(const char *path, st_set **out)
{
    *out = NULL;
    st_file f;
    if (map_file(path, &f) != 0) return -1;
    return open_single(&f, out);
}

int st_open_mem(const void *buf, size_t len, const char *name, st_set **out)
{
    *out = NULL;
    st_file f = {.path = xstrdup(name), .base = buf, .size = len, .mapped = false};
    return open_single(&f, out);
}

/* ---- sharded sets ------------------------------------------------------ */

/* Shard names must stay inside the model folder. */
static int check_shard_name(const char *index, const char *tensor, const char *shard)
{
    bool control = false;
    for (const char *c = shard; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) control = true;
    if (shard[0] == '\0' || shard[0] == '/' || strstr(shard, "..") != NULL || control)
        return ERR("%s: tensor '%s': shard file name '%s' is empty, absolute, "
                   "leaves the folder or holds control characters", index,
                   shown(tensor).s, shown(shard).s);
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct shard names of a weight map, sorted. */
static int list_shards(const char *index, json_t *map, const char ***out, int *nout)
{
    size_t n = 0, cap = json_object_size(map);
    const char **names = xcalloc(cap + 1, sizeof *names);
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val) {
        if (!json_is_string(val)) {
            free(names);
            return ERR("%s: weight_map: tensor '%s': file name is not a string",
                       index, shown(key).s);
        }
        const char *shard = json_string_value(val);
        if (check_shard_name(index, key, shard) != 0) {
            free(names);
            return -1;
        }
        names[n++] = shard;
    }
    qsort(names, n, sizeof *names, cmp_str_ptr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(names[k - 1], names[i]) != 0) names[k++] = names[i];
    *out = names;
    *nout = (int)k;
    return 0;
}

static int shard_index_of(const char **shards, int n, const char *name)
{
    const char **p = bsearch(&name, shards, (size_t)n, sizeof *shards, cmp_str_ptr);
    return p ? (int)(p - shards) : -1;
}

typedef struct {
    st_tensor *tensors;
    size_t n;
} shard_tensors;

/* Map every shard and parse its header. */
static int open_shards(const char *index, const char *dir, const char **names,
                       st_set *set, shard_tensors *per)
{
    set->files = xcalloc((size_t)set->nfiles, sizeof *set->files);
    for (int i = 0; i < set->nfiles; i++) {
        char *path = fs_join(dir, names[i]);
        int rc = map_file(path, &set->files[i]);
        free(path);
        if (rc != 0) return err_context("%s", index);
        char **meta;
        size_t nmeta;
        if (parse_file(&set->files[i], i, &per[i].tensors, &per[i].n, &meta,
                       &nmeta) != 0)
            return -1;
        if (i == 0) {
            set->meta = meta;
            set->nmeta = nmeta;
        } else {
            free_meta(meta, nmeta);
        }
    }
    return 0;
}

/* The set's tensors are exactly those the weight map names, each taken from
 * the shard the map says holds it. */
static int collect_mapped(const char *index, json_t *map, const char **shards,
                          st_set *set, shard_tensors *per)
{
    set->tensors = xcalloc(json_object_size(map) + 1, sizeof *set->tensors);
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val) {
        const char *shard = json_string_value(val);
        int fi = shard_index_of(shards, set->nfiles, shard);
        st_tensor probe = {.name = key};
        const st_tensor *t = bsearch(&probe, per[fi].tensors, per[fi].n,
                                     sizeof probe, cmp_tensor_name);
        if (!t)
            return ERR("%s: tensor '%s' is mapped to %s, which does not contain it",
                       index, shown(key).s, shard);
        set->tensors[set->ntensors] = *t;
        set->tensors[set->ntensors].name = xstrdup(key);
        set->ntensors++;
    }
    qsort(set->tensors, set->ntensors, sizeof *set->tensors, cmp_tensor_name);
    return 0;
}

static json_t *load_weight_map(const char *index, json_t **root)
{
    *root = js_load_file_flags(index, JSON_REJECT_DUPLICATES);
    if (!*root) return NULL;
    json_t *map = json_is_object(*root) ? json_object_get(*root, "weight_map") : NULL;
    if (!json_is_object(map)) {
        ERR("%s: no \"weight_map\" object", index);
        return NULL;
    }
    if (json_object_size(map) == 0) {
        ERR("%s: \"weight_map\" is empty", index);
        return NULL;
    }
    return map;
}

int st_open_index(const char *index, st_set **out)
{
    *out = NULL;
    json_t *root = NULL;
    json_t *map = load_weight_map(index, &root);
    const char **shards = NULL;
    int nshards = 0;
    if (!map || list_shards(index, map, &shards, &nshards) != 0) {
        json_decref(root);
        return -1;
    }
    st_set *set = xcalloc(1, sizeof *set);
    set->nfiles = nshards;
    shard_tensors *per = xcalloc((size_t)nshards, sizeof *per);
    char *dir = fs_dir_of(index);
    int rc = open_shards(index, dir, shards, set, per);
    if (rc == 0) rc = collect_mapped(index, map, shards, set, per);
    for (int i = 0; i < nshards; i++) free_tensors(per[i].tensors, per[i].n);
    free(per);
    free(dir);
    free(shards);
    json_decref(root);
    if (rc != 0) {
        st_close(set); /* shards not reached are zeroed: nothing to unmap */
        return -1;
    }
    *out = set;
    return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The folder's only *.safetensors file (malloc'd path). */
static char *only_safetensors_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        err_errno_at(__FILE__, __LINE__, "%s: cannot open folder", dir);
        return NULL;
    }
    char *found = NULL;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!has_suffix(e->d_name, ".safetensors")) continue;
        if (count++ == 0) found = fs_join(dir, e->d_name);
    }
    closedir(d);
    if (count == 1) return found;
    free(found);
    if (count == 0)
        ERR("%s: no %s, model.safetensors or other .safetensors file", dir,
            ST_INDEX_NAME);
    else
        ERR("%s: %d .safetensors files but no %s to say which to use", dir, count,
            ST_INDEX_NAME);
    return NULL;
}

int st_open_dir(const char *dir, st_set **out)
{
    *out = NULL;
    if (!fs_is_dir(dir)) return ERR("%s: not a folder", dir);
    char *index = fs_join(dir, ST_INDEX_NAME);
    if (fs_is_file(index)) {
        int rc = st_open_index(index, out);
        free(index);
        return rc;
    }
    free(index);
    char *single = fs_join(dir, "model.safetensors");
    if (!fs_is_file(single)) {
        free(single);
        single = only_safetensors_in(dir);
        if (!single) return -1;
    }
    int rc = st_open_file(single, out);
    free(single);
    return rc;
}

/* ---- queries ------------------------------------------------------------ */

size_t st_count(const st_set *set) { return set->ntensors; }

const st_tensor *st_at(const st_set *set, size_t i)
{
    return i < set->ntensors ? &set->tensors[i] : NULL;
}

const st_tensor *st_find(const st_set *set, const char *name)
{
    st_tensor probe = {.name = name};
    return bsearch(&probe, set->tensors, set->ntensors, sizeof probe,
                   cmp_tensor_name);
}

const char *st_file_path(const st_set *set, int file_index)
{
    return file_index >= 0 && file_index < set->nfiles
               ? set->files[file_index].path
               : NULL;
}

int st_file_count(const st_set *set) { return set->nfiles; }

const char *st_metadata(const st_set *set, const char *key)
{
    for (size_t i = 0; i < set->nmeta; i++)
        if (strcmp(set->meta[2 * i], key) == 0) return set->meta[2 * i + 1];
    return NULL;
}

/* ---- writer ------------------------------------------------------------- */

static int tensor_bytes(const st_write_tensor *t, uint64_t *out)
{
    if ((unsigned)t->dtype >= ST_DTYPE_COUNT)
        return ERR("tensor '%s': invalid dtype %d", t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return ERR("tensor '%s': %d dimensions (0 to %d allowed)", t->name,
                   t->ndim, ST_MAX_DIMS);
    uint64_t n = st_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            return ERR("tensor '%s': shape[%d] is negative", t->name, d);
        if (t->shape[d] && n > (uint64_t)INT64_MAX / (uint64_t)t->shape[d])
            return ERR("tensor '%s': size overflows", t->name);
        n *= (uint64_t)t->shape[d];
    }
    if (n > 0 && !t->data) return ERR("tensor '%s': no data", t->name);
    *out = n;
    return 0;
}

static json_t *write_entry(const st_write_tensor *t, uint64_t begin, uint64_t end)
{
    json_t *shape = json_array();
    for (int d = 0; d < t->ndim; d++)
        json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
    return json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(t->dtype),
                     "shape", shape, "data_offsets", (json_int_t)begin,
                     (json_int_t)end);
}

/* Header JSON for the tensors in order, padded with spaces to 8 bytes. */
static char *build_header(const st_write_tensor *ts, size_t n,
                          const char *const *metadata, size_t *len)
{
    json_t *root = json_object();
    if (metadata && metadata[0]) {
        json_t *m = json_object();
        for (size_t i = 0; metadata[i]; i += 2) {
            if (!metadata[i + 1]) {
                json_decref(m);
                json_decref(root);
                ERR("metadata key '%s' has no value", metadata[i]);
                return NULL;
            }
            if (json_object_set_new(m, metadata[i], json_string(metadata[i + 1]))) {
                json_decref(m);
                json_decref(root);
                ERR("metadata '%s': not valid UTF-8", metadata[i]);
                return NULL;
            }
        }
        json_object_set_new(root, "__metadata__", m);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t nb;
        if (!ts[i].name || !ts[i].name[0] || strcmp(ts[i].name, "__metadata__") == 0) {
            json_decref(root);
            ERR("tensor %zu: invalid name '%s'", i, ts[i].name ? ts[i].name : "");
            return NULL;
        }
        if (json_object_get(root, ts[i].name)) {
            json_decref(root);
            ERR("tensor '%s' is given twice", ts[i].name);
            return NULL;
        }
        if (tensor_bytes(&ts[i], &nb) != 0) {
            json_decref(root);
            return NULL;
        }
        if (json_object_set_new(root, ts[i].name, write_entry(&ts[i], off, off + nb))) {
            json_decref(root);
            ERR("tensor '%s': name is not valid UTF-8", ts[i].name);
            return NULL;
        }
        off += nb;
    }
    char *js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!js) {
        ERR("cannot encode the header (invalid UTF-8 in a name?)");
        return NULL;
    }
    size_t n0 = strlen(js), padded = (n0 + 7) & ~(size_t)7;
    js = xrealloc(js, padded + 1);
    memset(js + n0, ' ', padded - n0);
    js[padded] = '\0';
    *len = padded;
    return js;
}

static int write_all(FILE *fp, const void *p, size_t n, const char *tmp)
{
    if (n > 0 && fwrite(p, 1, n, fp) != n)
        return err_errno_at(__FILE__, __LINE__, "%s: write failed", tmp);
    return 0;
}

static int write_body(FILE *fp, const char *tmp, const char *header, size_t hlen,
                      const st_write_tensor *ts, size_t n)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    if (write_all(fp, len8, 8, tmp) || write_all(fp, header, hlen, tmp)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t nb;
        tensor_bytes(&ts[i], &nb); /* validated while building the header */
        if (write_all(fp, ts[i].data, (size_t)nb, tmp)) return -1;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        return err_errno_at(__FILE__, __LINE__, "%s: cannot flush to disk", tmp);
    return 0;
}

int st_write_file(const char *path, const st_write_tensor *tensors, size_t n,
                  const char *const *metadata)
{
    size_t hlen;
    char *header = build_header(tensors, n, metadata, &hlen);
    if (!header) return err_context("%s", path);
    /* stream to PATH.tmp.PID then rename, so readers never see half a file
     * and the tensors are never copied into one big buffer */
    size_t tn = strlen(path) + 32;
    char *tmp = xmalloc(tn);
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    int rc = fp ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot create", tmp);
    if (rc == 0) rc = write_body(fp, tmp, header, hlen, tensors, n);
    if (fp && fclose(fp) != 0 && rc == 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot close", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", tmp, path);
    if (rc != 0 && fp) unlink(tmp);
    free(tmp);
    free(header);
    return rc;
}
