/* h5io.h — io layer: the HDF5 files the sima tools exchange.
 *
 * Files are written by all ranks of a communicator together, through MPI-IO
 * with collective writes. A column is a dataset of n rows ([n] or
 * [n, width]); a ragged column (text, token ids, JPEG bytes) is a group
 * holding a flat 1-D "data" dataset and an "offsets" dataset of n+1 int64,
 * row i being data[offsets[i] : offsets[i+1]]. Each rank contributes its
 * rows in one call; rank r's rows follow rank r-1's (positions found with
 * MPI_Exscan), so a tool that gives rank r the r-th consecutive block of a
 * sorted list writes the file in that order whatever the number of ranks.
 *
 * Every file carries provenance and its schema name + version as root
 * attributes (see data/schemas/). A file is created under a temporary name
 * and renamed into place by h5io_commit, so a reader never sees a
 * half-written file.
 *
 * All functions return 0 (or a count) on success, -1 with err_msg() set on
 * failure; messages name the file and the dataset. Functions marked
 * "collective" must be called by every rank of the file's communicator with
 * the same arguments (except the row data).
 */
#ifndef SIMA_IO_H5IO_H
#define SIMA_IO_H5IO_H

#include <hdf5.h>
#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    H5IO_I8, H5IO_I32, H5IO_I64, H5IO_U8, H5IO_U64, H5IO_F32, H5IO_F64,
    H5IO_TEXT   /* UTF-8 bytes (ragged columns only); stored as uint8 with attr "encoding"="utf-8" */
} h5io_type;

/* Bytes of one element of a type in memory (0 for an invalid type). */
size_t h5io_type_size(h5io_type t);

typedef struct {
    hid_t file;
    MPI_Comm comm;
    int rank, size;
    char *path;       /* the final name */
    char *tmp;        /* the name written to, until h5io_commit; NULL when
                         opened read-only */
    int deflate;      /* deflate level for ragged data (0: none) */
    struct h5io_held *held; /* read-only files: datasets kept open between
                               reads, so HDF5's chunk cache survives (h5io.c) */
} h5io_file;

/* Create PATH for writing (collective). The file is written as "PATH.tmp":
 * the same name on every rank and on a rerun, which replaces the leftover
 * of a killed run. Two jobs writing the same PATH at once are not
 * supported (they would share the temporary file). */
int h5io_create(h5io_file *f, const char *path, MPI_Comm comm);
/* Close and rename into place (collective): rank 0 renames once every rank
 * has closed; every rank returns after the rename, with the same result.
 * On failure the temporary file is removed. */
int h5io_commit(h5io_file *f);
/* Close and delete the temporary file (collective). */
void h5io_abandon(h5io_file *f);
/* Open an existing file read-only; comm may be MPI_COMM_SELF (collective
 * over comm; a communicator of one process reads through HDF5's POSIX
 * driver, which opens a file ~20x faster than MPI-IO). Errors: "x.h5: not an HDF5 file", "x.h5: cannot open: ...".
 * Reads are independent: after opening, ranks may read different rows, a
 * different number of times. */
int h5io_open(h5io_file *f, const char *path, MPI_Comm comm);
/* Close a file from h5io_open (collective over its comm). On a file from
 * h5io_create that was never committed, the same as h5io_abandon. */
void h5io_close(h5io_file *f);

/* Compression of the ragged "data" datasets written after this call: deflate
 * level 0-9 (0: contiguous, uncompressed). Data of 64 KiB or more is stored
 * in chunks of 256 KiB with deflate (and byte shuffle for multi-byte
 * elements); smaller data, fixed columns and H5IO_U8 ragged data (JPEG
 * bytes, already compressed) stay contiguous. Same value on every rank. */
#define H5IO_DEFLATE_DEFAULT 1
void h5io_set_deflate(h5io_file *f, int level);

/* Create group PATH (and parents) if absent (collective). */
int h5io_group(h5io_file *f, const char *path);

/* Write a column of n_local rows per rank, each of `width` elements
 * (width 1: a 1-D dataset [n]; else [n, width]) (collective). Parent
 * groups are created as needed; PATH must not exist yet. n_local may be 0
 * (data may then be NULL). */
int h5io_write_column(h5io_file *f, const char *path, h5io_type type, int64_t n_local,
                      int width, const void *data);
/* Write a ragged column: n_local rows per rank with the given lengths (in
 * elements), their elements concatenated in data (collective). */
int h5io_write_ragged(h5io_file *f, const char *path, h5io_type type, int64_t n_local,
                      const int64_t *lengths, const void *data);

/* Writing in rounds. A column too large to hold at once is written by
 * several collective puts: h5io_stream_column / h5io_stream_ragged create
 * it, each h5io_stream_put adds every rank's rows of that round after all
 * rows of the rounds before (rank r's after rank r-1's), and
 * h5io_stream_end closes it. Created with its final size, a column is
 * stored exactly as h5io_write_column / h5io_write_ragged store it (they
 * are one put); created H5IO_GROWING, its datasets are chunked and grow at
 * each put (compressed with the file's deflate level, except H5IO_U8
 * data), for a writer that learns its sizes as it goes. */
#define H5IO_GROWING (-1)
typedef struct {
    h5io_file *f;
    char *path;
    h5io_type type;
    int width;                  /* elements per row of a column; 0: ragged */
    hid_t data, offsets;        /* offsets: ragged columns only, else -1 */
    int64_t rows, elems;        /* written so far, all ranks */
    int64_t total_rows, total_elems; /* the final size; H5IO_GROWING */
    bool blocks;                /* h5io_stream_blocks: puts fill this rank's block */
    int64_t at_row, at_elem;    /* blocks: where this rank's next row goes */
    int64_t left_rows, left_elems; /* blocks: what its block still takes */
} h5io_stream;

/* Create a column of `width` elements per row and total_rows rows (or
 * H5IO_GROWING) (collective, same arguments everywhere). */
int h5io_stream_column(h5io_file *f, const char *path, h5io_type type, int width,
                       int64_t total_rows, h5io_stream *s);
/* Create a ragged column of total_rows rows and total_elems elements (both
 * H5IO_GROWING, or both known) (collective). */
int h5io_stream_ragged(h5io_file *f, const char *path, h5io_type type, int64_t total_rows,
                       int64_t total_elems, h5io_stream *s);
/* Add this rank's n_local rows (collective; n_local may be 0): for a ragged
 * column their lengths and concatenated elements, for a column n_local *
 * width elements (lengths NULL). Rows beyond the announced size, bad
 * lengths or missing data on any rank fail on every rank, writing nothing. */
int h5io_stream_put(h5io_stream *s, int64_t n_local, const int64_t *lengths, const void *data);
/* Block placement (collective; a stream of known size): from here on each
 * rank's puts fill a block of its own, `rows` rows and `elems` elements,
 * the blocks following each other in rank order; puts may then come in any
 * number of rounds, a rank putting 0 rows in the rounds it has nothing
 * for. The blocks must fill what is left of the column. */
int h5io_stream_blocks(h5io_stream *s, int64_t rows, int64_t elems);
/* Close (collective); an error when fewer rows or elements than announced
 * were put ("x.h5: /a: 3 of 5 rows written"). Safe on a failed stream. */
int h5io_stream_end(h5io_stream *s);

/* Rows of a column or ragged column; -1 if absent (error set:
 * "x.h5: no dataset /prompts/question"). */
int64_t h5io_rows(h5io_file *f, const char *path);
bool h5io_exists(h5io_file *f, const char *path);
/* Elements of a ragged column's data (its offsets checked as for a read);
 * -1 with the error set. */
int64_t h5io_ragged_elems(h5io_file *f, const char *path);
/* Elements per row of a column: 1 for [n], width for [n, width]; -1 if
 * absent or ragged (error set). */
int h5io_column_width(h5io_file *f, const char *path);
/* Read rows [row0, row0 + n) of a column into out (n * width elements).
 * The stored type must be `type` exactly ("x.h5: /a is int32, expected
 * int64"); rows outside the column are an error. */
int h5io_read_column(h5io_file *f, const char *path, h5io_type type, int64_t row0, int64_t n,
                     void *out);
/* Read rows [row0, row0 + n) of a ragged column (a hyperslab of its
 * offsets, then of its data: only those rows are read): *data (malloc'd)
 * holds their elements; offsets[0..n] (caller's array of n+1) index into
 * it, offsets[0] == 0. Text gets a NUL after the last byte. The offsets
 * must start at 0, never decrease and end at the data's size; anything
 * else is an error naming the file and dataset ("x.h5:
 * /responses/text/offsets: offsets decrease at row 7 (12 after 40)"). */
int h5io_read_ragged(h5io_file *f, const char *path, h5io_type type, int64_t row0, int64_t n,
                     int64_t *offsets, void **data);

/* Provenance written at the root of every file (collective). */
typedef struct {
    const char *tool;           /* "sima-gen" */
    const char *schema;         /* "sima.responses" */
    int schema_version;         /* 1 */
    int argc;
    char **argv;                /* the full command line */
    const char *const *inputs;  /* input files, n_inputs of them */
    int n_inputs;
    const char *model_dir;      /* NULL when the tool uses no model */
    const char *model_hash;     /* h5io_model_hash(model_dir) */
    int64_t seed;               /* < 0: none */
    const char *run_key;        /* digest of everything that determines the
                                   output (for resume checks), or NULL */
} h5io_provenance;
/* Root attributes: tool, version, command_line, inputs (one string, newline
 * separated), model, model_hash, seed, run_key, created (ISO 8601 UTC),
 * schema, schema_version. */
int h5io_write_provenance(h5io_file *f, const h5io_provenance *p);

/* Refuse a file of another schema or a newer version:
 * "in.h5: is a sima.responses file, expected sima.prompts". */
int h5io_require_schema(h5io_file *f, const char *schema, int max_version);

/* Attributes on an object (collective for the setters; rank 0's value is
 * written, so every rank's copy of the file metadata agrees). */
int h5io_set_attr_str(h5io_file *f, const char *obj, const char *name, const char *value);
int h5io_set_attr_i64(h5io_file *f, const char *obj, const char *name, int64_t value);
int h5io_set_attr_f64(h5io_file *f, const char *obj, const char *name, double value);
char *h5io_get_attr_str(h5io_file *f, const char *obj, const char *name); /* malloc'd, NULL absent */
int h5io_get_attr_i64(h5io_file *f, const char *obj, const char *name, int64_t *out);
int h5io_get_attr_f64(h5io_file *f, const char *obj, const char *name, double *out);

/* A 64-bit hash (base/hash.h) as 16 hex digits (buf >= 17 bytes). */
const char *h5io_hex64(uint64_t h, char *buf);
/* Hash of a model folder's weights index and config: FNV-1a over the bytes
 * of config.json, then of model.safetensors.index.json, or, for a
 * single-file model, model.safetensors' 8-byte header length and JSON
 * header (not the tensors); config.json alone when neither is there. As 16
 * hex digits, malloc'd; NULL (error set) without a readable config.json. */
char *h5io_model_hash(const char *model_dir);

#endif
