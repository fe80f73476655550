/* safetensors.h — formats layer: read (mmap) and write safetensors files.
 *
 * A set is one .safetensors file or a sharded checkpoint described by
 * model.safetensors.index.json. Every header is validated against its file:
 * header length inside the file, JSON well-formed, known dtypes, shape x dtype
 * size = byte length, offsets inside the data area, no two tensors overlapping
 * (unused gaps between tensors are allowed), __metadata__ string -> string.
 * Any violation is an error naming the file and the tensor. Data pointers
 * point into the mapping and may be unaligned: read them with memcpy or
 * st_to_f32.
 */
#ifndef SIMA_FORMATS_SAFETENSORS_H
#define SIMA_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_F64,
    ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct {
    const char *name;          /* tensor name as stored */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;          /* into the mmap'd file; nbytes long */
    size_t nbytes;
    int file_index;            /* which shard of the set */
} st_tensor;

typedef struct st_set st_set;  /* opaque */

/* Open a single file. */
int st_open_file(const char *path, st_set **out);
/* Open a sharded set from its index (model.safetensors.index.json, a JSON
 * object with "weight_map": {tensor name: shard file name}). The set holds
 * exactly the mapped tensors, each read from the shard the map names (an
 * error if that shard lacks it); shards lie in the index's folder. */
int st_open_index(const char *index_path, st_set **out);
/* Open a model folder: model.safetensors.index.json if present, else
 * model.safetensors, else the only *.safetensors file. */
int st_open_dir(const char *dir, st_set **out);
/* Parse a safetensors image in memory, with the same checks as a file. The
 * buffer is borrowed and must outlive the set; `name` is used in messages.
 * For tests and fuzzing. */
int st_open_mem(const void *buf, size_t len, const char *name, st_set **out);
void st_close(st_set *set);

size_t st_count(const st_set *set);
const st_tensor *st_at(const st_set *set, size_t i);       /* sorted by name */
const st_tensor *st_find(const st_set *set, const char *name); /* NULL if absent */
const char *st_file_path(const st_set *set, int file_index);
int st_file_count(const st_set *set);
/* The __metadata__ entry of the first file's header (NULL if none). */
const char *st_metadata(const st_set *set, const char *key);

const char *st_dtype_name(st_dtype dt);  /* "F32", "BF16", ... */
size_t st_dtype_size(st_dtype dt);
int st_dtype_parse(const char *s, st_dtype *out);

/* Convert a floating tensor (F32/F16/BF16/F64) to float32, exactly where the
 * value is representable (F16 and BF16 always are). dst holds numel floats. */
int st_to_f32(const st_tensor *t, float *dst);

/* Scalar conversions, exact. */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t b);
/* Round-to-nearest-even conversions, as PyTorch's .to(float16/bfloat16):
 * overflow gives inf; NaN gives a quiet NaN (F16: sign | 0x7e00, BF16:
 * 0x7fc0, as c10::Half and c10::BFloat16 do). */
uint16_t st_f32_to_f16(float f);
uint16_t st_f32_to_bf16(float f);

/* Writing. Tensors are laid out in the order given, 8-byte aligned header. */
typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;          /* numel * dtype size bytes */
} st_write_tensor;

/* Write atomically (temp file + rename). metadata: NULL or alternating
 * key/value strings, NULL-terminated. */
int st_write_file(const char *path, const st_write_tensor *tensors, size_t n,
                  const char *const *metadata);

#endif
