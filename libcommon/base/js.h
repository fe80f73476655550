/* js.h — base layer: JSON through jansson, with errors that name the file.
 *
 * Getters look a key up in an object, check its type, and fall back to a
 * default when the key is absent or null. A present key of the wrong type is
 * an error ("config.json: text_config.hidden_size: expected an integer").
 */
#ifndef SIMA_BASE_JS_H
#define SIMA_BASE_JS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Parse a file / buffer. On a syntax error: "NAME: line L, column C: reason". */
json_t *js_load_file(const char *path);
/* js_load_file with jansson decoding flags of the caller's choice
 * (JSON_REJECT_DUPLICATES, ...); js_load_file is JSON_DECODE_ANY. */
json_t *js_load_file_flags(const char *path, size_t flags);
json_t *js_load_buf(const char *buf, size_t len, const char *name);

/* Typed getters. `where` names the object for messages ("config.json:
 * text_config"). Return 0 (value or default stored), -1 on a type error. */
int js_get_int(const json_t *obj, const char *key, long long dflt, long long *out,
               const char *where);
int js_get_double(const json_t *obj, const char *key, double dflt, double *out,
                  const char *where);
int js_get_bool(const json_t *obj, const char *key, bool dflt, bool *out,
                const char *where);
/* String getter: *out points into the JSON object (valid while it lives). */
int js_get_str(const json_t *obj, const char *key, const char *dflt,
               const char **out, const char *where);
/* Object getter: absent or null gives NULL; a non-object is an error. */
int js_get_obj(const json_t *obj, const char *key, const json_t **out,
               const char *where);

/* Print a JSON value to a stream, indented, keys in insertion order. */
int js_dump(const json_t *v, void *file /* FILE* */);

#endif
