/* sima-prep-export.c — sima-prep export (any sima file's main group as JSON
 * Lines, a prompts file's images as files) and sima-prep info (schema,
 * groups and row counts, provenance attributes). */
#define _GNU_SOURCE
#include "sima-prep.h"

#include "err.h"
#include "fs.h"
#include "h5io.h"
#include "h5util.h"
#include "log.h"
#include "strbuf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================ reading any sima file === */

/* Open FILE on rank 0 alone and check that it is a sima file; *schema is
 * its schema name (malloc'd). Files of a known schema must be of a version
 * we read. */
static int open_sima_file(const char *path, h5io_file *f, char **schema)
{
    if (h5io_open(f, path, MPI_COMM_SELF) != 0) return -1;
    *schema = h5io_get_attr_str(f, "/", "schema");
    if (!*schema) {
        h5io_close(f);
        return ERR("%s: not a sima file (no \"schema\" attribute at its root)", path);
    }
    err_clear();
    static const char *known[] = {"sima.prompts", "sima.responses"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(*schema, known[i]) && h5io_require_schema(f, known[i], 1) != 0) {
            free(*schema);
            *schema = NULL;
            h5io_close(f);
            return -1;
        }
    return 0;
}

typedef struct {
    char **v;
    size_t n, cap;
} name_list;

static void names_push(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = xstrdup(s);
}

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static herr_t collect_link(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    names_push(data, name);
    return 0;
}

/* Members of a group, in creation order where the file tracks it, else by
 * name. */
static int list_members(h5io_file *f, const char *group, name_list *out)
{
    hid_t g = H5Gopen2(f->file, group, H5P_DEFAULT);
    if (g < 0) return ERR("%s: %s: not a group", f->path, group);
    hsize_t idx = 0;
    herr_t rc = H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_link, out);
    if (rc < 0) {
        names_free(out);
        idx = 0;
        rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, out);
    }
    H5Gclose(g);
    if (rc < 0) return ERR("%s: %s: cannot list its members", f->path, group);
    return 0;
}

static bool is_group(h5io_file *f, const char *path)
{
    if (!h5io_exists(f, path)) return false;
    hid_t g = H5Gopen2(f->file, path, H5P_DEFAULT);
    if (g < 0) return false;
    H5Gclose(g);
    return true;
}

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* ============================================================= export === */

/* One column of the group being exported, and the rows of the current chunk. */
typedef struct {
    char *key, *path;
    bool ragged, text;
    h5io_type type;
    int width;           /* elements per row of a plain column */
    char *labels[256];   /* code -> name (responses kind, finish), NULL: none */
    bool image_ref;      /* prompts/image: a row of /images, shown by its name */
    void *data;          /* the chunk's elements */
    int64_t *offsets;    /* ragged: [chunk + 1] */
} column;

static size_t type_size(h5io_type t)
{
    switch (t) {
    case H5IO_I8: case H5IO_U8: case H5IO_TEXT: return 1;
    case H5IO_I32: case H5IO_F32: return 4;
    default: return 8;
    }
}

/* The h5io type and row width of a dataset, from its HDF5 type and shape. */
static int dataset_type(h5io_file *f, const char *path, h5io_type *type, int *width)
{
    hid_t d = H5Dopen2(f->file, path, H5P_DEFAULT);
    if (d < 0) return ERR("%s: %s: cannot open the dataset", f->path, path);
    hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
    H5T_class_t cls = H5Tget_class(ty);
    size_t size = H5Tget_size(ty);
    bool sign = H5Tget_sign(ty) == H5T_SGN_2;
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Tclose(ty);
    H5Sclose(sp);
    H5Dclose(d);
    hsize_t w = 1;
    for (int i = 1; i < nd; i++) w *= dims[i];
    *width = (int)w;
    if (cls == H5T_INTEGER && size == 1) *type = sign ? H5IO_I8 : H5IO_U8;
    else if (cls == H5T_INTEGER && size == 4 && sign) *type = H5IO_I32;
    else if (cls == H5T_INTEGER && size == 8) *type = sign ? H5IO_I64 : H5IO_U64;
    else if (cls == H5T_FLOAT && size == 4) *type = H5IO_F32;
    else if (cls == H5T_FLOAT && size == 8) *type = H5IO_F64;
    else return ERR("%s: %s: element type not supported by export", f->path, path);
    if (nd < 1 || w > INT_MAX) return ERR("%s: %s: unexpected shape", f->path, path);
    return 0;
}

/* "0=greedy,1=sampled" (the "names" attribute of a code column). */
static void parse_labels(const char *spec, char **labels)
{
    char *copy = xstrdup(spec), *save = NULL;
    for (char *item = strtok_r(copy, ",;\n", &save); item; item = strtok_r(NULL, ",;\n", &save)) {
        char *end;
        long code = strtol(item, &end, 10);
        while (*end == ' ') end++;
        if (end == item || (*end != '=' && *end != ':') || code < 0 || code > 255) continue;
        end++;
        while (*end == ' ') end++;
        free(labels[code]);
        labels[code] = xstrdup(end);
    }
    free(copy);
}

/* What the schema documents, for files that lack the attribute. */
static const char *default_labels(const char *schema, const char *name)
{
    if (!strcmp(schema, "sima.responses") && !strcmp(name, "kind")) return "0=greedy,1=sampled";
    if (!strcmp(schema, "sima.responses") && !strcmp(name, "finish"))
        return "1=eos,2=length,3=context";
    return NULL;
}

static int describe_column(h5io_file *f, const char *schema, const char *group,
                           const char *name, column *c)
{
    memset(c, 0, sizeof *c);
    c->key = xstrdup(name);
    c->path = join_path(group, name);
    char *offsets = join_path(c->path, "offsets"), *data = join_path(c->path, "data");
    c->ragged = h5io_exists(f, offsets) && h5io_exists(f, data);
    int rc = 0;
    if (!c->ragged && !h5io_exists(f, c->path))
        rc = ERR("%s: %s: missing (a %s file should have it)", f->path, c->path, schema);
    if (rc == 0) rc = dataset_type(f, c->ragged ? data : c->path, &c->type, &c->width);
    if (rc == 0 && c->ragged && c->type == H5IO_U8) {
        char *enc = h5io_get_attr_str(f, c->path, "encoding");
        if (!enc) enc = h5io_get_attr_str(f, data, "encoding");
        c->text = enc != NULL;
        free(enc);
    }
    if (rc == 0 && !c->ragged) {
        char *spec = h5io_get_attr_str(f, c->path, "names");
        const char *dflt = default_labels(schema, name);
        if (spec || dflt) parse_labels(spec ? spec : dflt, c->labels);
        free(spec);
        c->image_ref = !strcmp(schema, "sima.prompts") && !strcmp(c->path, "/prompts/image");
    }
    if (rc == 0) err_clear(); /* lookups of absent attributes may leave a message */
    free(offsets);
    free(data);
    return rc;
}

static void column_free(column *c)
{
    free(c->key);
    free(c->path);
    for (int i = 0; i < 256; i++) free(c->labels[i]);
    free(c->data);
    free(c->offsets);
}

/* Read rows [row0, row0 + n) of a column into c->data (and c->offsets). */
static int read_chunk(h5io_file *f, column *c, int64_t row0, int64_t n)
{
    free(c->data);
    c->data = NULL;
    if (c->ragged) {
        c->offsets = xrealloc(c->offsets, ((size_t)n + 1) * sizeof *c->offsets);
        return h5io_read_ragged(f, c->path, c->text ? H5IO_TEXT : c->type, row0, n, c->offsets,
                                &c->data);
    }
    c->data = xmalloc((size_t)n * (size_t)c->width * type_size(c->type) + 1);
    return h5io_read_column(f, c->path, c->type, row0, n, c->data);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    else return 0;
    if (n < len) return 0;
    uint32_t cp = c & (0x3Fu >> (len - 1));
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD, so the line stays
 * valid JSON whatever the file holds. */
static void emit_string(strbuf *o, const char *s, size_t n)
{
    strbuf_putc(o, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (esc) {
            strbuf_puts(o, esc);
            i++;
        } else if (c < 0x20) {
            strbuf_printf(o, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len) strbuf_put(o, s + i, len);
            else strbuf_puts(o, "\xEF\xBF\xBD");
            i += len ? len : 1;
        }
    }
    strbuf_putc(o, '"');
}

/* The shortest decimal that reads back as the same value; JSON has no
 * infinities or NaN, so those become null. */
static void emit_real(strbuf *o, double v, bool single)
{
    if (!isfinite(v)) {
        strbuf_puts(o, "null");
        return;
    }
    char s[40];
    for (int digits = single ? 6 : 15; digits <= 17; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, v);
        double back = strtod(s, NULL);
        if (single ? (float)back == (float)v : back == v) break;
    }
    strbuf_puts(o, s);
}

static void emit_element(strbuf *o, h5io_type t, const void *base, int64_t i)
{
    switch (t) {
    case H5IO_I8: strbuf_printf(o, "%d", ((const int8_t *)base)[i]); break;
    case H5IO_U8: case H5IO_TEXT: strbuf_printf(o, "%u", ((const uint8_t *)base)[i]); break;
    case H5IO_I32: strbuf_printf(o, "%" PRId32, ((const int32_t *)base)[i]); break;
    case H5IO_I64: strbuf_printf(o, "%" PRId64, ((const int64_t *)base)[i]); break;
    case H5IO_U64: strbuf_printf(o, "%" PRIu64, ((const uint64_t *)base)[i]); break;
    case H5IO_F32: emit_real(o, ((const float *)base)[i], true); break;
    case H5IO_F64: emit_real(o, ((const double *)base)[i], false); break;
    }
}

static int64_t element_as_i64(h5io_type t, const void *base, int64_t i)
{
    switch (t) {
    case H5IO_I8: return ((const int8_t *)base)[i];
    case H5IO_U8: case H5IO_TEXT: return ((const uint8_t *)base)[i];
    case H5IO_I32: return ((const int32_t *)base)[i];
    case H5IO_I64: return ((const int64_t *)base)[i];
    default: return -1;
    }
}

static void emit_array(strbuf *o, h5io_type t, const void *base, int64_t from, int64_t to)
{
    strbuf_putc(o, '[');
    for (int64_t i = from; i < to; i++) {
        if (i > from) strbuf_putc(o, ',');
        emit_element(o, t, base, i);
    }
    strbuf_putc(o, ']');
}

/* The names of the images of a prompts file: row i is
 * data[offsets[i] : offsets[i + 1]]. */
typedef struct {
    int64_t n;
    int64_t *offsets;
    char *data;
} image_names;

static void emit_value(strbuf *o, const column *c, int64_t r, const image_names *images)
{
    if (c->ragged && c->text) {
        emit_string(o, (const char *)c->data + c->offsets[r], (size_t)(c->offsets[r + 1] -
                                                                      c->offsets[r]));
    } else if (c->ragged) {
        emit_array(o, c->type, c->data, c->offsets[r], c->offsets[r + 1]);
    } else if (c->width > 1) {
        emit_array(o, c->type, c->data, r * c->width, (r + 1) * c->width);
    } else if (c->image_ref) {
        int64_t v = element_as_i64(c->type, c->data, r);
        if (v < 0) strbuf_puts(o, "null");
        else if (v < images->n)
            emit_string(o, images->data + images->offsets[v],
                        (size_t)(images->offsets[v + 1] - images->offsets[v]));
        else emit_element(o, c->type, c->data, r);
    } else {
        int64_t v = element_as_i64(c->type, c->data, r);
        if (v >= 0 && v < 256 && c->labels[v]) emit_string(o, c->labels[v], strlen(c->labels[v]));
        else emit_element(o, c->type, c->data, r);
    }
}

/* The group a file's rows live in, and the columns to show in order. */
static const char *const PROMPT_COLUMNS[] = {"id", "question", "ground_truth", "image", NULL};
static const char *const RESPONSE_COLUMNS[] = {"prompt", "candidate", "kind", "seed", "text",
                                               "tokens", "sum_logprob", "finish", NULL};

static int export_layout(h5io_file *f, const char *schema, char **group, name_list *cols)
{
    const char *const *known = !strcmp(schema, "sima.prompts")     ? PROMPT_COLUMNS
                               : !strcmp(schema, "sima.responses") ? RESPONSE_COLUMNS
                                                                   : NULL;
    if (known) {
        *group = xstrdup(known == PROMPT_COLUMNS ? "/prompts" : "/responses");
        for (const char *const *k = known; *k; k++) names_push(cols, *k);
        return 0;
    }
    /* an unknown schema: every column of the first group */
    name_list top = {0};
    if (list_members(f, "/", &top) != 0) return -1;
    *group = NULL;
    for (size_t i = 0; i < top.n && !*group; i++) {
        char *path = join_path("", top.v[i]);
        if (is_group(f, path)) *group = path;
        else free(path);
    }
    names_free(&top);
    if (!*group) return ERR("%s: a %s file with no group to export", f->path, schema);
    return list_members(f, *group, cols);
}

static int read_image_names(h5io_file *f, image_names *names)
{
    names->n = h5io_rows(f, "/images/name");
    if (names->n < 0) return -1;
    names->offsets = xmalloc(((size_t)names->n + 1) * sizeof *names->offsets);
    return h5io_read_ragged(f, "/images/name", H5IO_TEXT, 0, names->n, names->offsets,
                            (void **)&names->data);
}

enum { EXPORT_CHUNK = 1024 };

/* One JSON object per row of the group, EXPORT_CHUNK rows at a time. */
static int export_rows(h5io_file *f, const char *schema, FILE *out)
{
    char *group = NULL;
    name_list names = {0};
    column *cols = NULL;
    image_names images = {0};
    int64_t n_rows = -1;
    int rc = export_layout(f, schema, &group, &names);
    if (rc == 0) cols = xcalloc(names.n + 1, sizeof *cols);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        rc = describe_column(f, schema, group, names.v[i], &cols[i]);
        int64_t n = rc == 0 ? h5io_rows(f, cols[i].path) : -1;
        if (rc == 0 && n < 0) rc = -1;
        if (rc == 0 && n_rows >= 0 && n != n_rows)
            rc = ERR("%s: %s has %" PRId64 " rows, %s %" PRId64, f->path, cols[i].path, n,
                     cols[0].path, n_rows);
        n_rows = n;
    }
    if (rc == 0 && !strcmp(schema, "sima.prompts")) rc = read_image_names(f, &images);
    strbuf line = {0};
    for (int64_t row0 = 0; rc == 0 && row0 < n_rows; row0 += EXPORT_CHUNK) {
        int64_t n = n_rows - row0 < EXPORT_CHUNK ? n_rows - row0 : EXPORT_CHUNK;
        for (size_t i = 0; rc == 0 && i < names.n; i++) rc = read_chunk(f, &cols[i], row0, n);
        for (int64_t r = 0; rc == 0 && r < n; r++) {
            line.len = 0;
            strbuf_putc(&line, '{');
            for (size_t i = 0; i < names.n; i++) {
                if (i) strbuf_putc(&line, ',');
                emit_string(&line, cols[i].key, strlen(cols[i].key));
                strbuf_putc(&line, ':');
                emit_value(&line, &cols[i], r, &images);
            }
            strbuf_puts(&line, "}\n");
            if (fwrite(line.s, 1, line.len, out) != line.len)
                rc = err_errno_at(__FILE__, __LINE__, "cannot write the JSON output");
        }
    }
    strbuf_free(&line);
    for (size_t i = 0; cols && i < names.n; i++) column_free(&cols[i]);
    free(cols);
    names_free(&names);
    free(group);
    free(images.offsets);
    free(images.data);
    return rc;
}

/* Create the folders above a file, like mkdir -p. */
static int make_parents(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = strchr(p + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = err_errno_at(__FILE__, __LINE__, "%s: cannot create the folder", p);
        else if (!fs_is_dir(p))
            rc = ERR("%s: exists and is not a folder", p);
        *s = '/';
    }
    free(p);
    return rc;
}

/* An image name may become a path under DIR only if it stays there. */
static bool name_stays_inside(const char *name)
{
    if (!*name || name[0] == '/') return false;
    for (const char *s = name; *s;) {
        size_t len = strcspn(s, "/");
        if (len == 2 && s[0] == '.' && s[1] == '.') return false;
        s += len;
        while (*s == '/') s++;
    }
    return true;
}

/* Write each stored image back out as DIR/NAME, byte for byte. */
static int export_images(h5io_file *f, const char *dir)
{
    image_names names = {0};
    int rc = read_image_names(f, &names);
    int64_t offsets[2];
    for (int64_t i = 0; rc == 0 && i < names.n; i++) {
        char *name = names.data + names.offsets[i];
        size_t len = (size_t)(names.offsets[i + 1] - names.offsets[i]);
        char saved = name[len];
        name[len] = '\0'; /* names are stored back to back */
        void *jpeg = NULL;
        if (!name_stays_inside(name)) {
            rc = ERR("%s: image %" PRId64 " \"%s\" would be written outside %s", f->path, i,
                     name, dir);
        } else {
            char *path = fs_join(dir, name);
            rc = h5io_read_ragged(f, "/images/jpeg", H5IO_U8, i, 1, offsets, &jpeg);
            if (rc == 0) rc = make_parents(path);
            if (rc == 0) rc = fs_write_atomic(path, jpeg, (size_t)offsets[1]);
            free(path);
        }
        free(jpeg);
        name[len] = saved;
    }
    if (rc == 0) log_info("wrote %" PRId64 " images under %s", names.n, dir);
    free(names.offsets);
    free(names.data);
    return rc;
}

/* Open OUT under a temporary name (*tmp), renamed into place by
 * finish_output when complete; NULL OUT: stdout. */
static int start_output(const char *out_path, char **tmp, FILE **out)
{
    *tmp = NULL;
    *out = stdout;
    if (!out_path) return 0;
    size_t n = strlen(out_path) + 32;
    *tmp = xmalloc(n);
    snprintf(*tmp, n, "%s.tmp.%ld", out_path, (long)getpid());
    *out = fopen(*tmp, "w");
    if (!*out) return err_errno_at(__FILE__, __LINE__, "%s: cannot create", *tmp);
    return 0;
}

/* Flush stdout, or close and rename the temporary file (removed on failure). */
static int finish_output(const char *out_path, const char *tmp, FILE *out, int rc)
{
    if (!out_path) {
        if (fflush(stdout) != 0 && rc == 0)
            rc = err_errno_at(__FILE__, __LINE__, "stdout: cannot write");
        return rc;
    }
    if (!out) return rc;
    if (fclose(out) != 0 && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", tmp);
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", tmp, out_path);
    if (rc != 0) unlink(tmp);
    return rc;
}

static int export_file(const char *path, const char *out_path, const char *images_dir)
{
    h5io_file f;
    char *schema = NULL, *tmp = NULL;
    if (open_sima_file(path, &f, &schema) != 0) return -1;
    int rc = 0;
    if (images_dir && !h5io_exists(&f, "/images/jpeg"))
        rc = ERR("%s: holds no images (only sima.prompts files do)", path);
    if (rc == 0) {
        FILE *out;
        rc = start_output(out_path, &tmp, &out);
        if (rc == 0) rc = export_rows(&f, schema, out);
        rc = finish_output(out_path, tmp, out, rc);
    }
    if (rc == 0 && images_dir) rc = export_images(&f, images_dir);
    free(tmp);
    free(schema);
    h5io_close(&f);
    return rc;
}

int cmd_export(tool_ctx *t, int argc, char **argv)
{
    static struct option opts[] = {TOOL_COMMON_OPTIONS, {"out", required_argument, 0, 'o'},
                                   {"images", required_argument, 0, 'I'}, {0, 0, 0, 0}};
    const char *out = NULL, *images = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhVo:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        if (c == 'o') out = optarg;
        else if (c == 'I') images = optarg;
        else bad_option(t, c, "export", argv);
    }
    if (optind != argc - 1) tool_usage_error(t, "'export' takes one FILE.h5");
    tool_agree(t, t->rank == 0 ? export_file(argv[optind], out, images) : 0);
    return TOOL_OK;
}

/* =============================================================== info === */

static herr_t collect_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    names_push(data, name);
    return 0;
}

/* One root attribute as "  name   value", continuation lines indented. */
static void print_attr(h5io_file *f, const char *name)
{
    hid_t a = H5Aopen(f->file, name, H5P_DEFAULT);
    hid_t ty = a >= 0 ? H5Aget_type(a) : -1;
    H5T_class_t cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    if (ty >= 0) H5Tclose(ty);
    if (a >= 0) H5Aclose(a);
    printf("  %-16s", name);
    int64_t i;
    double d;
    if (cls == H5T_STRING) {
        char *s = h5io_get_attr_str(f, "/", name);
        if (!s || !*s) printf("(none)");
        for (const char *p = s ? s : ""; *p; p++) {
            putchar(*p);
            if (*p == '\n' && p[1]) printf("  %-16s", "");
        }
        free(s);
    } else if (cls == H5T_INTEGER && h5io_get_attr_i64(f, "/", name, &i) == 0) {
        printf("%" PRId64, i);
    } else if (cls == H5T_FLOAT && h5io_get_attr_f64(f, "/", name, &d) == 0) {
        printf("%g", d);
    } else {
        printf("(not shown)");
    }
    putchar('\n');
}

/* Root attributes: provenance first in the schema's order, then the rest. */
static int print_attrs(h5io_file *f)
{
    static const char *order[] = {"schema", "schema_version", "tool", "version", "created",
                                  "command_line", "inputs", "model", "model_hash", "seed",
                                  "run_key", NULL};
    name_list all = {0};
    if (H5Aiterate2(f->file, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_attr, &all) < 0)
        return ERR("%s: cannot list the root attributes", f->path);
    puts("attributes:");
    for (const char **k = order; *k; k++)
        for (size_t i = 0; i < all.n; i++)
            if (!strcmp(all.v[i], *k)) print_attr(f, *k);
    for (size_t i = 0; i < all.n; i++) {
        bool shown = false;
        for (const char **k = order; *k && !shown; k++) shown = !strcmp(all.v[i], *k);
        if (!shown) print_attr(f, all.v[i]);
    }
    names_free(&all);
    err_clear();
    return 0;
}

/* "  /prompts  5 rows: id, question, ground_truth, image" */
static int print_group(h5io_file *f, const char *group)
{
    name_list cols = {0};
    if (list_members(f, group, &cols) != 0) return -1;
    int64_t rows = -1;
    bool same = true;
    for (size_t i = 0; i < cols.n; i++) {
        char *path = join_path(group, cols.v[i]);
        int64_t n = h5io_rows(f, path);
        if (rows >= 0 && n != rows) same = false;
        rows = n;
        free(path);
    }
    err_clear();
    printf("  %-12s ", group);
    if (cols.n && same) printf("%" PRId64 " rows: ", rows);
    else if (cols.n) printf("columns of different lengths: ");
    for (size_t i = 0; i < cols.n; i++) printf("%s%s", i ? ", " : "", cols.v[i]);
    putchar('\n');
    names_free(&cols);
    return 0;
}

static int info_file(const char *path)
{
    h5io_file f;
    char *schema = NULL;
    if (open_sima_file(path, &f, &schema) != 0) return -1;
    int64_t version = 0;
    h5io_get_attr_i64(&f, "/", "schema_version", &version);
    printf("%s: %s version %" PRId64 "\n", path, schema, version);
    name_list top = {0};
    int rc = list_members(&f, "/", &top);
    for (size_t i = 0; rc == 0 && i < top.n; i++) {
        char *g = join_path("", top.v[i]);
        if (is_group(&f, g)) rc = print_group(&f, g);
        free(g);
    }
    if (rc == 0) rc = print_attrs(&f);
    if (rc == 0 && fflush(stdout) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "stdout: cannot write");
    names_free(&top);
    free(schema);
    h5io_close(&f);
    return rc;
}

int cmd_info(tool_ctx *t, int argc, char **argv)
{
    static struct option opts[] = {TOOL_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhV", opts, NULL)) != -1)
        if (!tool_common_option(t, c, USAGE)) bad_option(t, c, "info", argv);
    if (optind != argc - 1) tool_usage_error(t, "'info' takes one FILE.h5");
    tool_agree(t, t->rank == 0 ? info_file(argv[optind]) : 0);
    return TOOL_OK;
}

