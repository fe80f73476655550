/* js.c — base layer: jansson wrappers with file-naming errors. */
#include "js.h"
#include "err.h"

#include <stdio.h>

json_t *js_load_file(const char *path)
{
    return js_load_file_flags(path, JSON_DECODE_ANY);
}

json_t *js_load_file_flags(const char *path, size_t flags)
{
    json_error_t e;
    json_t *v = json_load_file(path, flags, &e);
    if (!v) {
        if (e.line <= 0)
            ERR("%s: %s", path, e.text);
        else
            ERR("%s: line %d, column %d: invalid JSON: %s", path, e.line,
                e.column, e.text);
    }
    return v;
}

json_t *js_load_buf(const char *buf, size_t len, const char *name)
{
    json_error_t e;
    json_t *v = json_loadb(buf, len, JSON_DECODE_ANY, &e);
    if (!v)
        ERR("%s: line %d, column %d: invalid JSON: %s", name, e.line, e.column,
            e.text);
    return v;
}

/* The value for key, or NULL when absent or JSON null. */
static json_t *lookup(const json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return (v && !json_is_null(v)) ? v : NULL;
}

int js_get_int(const json_t *obj, const char *key, long long dflt, long long *out,
               const char *where)
{
    json_t *v = lookup(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    /* Some writers emit 4096.0 for integers; accept exact integral reals. */
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == (double)(long long)d) {
            *out = (long long)d;
            return 0;
        }
    }
    return ERR("%s: \"%s\": expected an integer", where, key);
}

int js_get_double(const json_t *obj, const char *key, double dflt, double *out,
                  const char *where)
{
    json_t *v = lookup(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v)) return ERR("%s: \"%s\": expected a number", where, key);
    *out = json_number_value(v);
    return 0;
}

int js_get_bool(const json_t *obj, const char *key, bool dflt, bool *out,
                const char *where)
{
    json_t *v = lookup(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v)) return ERR("%s: \"%s\": expected true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

int js_get_str(const json_t *obj, const char *key, const char *dflt,
               const char **out, const char *where)
{
    json_t *v = lookup(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v)) return ERR("%s: \"%s\": expected a string", where, key);
    *out = json_string_value(v);
    return 0;
}

int js_get_obj(const json_t *obj, const char *key, const json_t **out,
               const char *where)
{
    json_t *v = lookup(obj, key);
    if (v && !json_is_object(v))
        return ERR("%s: \"%s\": expected an object", where, key);
    *out = v;
    return 0;
}

int js_dump(const json_t *v, void *file)
{
    if (json_dumpf(v, (FILE *)file, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                        JSON_REAL_PRECISION(10)) != 0)
        return ERR("cannot write JSON output");
    fputc('\n', (FILE *)file);
    return 0;
}
