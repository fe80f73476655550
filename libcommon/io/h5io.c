/* h5io.c — io layer: the HDF5 files between the sima tools (see h5io.h).
 *
 * A file of several ranks goes through parallel HDF5's MPI-IO driver,
 * writes collective (H5FD_MPIO_COLLECTIVE) on every rank of the file's
 * communicator; a file of one process (MPI_COMM_SELF, a one-rank run)
 * through HDF5's default POSIX driver, the same format. Reads are
 * independent, so ranks may read different rows a different number of
 * times. A rank's place in a dataset comes from
 * MPI_Exscan over the row (and element) counts, the dataset's size from
 * MPI_Allreduce, so a rank with no rows still takes part, selecting nothing.
 */
#include "h5io.h"
#include "err.h"
#include "hash.h"
#include "strbuf.h"
#include "fs.h"
#include "h5util.h"
#include "libcheck.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Chunk size of compressed datasets: small enough that a chunk fits HDF5's
 * default 1 MiB per-dataset chunk cache, so reading a compressed column one
 * row at a time inflates each chunk once, not once per row. */
#define H5IO_CHUNK_BYTES (256 * 1024)
/* Chunk sizes of uncompressed growing datasets (written in rounds): every
 * chunk is stored whole, so a small file keeps them small: raw bytes (JPEG)
 * in 64 KiB, offsets and columns in 16 KiB (2048 int64 rows). */
#define H5IO_GROWING_BYTES_CHUNK (64 * 1024)
#define H5IO_GROWING_ROWS_CHUNK (16 * 1024)
/* Below this a ragged "data" dataset stays contiguous: compression would
 * save little and chunking costs a B-tree. */
#define H5IO_DEFLATE_MIN_BYTES (64 * 1024)

/* ---------------------------------------------------------------- errors */

/* Record "FILE: OBJECT: what: <HDF5's reason>". */
static int h5_fail_at(const char *src, int line, const h5io_file *f, const char *obj,
                      const char *what)
{
    char msg[ERR_MSG_MAX / 2];
    snprintf(msg, sizeof msg, "%s: %s: %s", f->path, obj, what);
    return h5u_error_at(src, line, msg);
}
#define H5_FAIL(f, obj, what) h5_fail_at(__FILE__, __LINE__, (f), (obj), (what))

/* Checked calls inside functions that own handles: record the error and
 * jump to the function's clean-up label `done`. */
#define TRY_H5(call, f, obj, what)                                             \
    do {                                                                       \
        if ((call) < 0) {                                                      \
            H5_FAIL((f), (obj), (what));                                       \
            goto done;                                                         \
        }                                                                      \
    } while (0)

static void close_id(hid_t id)
{
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: H5Oclose(id); break;
    }
}

/* Rank 0 did something alone (a file probe, a rename): every rank returns
 * its result, with rank 0's message. */
static int share_rank0_result(MPI_Comm comm, int rank, int rc)
{
    CHECK_MPI(MPI_Bcast(&rc, 1, MPI_INT, 0, comm));
    if (rc == 0) return 0;
    char msg[ERR_MSG_MAX];
    if (rank == 0) snprintf(msg, sizeof msg, "%s", err_msg());
    CHECK_MPI(MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, 0, comm));
    if (rank != 0) ERR("%s", msg);
    return -1;
}

/* ----------------------------------------------------------------- types */

static bool type_valid(h5io_type t) { return t >= H5IO_I8 && t <= H5IO_TEXT; }

static const char *type_name(h5io_type t)
{
    static const char *const names[] = {"int8",  "int32",   "int64",   "uint8",
                                        "uint64", "float32", "float64", "text (uint8)"};
    return type_valid(t) ? names[t] : "unknown type";
}

static size_t type_size(h5io_type t)
{
    static const size_t sizes[] = {1, 4, 8, 1, 8, 4, 8, 1};
    return type_valid(t) ? sizes[t] : 0;
}

size_t h5io_type_size(h5io_type t) { return type_size(t); }

static bool type_is_float(h5io_type t) { return t == H5IO_F32 || t == H5IO_F64; }
static bool type_is_signed(h5io_type t) { return t == H5IO_I8 || t == H5IO_I32 || t == H5IO_I64; }

/* The type in memory. (H5T_NATIVE_* are run-time values, hence a switch.) */
static hid_t native_type(h5io_type t)
{
    switch (t) {
    case H5IO_I8: return H5T_NATIVE_INT8;
    case H5IO_I32: return H5T_NATIVE_INT32;
    case H5IO_I64: return H5T_NATIVE_INT64;
    case H5IO_U64: return H5T_NATIVE_UINT64;
    case H5IO_F32: return H5T_NATIVE_FLOAT;
    case H5IO_F64: return H5T_NATIVE_DOUBLE;
    case H5IO_U8:
    case H5IO_TEXT: return H5T_NATIVE_UINT8;
    }
    return -1;
}

/* The type in the file: little-endian whatever the machine, so files
 * compare equal across machines. */
static hid_t stored_type(h5io_type t)
{
    switch (t) {
    case H5IO_I8: return H5T_STD_I8LE;
    case H5IO_I32: return H5T_STD_I32LE;
    case H5IO_I64: return H5T_STD_I64LE;
    case H5IO_U64: return H5T_STD_U64LE;
    case H5IO_F32: return H5T_IEEE_F32LE;
    case H5IO_F64: return H5T_IEEE_F64LE;
    case H5IO_U8:
    case H5IO_TEXT: return H5T_STD_U8LE;
    }
    return -1;
}

/* "int32", "float64", "string", ... for a type found in a file. */
static const char *describe_h5_type(hid_t t, char *buf, size_t n)
{
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (cls == H5T_INTEGER)
        snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", size * 8);
    else if (cls == H5T_FLOAT)
        snprintf(buf, n, "float%zu", size * 8);
    else if (cls == H5T_STRING)
        snprintf(buf, n, "string");
    else
        snprintf(buf, n, "a non-numeric type");
    return buf;
}

/* Exact match of a stored type with what the caller reads: the schema is
 * the contract, so an int32 column read as int64 is a bug to report, not a
 * conversion to make. */
static int check_type(const h5io_file *f, const char *obj, hid_t ds, h5io_type want)
{
    hid_t t = H5Dget_type(ds);
    CHECK_H5(t, obj);
    H5T_class_t cls = H5Tget_class(t);
    bool ok = cls == (type_is_float(want) ? H5T_FLOAT : H5T_INTEGER) &&
              H5Tget_size(t) == type_size(want) &&
              (cls == H5T_FLOAT || (H5Tget_sign(t) != H5T_SGN_NONE) == type_is_signed(want));
    char found[32];
    describe_h5_type(t, found, sizeof found);
    H5Tclose(t);
    if (!ok) return ERR("%s: %s is %s, expected %s", f->path, obj, found, type_name(want));
    return 0;
}

/* ------------------------------------------------------- held datasets */

/* Datasets of a read-only file stay open between calls: HDF5 keeps its
 * chunk cache per open dataset, so a tool reading a compressed column a few
 * rows at a time would otherwise inflate whole chunks again on every call
 * (measured: 1k rows/s instead of 100k+). The least recently used handle is
 * closed when all slots are taken. */
#define H5IO_HELD_MAX 32
struct h5io_held {
    char *path[H5IO_HELD_MAX];
    hid_t ds[H5IO_HELD_MAX];
    uint64_t used[H5IO_HELD_MAX]; /* clock of the last use; 0: free slot */
    bool ends_checked[H5IO_HELD_MAX]; /* offsets datasets: first and last offset checked */
    uint64_t clock;
};

/* The held handle of `path`, marked as just used; -1 if not held. */
static hid_t held_dataset(h5io_file *f, const char *path)
{
    struct h5io_held *h = f->held;
    if (!h) return -1;
    for (int i = 0; i < H5IO_HELD_MAX; i++)
        if (h->used[i] && strcmp(h->path[i], path) == 0) {
            h->used[i] = ++h->clock;
            return h->ds[i];
        }
    return -1;
}

static void hold_dataset(h5io_file *f, const char *path, hid_t ds)
{
    struct h5io_held *h = f->held;
    int slot = 0;
    for (int i = 1; i < H5IO_HELD_MAX; i++)
        if (h->used[i] < h->used[slot]) slot = i;
    if (h->used[slot]) {
        H5Dclose(h->ds[slot]);
        free(h->path[slot]);
    }
    h->path[slot] = xstrdup(path);
    h->ds[slot] = ds;
    h->used[slot] = ++h->clock;
    h->ends_checked[slot] = false;
}

/* The "ends checked" mark of a held dataset; NULL when ds is not held. */
static bool *held_ends_checked(h5io_file *f, hid_t ds)
{
    struct h5io_held *h = f->held;
    for (int i = 0; h && i < H5IO_HELD_MAX; i++)
        if (h->used[i] && h->ds[i] == ds) return &h->ends_checked[i];
    return NULL;
}

static void drop_held(h5io_file *f)
{
    struct h5io_held *h = f->held;
    if (!h) return;
    for (int i = 0; i < H5IO_HELD_MAX; i++)
        if (h->used[i]) {
            H5Dclose(h->ds[i]);
            free(h->path[i]);
        }
    free(h);
    f->held = NULL;
}

/* ------------------------------------------------------------ open/close */

static void forget(h5io_file *f)
{
    drop_held(f);
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    f->file = -1;
}

static int init_handle(h5io_file *f, const char *path, MPI_Comm comm)
{
    memset(f, 0, sizeof *f);
    f->file = -1;
    f->comm = comm;
    f->deflate = H5IO_DEFLATE_DEFAULT;
    h5u_init(); /* our messages carry HDF5's reason; its own printing is noise */
    CHECK_MPI(MPI_Comm_rank(comm, &f->rank));
    CHECK_MPI(MPI_Comm_size(comm, &f->size));
    f->path = xstrdup(path);
    return 0;
}

/* File access through MPI-IO; a file of one process (a part file, an
 * input each rank reads alone, any file of a one-rank run) goes through
 * HDF5's default POSIX driver instead: the same format, and opening takes
 * ~0.1 ms instead of ~2 ms, which counts when a stage writes and assembles
 * thousands of part files. */
static hid_t mpio_fapl(const h5io_file *f, bool writing)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return H5_FAIL(f, "/", "file access properties");
    if (f->size == 1) return fapl;
    if (H5Pset_fapl_mpio(fapl, f->comm, MPI_INFO_NULL) < 0 ||
        /* one rank writes the metadata for all at flush and close */
        (writing && H5Pset_coll_metadata_write(fapl, true) < 0)) {
        H5_FAIL(f, "/", "MPI-IO driver");
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* Rank 0 checks the output's folder, so a mistyped folder reads as such
 * rather than as MPI-IO's "MPI_File_open failed: ...". */
static int probe_output_folder(const char *path)
{
    if (!strchr(path, '/')) return 0; /* the working folder */
    char *dir = fs_dir_of(path);
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot create: folder %s", path, dir);
    else if (!S_ISDIR(st.st_mode))
        rc = ERR("%s: cannot create: %s is not a folder", path, dir);
    free(dir);
    return rc;
}

/* The start of create and open, on every rank: sets up f, lets rank 0 alone
 * run `probe` on path (every rank takes its verdict) and makes the MPI-IO
 * file access list. -1 with f forgotten on failure. */
static hid_t start_open(h5io_file *f, const char *path, MPI_Comm comm,
                        int (*probe)(const char *path), bool writing)
{
    if (init_handle(f, path, comm)) return -1;
    int rc = f->rank == 0 ? probe(path) : 0;
    if (share_rank0_result(comm, f->rank, rc)) {
        forget(f);
        return -1;
    }
    hid_t fapl = mpio_fapl(f, writing);
    if (fapl < 0) forget(f);
    return fapl;
}

/* After H5Fcreate or H5Fopen failed: records `what` with HDF5's reason (before
 * any other call clears its error stack), then undoes start_open. */
static int open_failed(h5io_file *f, hid_t fapl, const char *what)
{
    h5u_error_at(__FILE__, __LINE__, what);
    H5Pclose(fapl);
    forget(f);
    return -1;
}

int h5io_create(h5io_file *f, const char *path, MPI_Comm comm)
{
    hid_t fapl = start_open(f, path, comm, probe_output_folder, true);
    if (fapl < 0) return -1;
    /* The same temporary name on every rank (they open one file together),
     * and the same on a rerun, which then replaces a killed run's leftover. */
    size_t n = strlen(path) + 5;
    f->tmp = xmalloc(n);
    snprintf(f->tmp, n, "%s.tmp", path);
    f->file = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f->file < 0) {
        char what[ERR_MSG_MAX / 2];
        snprintf(what, sizeof what, "%s: cannot create %s", path, f->tmp);
        return open_failed(f, fapl, what);
    }
    H5Pclose(fapl);
    return 0;
}

/* Close the file on every rank; 0 when all closed it cleanly. */
static int close_everywhere(h5io_file *f)
{
    int bad = 0, any = 0;
    if (f->file >= 0 && H5Fclose(f->file) < 0) {
        H5_FAIL(f, "/", "cannot close");
        bad = 1;
    }
    f->file = -1;
    CHECK_MPI(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, f->comm));
    if (any && !bad) ERR("%s: not written: closing failed on another rank", f->path);
    return any ? -1 : 0;
}

int h5io_commit(h5io_file *f)
{
    if (!f->path) return ERR("h5io_commit: file not open");
    if (!f->tmp) return ERR("%s: opened read-only, nothing to commit", f->path);
    int rc = close_everywhere(f);
    if (rc == 0) {
        int mine = 0;
        if (f->rank == 0 && rename(f->tmp, f->path) != 0)
            mine = err_errno_at(__FILE__, __LINE__, "%s: cannot rename %s into place", f->path,
                                f->tmp);
        /* the broadcast also holds every rank until the file is in place */
        rc = share_rank0_result(f->comm, f->rank, mine);
    }
    if (rc && f->rank == 0) unlink(f->tmp);
    forget(f);
    return rc;
}

void h5io_abandon(h5io_file *f)
{
    if (!f->path) return;
    if (f->file >= 0) H5Fclose(f->file);
    f->file = -1;
    if (f->tmp) {
        /* every rank has closed before rank 0 removes it, and returns only
         * once it is gone */
        MPI_Barrier(f->comm);
        if (f->rank == 0) unlink(f->tmp);
        MPI_Barrier(f->comm);
    }
    forget(f);
}

/* Rank 0 looks at the file first, so a missing file or a JPEG passed as
 * HDF5 gets a plain message rather than HDF5's innermost complaint. */
static int probe_readable(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    if (S_ISDIR(st.st_mode)) return ERR("%s: is a directory, expected an HDF5 file", path);
    htri_t is = H5Fis_hdf5(path);
    if (is == 0) return ERR("%s: not an HDF5 file", path);
    if (is < 0) {
        char what[ERR_MSG_MAX / 2];
        snprintf(what, sizeof what, "%s: cannot open", path);
        return h5u_error_at(__FILE__, __LINE__, what);
    }
    return 0;
}

/* A reader's caches, kept small so a rank's memory does not grow as it
 * walks a big file: HDF5 grows a file's metadata cache up to 32 MiB on the
 * chunk indexes of a big file (those of a 1M-prompt file take well under
 * 1 MiB: 4 MiB costs no extra reads), and gives every open dataset a 1 MiB
 * chunk cache (with up to H5IO_HELD_MAX held, 2 chunks of 256 KiB each are
 * enough for reading rows in order). */
#define H5IO_READ_MDC_BYTES ((size_t)4 << 20)
#define H5IO_READ_CHUNK_CACHE_BYTES ((size_t)512 << 10)

static int cap_read_caches(const h5io_file *f, hid_t fapl)
{
    H5AC_cache_config_t c;
    c.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    CHECK_H5(H5Pget_mdc_config(fapl, &c), f->path);
    c.set_initial_size = true;
    c.initial_size = c.min_size = (size_t)1 << 20;
    c.max_size = H5IO_READ_MDC_BYTES;
    CHECK_H5(H5Pset_mdc_config(fapl, &c), f->path);
    int mdc_nelmts;
    size_t nslots, nbytes;
    double w0;
    CHECK_H5(H5Pget_cache(fapl, &mdc_nelmts, &nslots, &nbytes, &w0), f->path);
    CHECK_H5(H5Pset_cache(fapl, mdc_nelmts, nslots, H5IO_READ_CHUNK_CACHE_BYTES, w0), f->path);
    return 0;
}

int h5io_open(h5io_file *f, const char *path, MPI_Comm comm)
{
    hid_t fapl = start_open(f, path, comm, probe_readable, false);
    if (fapl < 0) return -1;
    if (cap_read_caches(f, fapl)) {
        H5Pclose(fapl);
        forget(f);
        return -1;
    }
    f->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f->file < 0) {
        char what[ERR_MSG_MAX / 2];
        snprintf(what, sizeof what, "%s: cannot open", path);
        return open_failed(f, fapl, what);
    }
    H5Pclose(fapl);
    f->held = xcalloc(1, sizeof *f->held);
    return 0;
}

void h5io_close(h5io_file *f)
{
    if (!f->path) return;
    if (f->tmp) { /* created, never committed */
        h5io_abandon(f);
        return;
    }
    drop_held(f); /* before the file: HDF5 refuses to close it under open objects */
    if (f->file >= 0) H5Fclose(f->file);
    forget(f);
}

void h5io_set_deflate(h5io_file *f, int level)
{
    f->deflate = level < 0 ? 0 : level > 9 ? 9 : level;
}

/* ---------------------------------------------------------------- groups */

bool h5io_exists(h5io_file *f, const char *path)
{
    if (!f->path || f->file < 0 || !path || path[0] == '\0') return false;
    /* H5Lexists needs every parent to exist: test "/a", then "/a/b", ... */
    char *p = xstrdup(path);
    bool found = true;
    char *s = p + (p[0] == '/');
    while (found && *s) {
        char *slash = strchr(s, '/');
        if (slash) *slash = '\0';
        found = H5Lexists(f->file, p, H5P_DEFAULT) > 0;
        if (!slash) break;
        *slash = '/';
        s = slash + 1;
    }
    free(p);
    H5Eclear2(H5E_DEFAULT);
    return found;
}

/* Link creation that makes missing parent groups on the way. */
static hid_t lcpl_with_parents(const h5io_file *f, const char *obj)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0) return H5_FAIL(f, obj, "link properties");
    if (H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        H5_FAIL(f, obj, "link properties");
        H5Pclose(lcpl);
        return -1;
    }
    return lcpl;
}

static H5I_type_t object_kind(h5io_file *f, const char *path)
{
    hid_t o = H5Oopen(f->file, path, H5P_DEFAULT);
    if (o < 0) {
        H5Eclear2(H5E_DEFAULT);
        return H5I_BADID;
    }
    H5I_type_t kind = H5Iget_type(o);
    H5Oclose(o);
    return kind;
}

int h5io_group(h5io_file *f, const char *path)
{
    if (h5io_exists(f, path)) {
        if (object_kind(f, path) != H5I_GROUP)
            return ERR("%s: %s exists and is not a group", f->path, path);
        return 0;
    }
    hid_t lcpl = lcpl_with_parents(f, path);
    if (lcpl < 0) return -1;
    hid_t g = H5Gcreate2(f->file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? H5_FAIL(f, path, "cannot create group") : 0;
    H5Pclose(lcpl);
    close_id(g);
    return rc;
}

/* ---------------------------------------------------------------- writing */

/* Where this rank's rows go. Exscan of (rows, elements) gives the start,
 * Allreduce the totals; local validation failures are counted in the same
 * Allreduce so every rank returns alike instead of some entering a
 * collective write the others never reach. */
typedef struct {
    int64_t row0, rows;      /* this rank's first global row, its rows */
    int64_t elem0, elems;    /* the same in elements (ragged data) */
    int64_t total_rows, total_elems;
} h5io_place;

static int place_rows(h5io_file *f, const char *obj, int64_t rows, int64_t elems, bool bad,
                      h5io_place *pl)
{
    int64_t mine[3] = {bad ? 0 : rows, bad ? 0 : elems, bad ? 1 : 0};
    int64_t before[2] = {0, 0}, total[3] = {0, 0, 0};
    CHECK_MPI(MPI_Exscan(mine, before, 2, MPI_INT64_T, MPI_SUM, f->comm));
    CHECK_MPI(MPI_Allreduce(mine, total, 3, MPI_INT64_T, MPI_SUM, f->comm));
    if (total[2] > 0) {
        if (!bad) ERR("%s: %s: not written: rows rejected on another rank", f->path, obj);
        return -1;
    }
    if (f->rank == 0) before[0] = before[1] = 0; /* Exscan leaves rank 0's undefined */
    *pl = (h5io_place){before[0], rows, before[1], elems, total[0], total[1]};
    return 0;
}

/* Dataset creation properties: chunked + deflate (with byte shuffle for
 * multi-byte elements) when `compress`, contiguous otherwise; a growing
 * dataset is chunked in any case (HDF5 extends only chunked datasets).
 * Fill values are never written: every element is written by us. */
static hid_t make_dcpl(h5io_file *f, const char *obj, h5io_type type, int ndim,
                       const hsize_t *dims, bool compress, bool growing)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) return H5_FAIL(f, obj, "dataset properties");
    hsize_t width = ndim == 2 ? dims[1] : 1, n_rows = dims[0];
    hsize_t bytes = compress || !growing ? H5IO_CHUNK_BYTES
                    : type_size(type) == 1 ? H5IO_GROWING_BYTES_CHUNK
                                           : H5IO_GROWING_ROWS_CHUNK;
    hsize_t chunk[2] = {bytes / (type_size(type) * width), width};
    if (chunk[0] < 1) chunk[0] = 1;
    if (!growing && chunk[0] > n_rows) chunk[0] = n_rows;
    if (H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        ((compress || growing) && H5Pset_chunk(dcpl, ndim, chunk) < 0) ||
        (compress && ((type_size(type) > 1 && H5Pset_shuffle(dcpl) < 0) ||
                      H5Pset_deflate(dcpl, (unsigned)f->deflate) < 0))) {
        H5_FAIL(f, obj, "dataset properties");
        H5Pclose(dcpl);
        return -1;
    }
    return dcpl;
}

/* Raw bytes (JPEG) are already compressed: deflate would spend time for ~1%. */
static bool worth_deflating(const h5io_file *f, h5io_type type, hsize_t n_elems)
{
    return f->deflate > 0 && type != H5IO_U8 &&
           n_elems * type_size(type) >= H5IO_DEFLATE_MIN_BYTES;
}

/* Create dataset `name` under loc (parents made as needed); `obj` is its
 * full path, for messages. A growing dataset starts at dims and has no
 * limit on its first dimension. */
static hid_t create_dataset(h5io_file *f, hid_t loc, const char *name, const char *obj,
                            h5io_type type, int ndim, const hsize_t *dims, bool compress,
                            bool growing)
{
    hid_t space = -1, dcpl = -1, lcpl = -1, ds = -1;
    hsize_t maxdims[2] = {growing ? H5S_UNLIMITED : dims[0], ndim == 2 ? dims[1] : 1};
    TRY_H5(space = H5Screate_simple(ndim, dims, maxdims), f, obj, "dataspace");
    hsize_t n_elems = dims[0] * (ndim == 2 ? dims[1] : 1);
    compress = compress && (n_elems > 0 || growing);
    if ((dcpl = make_dcpl(f, obj, type, ndim, dims, compress, growing)) < 0) goto done;
    if ((lcpl = lcpl_with_parents(f, obj)) < 0) goto done;
    ds = H5Dcreate2(loc, name, stored_type(type), space, lcpl, dcpl, H5P_DEFAULT);
    if (ds < 0) H5_FAIL(f, obj, "cannot create dataset"); /* before the closes below */
done:
    close_id(space);
    close_id(dcpl);
    close_id(lcpl);
    return ds;
}

/* Collective write of rows [start, start + count) of ds (each `width`
 * elements; width 0 for a 1-D dataset) from buf. count may be 0. */
static int write_rows(h5io_file *f, const char *obj, hid_t ds, h5io_type type, hsize_t start,
                      hsize_t count, hsize_t width, const void *buf)
{
    static const char nothing; /* HDF5 refuses a NULL buffer even for no elements */
    int rc = -1;
    int ndim = width ? 2 : 1;
    hid_t fspace = -1, mspace = -1, dxpl = -1;
    hsize_t fstart[2] = {start, 0}, fcount[2] = {count, width};
    hsize_t mdims[2] = {count ? count : 1, width};
    TRY_H5(fspace = H5Dget_space(ds), f, obj, "dataspace");
    TRY_H5(mspace = H5Screate_simple(ndim, mdims, NULL), f, obj, "dataspace");
    if (count == 0) {
        TRY_H5(H5Sselect_none(fspace), f, obj, "selection");
        TRY_H5(H5Sselect_none(mspace), f, obj, "selection");
        buf = &nothing;
    } else {
        TRY_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, fstart, NULL, fcount, NULL), f, obj,
               "selection");
    }
    TRY_H5(dxpl = H5Pcreate(H5P_DATASET_XFER), f, obj, "transfer properties");
    if (f->size > 1) /* one process: the POSIX driver (mpio_fapl) */
        TRY_H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), f, obj, "transfer properties");
    TRY_H5(H5Dwrite(ds, native_type(type), mspace, fspace, dxpl, buf), f, obj, "write failed");
    rc = 0;
done:
    close_id(fspace);
    close_id(mspace);
    close_id(dxpl);
    return rc;
}

/* What a writer checks before anything collective: the answer must be
 * the same on every rank for the global parts (type, width, path), and may
 * differ for the local parts (counts, buffers). */
static int check_write_args(h5io_file *f, const char *path, h5io_type type, int64_t n_local,
                            const void *data)
{
    if (!f->path || f->file < 0) return ERR("%s: write to a closed file", path);
    if (!f->tmp) return ERR("%s: %s: file opened read-only", f->path, path);
    if (!type_valid(type)) return ERR("%s: %s: unknown type %d", f->path, path, (int)type);
    if (n_local < 0) return ERR("%s: %s: negative row count %" PRId64, f->path, path, n_local);
    if (n_local > 0 && !data) return ERR("%s: %s: no data for %" PRId64 " rows", f->path, path,
                                         n_local);
    if (h5io_exists(f, path)) return ERR("%s: %s already exists", f->path, path);
    return 0;
}

/* Sum of lengths; -1 (error set) for a negative one. */
static int64_t sum_lengths(const h5io_file *f, const char *path, int64_t n, const int64_t *lengths)
{
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (lengths[i] < 0)
            return ERR("%s: %s: row %" PRId64 " has negative length %" PRId64, f->path, path, i,
                       lengths[i]);
        sum += lengths[i];
    }
    return sum;
}

/* ------------------------------------------------------------ streams -- */

static void stream_close_ids(h5io_stream *s)
{
    close_id(s->data);
    close_id(s->offsets);
    s->data = s->offsets = -1;
}

/* The checks of stream creation: arguments the same on every rank, so
 * every rank fails alike without a collective call. */
static int check_stream_args(h5io_file *f, const char *path, h5io_type type, int64_t rows,
                             int64_t elems)
{
    int rc = check_write_args(f, path, type, 0, NULL);
    if (rc == 0 && (rows < H5IO_GROWING || elems < H5IO_GROWING ||
                    (rows == H5IO_GROWING) != (elems == H5IO_GROWING)))
        rc = ERR("%s: %s: bad size (%" PRId64 " rows, %" PRId64 " elements)", f->path, path, rows,
                 elems);
    return rc;
}

static void stream_init(h5io_stream *s, h5io_file *f, const char *path, h5io_type type,
                        int width, int64_t rows, int64_t elems)
{
    *s = (h5io_stream){.f = f, .path = xstrdup(path), .type = type, .width = width,
                       .data = -1, .offsets = -1, .total_rows = rows, .total_elems = elems};
}

int h5io_stream_column(h5io_file *f, const char *path, h5io_type type, int width,
                       int64_t total_rows, h5io_stream *s)
{
    int64_t total_elems = total_rows == H5IO_GROWING ? H5IO_GROWING : total_rows * width;
    stream_init(s, f, path, type, width, total_rows, total_elems);
    int rc = check_stream_args(f, path, type, total_rows, total_elems);
    if (rc == 0 && type == H5IO_TEXT)
        rc = ERR("%s: %s: text is stored as a ragged column", f->path, path);
    if (rc == 0 && width < 1) rc = ERR("%s: %s: width %d < 1", f->path, path, width);
    if (rc != 0) return rc;
    bool growing = total_rows == H5IO_GROWING;
    hsize_t dims[2] = {growing ? 0 : (hsize_t)total_rows, (hsize_t)width};
    s->data = create_dataset(f, f->file, path, path, type, width > 1 ? 2 : 1, dims, false,
                             growing);
    return s->data < 0 ? -1 : 0;
}

/* offsets[0] = 0, written by rank 0 (collective). */
static int write_first_offset(h5io_stream *s, const char *off_obj)
{
    static const int64_t zero = 0;
    h5io_file *f = s->f;
    if (s->total_rows == H5IO_GROWING) {
        hsize_t one = 1;
        CHECK_H5(H5Dset_extent(s->offsets, &one), off_obj);
    }
    return write_rows(f, off_obj, s->offsets, H5IO_I64, 0, f->rank == 0 ? 1 : 0, 0, &zero);
}

int h5io_stream_ragged(h5io_file *f, const char *path, h5io_type type, int64_t total_rows,
                       int64_t total_elems, h5io_stream *s)
{
    stream_init(s, f, path, type, 0, total_rows, total_elems);
    if (check_stream_args(f, path, type, total_rows, total_elems)) return -1;
    bool growing = total_rows == H5IO_GROWING;
    size_t n = strlen(path) + 16;
    char *data_obj = xmalloc(n), *off_obj = xmalloc(n);
    snprintf(data_obj, n, "%s/data", path);
    snprintf(off_obj, n, "%s/offsets", path);
    int rc = -1;
    hid_t g = -1, lcpl = lcpl_with_parents(f, path);
    if (lcpl < 0) goto done;
    TRY_H5(g = H5Gcreate2(f->file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT), f, path,
           "cannot create group");
    if (type == H5IO_TEXT && h5io_set_attr_str(f, path, "encoding", "utf-8")) goto done;
    hsize_t elems = growing ? 0 : (hsize_t)total_elems;
    bool compress = growing ? f->deflate > 0 && type != H5IO_U8 : worth_deflating(f, type, elems);
    if ((s->data = create_dataset(f, g, "data", data_obj, type, 1, &elems, compress, growing)) < 0)
        goto done;
    hsize_t n_off = growing ? 0 : (hsize_t)total_rows + 1;
    if ((s->offsets = create_dataset(f, g, "offsets", off_obj, H5IO_I64, 1, &n_off, false,
                                     growing)) < 0)
        goto done;
    rc = write_first_offset(s, off_obj);
done:
    close_id(g);
    close_id(lcpl);
    free(data_obj);
    free(off_obj);
    return rc;
}

int h5io_stream_blocks(h5io_stream *s, int64_t rows, int64_t elems)
{
    h5io_file *f = s->f;
    int bad = s->data < 0 || s->total_rows == H5IO_GROWING || rows < 0 || elems < 0;
    if (bad) ERR("%s: %s: blocks need an open stream of known size and sizes >= 0", f->path,
                 s->path ? s->path : "?");
    h5io_place pl = {0};
    if (place_rows(f, s->path ? s->path : "?", rows, elems, bad, &pl)) return -1;
    if (s->rows + pl.total_rows != s->total_rows || s->elems + pl.total_elems != s->total_elems)
        return ERR("%s: %s: blocks of %" PRId64 " rows and %" PRId64 " elements do not fill "
                   "the %" PRId64 " rows and %" PRId64 " elements left", f->path, s->path,
                   pl.total_rows, pl.total_elems, s->total_rows - s->rows,
                   s->total_elems - s->elems);
    s->blocks = true;
    s->at_row = s->rows + pl.row0;
    s->at_elem = s->elems + pl.elem0;
    s->left_rows = rows;
    s->left_elems = elems;
    return 0;
}

/* This rank's rows of a put are good: lengths and data are there. */
static int check_put(const h5io_stream *s, int64_t n_local, const int64_t *lengths,
                     const void *data, int64_t *elems)
{
    const h5io_file *f = s->f;
    if (s->data < 0) return ERR("%s: %s: not open for writing", f->path, s->path);
    if (n_local < 0)
        return ERR("%s: %s: negative row count %" PRId64, f->path, s->path, n_local);
    if (s->blocks && n_local > s->left_rows)
        return ERR("%s: %s: %" PRId64 " rows put, %" PRId64 " left in this rank's block",
                   f->path, s->path, n_local, s->left_rows);
    if (s->width > 0) {
        *elems = n_local * s->width;
        if (n_local > 0 && !data)
            return ERR("%s: %s: no data for %" PRId64 " rows", f->path, s->path, n_local);
        return 0;
    }
    if (n_local > 0 && !lengths)
        return ERR("%s: %s: no data for %" PRId64 " rows", f->path, s->path, n_local);
    if ((*elems = sum_lengths(f, s->path, n_local, lengths)) < 0) return -1;
    if (*elems > 0 && !data)
        return ERR("%s: %s: no data for %" PRId64 " elements", f->path, s->path, *elems);
    return 0;
}

/* Grow a growing stream's datasets to hold the put's rows (collective). */
static int extend_for_put(h5io_stream *s, int64_t rows, int64_t elems)
{
    hsize_t n = (hsize_t)elems;
    if (s->width > 0) {
        hsize_t dims[2] = {(hsize_t)rows, (hsize_t)s->width};
        CHECK_H5(H5Dset_extent(s->data, dims), s->path);
        return 0;
    }
    CHECK_H5(H5Dset_extent(s->data, &n), s->path);
    n = (hsize_t)rows + 1;
    CHECK_H5(H5Dset_extent(s->offsets, &n), s->path);
    return 0;
}

/* The ends of this rank's rows in the whole column. */
static int64_t *row_ends(int64_t elem0, int64_t n, const int64_t *lengths)
{
    int64_t *off = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *off);
    for (int64_t i = 0; i < n; i++) off[i] = elem0 += lengths[i];
    return off;
}

/* Where this rank's rows of a put go: after every rank's rows of the
 * rounds before, or at its cursor in its own block. */
static void put_position(const h5io_stream *s, const h5io_place *pl, int64_t *row, int64_t *elem)
{
    *row = s->blocks ? s->at_row : s->rows + pl->row0;
    *elem = s->blocks ? s->at_elem : s->elems + pl->elem0;
}

static int write_ragged_put(h5io_stream *s, const h5io_place *pl, const int64_t *lengths,
                            const void *data)
{
    h5io_file *f = s->f;
    size_t n = strlen(s->path) + 16;
    char *obj = xmalloc(n);
    snprintf(obj, n, "%s/data", s->path);
    int64_t row, elem;
    put_position(s, pl, &row, &elem);
    int rc = 0;
    if (pl->total_elems > 0) /* the same on every rank: all skip or all write */
        rc = write_rows(f, obj, s->data, s->type, (hsize_t)elem, (hsize_t)pl->elems, 0, data);
    snprintf(obj, n, "%s/offsets", s->path);
    if (rc == 0 && pl->total_rows > 0) {
        int64_t *off = row_ends(elem, pl->rows, lengths);
        rc = write_rows(f, obj, s->offsets, H5IO_I64, (hsize_t)(row + 1), (hsize_t)pl->rows, 0,
                        off);
        free(off);
    }
    free(obj);
    return rc;
}

int h5io_stream_put(h5io_stream *s, int64_t n_local, const int64_t *lengths, const void *data)
{
    h5io_file *f = s->f;
    int64_t elems = 0;
    int bad = check_put(s, n_local, lengths, data, &elems);
    if (!bad && s->blocks && elems > s->left_elems)
        bad = ERR("%s: %s: %" PRId64 " elements put, %" PRId64 " left in this rank's block",
                  f->path, s->path, elems, s->left_elems);
    h5io_place pl = {0};
    if (place_rows(f, s->path, n_local, elems, bad != 0, &pl)) return -1;
    int64_t rows_after = s->rows + pl.total_rows;
    int64_t elems_after = s->elems + (s->width > 0 ? pl.total_rows * s->width : pl.total_elems);
    bool growing = s->total_rows == H5IO_GROWING;
    if (!growing && (rows_after > s->total_rows || elems_after > s->total_elems))
        return ERR("%s: %s: more rows than announced (%" PRId64 " rows, %" PRId64
                   " elements; announced %" PRId64 ", %" PRId64 ")",
                   f->path, s->path, rows_after, elems_after, s->total_rows, s->total_elems);
    if (growing && pl.total_rows > 0 && extend_for_put(s, rows_after, elems_after)) return -1;
    int rc = 0;
    int64_t row, elem;
    put_position(s, &pl, &row, &elem);
    if (s->width > 0 && pl.total_rows > 0)
        rc = write_rows(f, s->path, s->data, s->type, (hsize_t)row, (hsize_t)pl.rows,
                        s->width > 1 ? (hsize_t)s->width : 0, data);
    else if (s->width == 0)
        rc = write_ragged_put(s, &pl, lengths, data);
    if (rc == 0) {
        s->rows = rows_after;
        s->elems = elems_after;
        s->at_row += n_local;
        s->at_elem += elems;
        s->left_rows -= n_local;
        s->left_elems -= elems;
    }
    return rc;
}

int h5io_stream_end(h5io_stream *s)
{
    int rc = 0;
    bool open = s->data >= 0;
    if (open && s->total_rows != H5IO_GROWING &&
        (s->rows != s->total_rows || s->elems != s->total_elems))
        rc = ERR("%s: %s: %" PRId64 " of %" PRId64 " rows written", s->f->path, s->path, s->rows,
                 s->total_rows);
    stream_close_ids(s);
    free(s->path);
    s->path = NULL;
    return open ? rc : -1;
}

int h5io_write_column(h5io_file *f, const char *path, h5io_type type, int64_t n_local,
                      int width, const void *data)
{
    int bad = check_write_args(f, path, type, n_local, data);
    if (!bad && type == H5IO_TEXT)
        bad = ERR("%s: %s: text is stored as a ragged column", f->path, path);
    if (!bad && width < 1) bad = ERR("%s: %s: width %d < 1", f->path, path, width);
    h5io_place pl = {0};
    if (place_rows(f, path, n_local, n_local, bad != 0, &pl)) return -1;
    h5io_stream s;
    int rc = h5io_stream_column(f, path, type, width, pl.total_rows, &s);
    if (rc == 0) rc = h5io_stream_put(&s, n_local, NULL, data);
    int end = h5io_stream_end(&s);
    return rc ? rc : end;
}

int h5io_write_ragged(h5io_file *f, const char *path, h5io_type type, int64_t n_local,
                      const int64_t *lengths, const void *data)
{
    int bad = check_write_args(f, path, type, n_local, lengths);
    int64_t elems = 0;
    /* (check_write_args took lengths as the per-row input; now the elements) */
    if (!bad && (elems = sum_lengths(f, path, n_local, lengths)) < 0) bad = -1;
    if (!bad && elems > 0 && !data)
        bad = ERR("%s: %s: no data for %" PRId64 " elements", f->path, path, elems);
    h5io_place pl = {0};
    if (place_rows(f, path, n_local, elems, bad != 0, &pl)) return -1;
    h5io_stream s;
    int rc = h5io_stream_ragged(f, path, type, pl.total_rows, pl.total_elems, &s);
    if (rc == 0) rc = h5io_stream_put(&s, n_local, lengths, data);
    int end = h5io_stream_end(&s);
    return rc ? rc : end;
}

/* ---------------------------------------------------------------- reading */

/* Why a dataset cannot be opened, as a message: missing, not a dataset,
 * or HDF5's reason. Returns -1 (or the dataset, should it open now). */
static hid_t explain_open_failure(h5io_file *f, const char *path)
{
    if (!f->path || f->file < 0) return ERR("%s: read from a closed file", path);
    if (!h5io_exists(f, path)) return ERR("%s: no dataset %s", f->path, path);
    if (object_kind(f, path) != H5I_DATASET) return ERR("%s: %s is not a dataset", f->path, path);
    hid_t ds = H5Dopen2(f->file, path, H5P_DEFAULT);
    if (ds < 0) return H5_FAIL(f, path, "cannot open dataset");
    return ds;
}

/* A dataset for reading, held open on read-only files (see held_dataset);
 * -1 with no message when it cannot be opened. Pair with release_dataset. */
static hid_t try_take_dataset(h5io_file *f, const char *path)
{
    hid_t ds = held_dataset(f, path);
    if (ds >= 0) return ds;
    if (!f->path || f->file < 0) return -1;
    ds = H5Dopen2(f->file, path, H5P_DEFAULT); /* the common case: no checks first */
    if (ds < 0) {
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    if (f->held) hold_dataset(f, path, ds);
    return ds;
}

/* The same with a message naming the file and dataset on failure. */
static hid_t take_dataset(h5io_file *f, const char *path)
{
    hid_t ds = try_take_dataset(f, path);
    if (ds >= 0) return ds;
    ds = explain_open_failure(f, path);
    if (ds >= 0 && f->held) hold_dataset(f, path, ds);
    return ds;
}

static void release_dataset(const h5io_file *f, hid_t ds)
{
    if (!f->held && ds >= 0) H5Dclose(ds);
}

/* Dimensions of a column dataset: 1-D or 2-D. Returns ndim or -1. */
static int column_dims(const h5io_file *f, const char *obj, hid_t ds, hsize_t dims[2])
{
    hid_t space = H5Dget_space(ds);
    CHECK_H5(space, obj);
    int ndim = H5Sget_simple_extent_ndims(space);
    if (ndim < 0) {
        H5_FAIL(f, obj, "dataspace");
        H5Sclose(space);
        return -1;
    }
    if (ndim == 1 || ndim == 2) {
        dims[1] = 1;
        H5Sget_simple_extent_dims(space, dims, NULL);
    }
    H5Sclose(space);
    if (ndim != 1 && ndim != 2)
        return ERR("%s: %s has %d dimensions, expected a column of 1 or 2", f->path, obj, ndim);
    return ndim;
}

static int check_range(const h5io_file *f, const char *obj, int64_t row0, int64_t n,
                       int64_t rows)
{
    if (row0 < 0 || n < 0 || row0 > rows || n > rows - row0)
        return ERR("%s: %s: rows [%" PRId64 ", %" PRId64 ") out of range (%" PRId64 " rows)",
                   f->path, obj, row0, row0 + n, rows);
    return 0;
}

/* Independent read of rows [start, start + count) (× width) into buf. */
static int read_rows(const h5io_file *f, const char *obj, hid_t ds, h5io_type type, int ndim,
                     hsize_t start, hsize_t count, hsize_t width, void *buf)
{
    if (count == 0) return 0;
    int rc = -1;
    hid_t fspace = -1, mspace = -1;
    hsize_t fstart[2] = {start, 0}, fcount[2] = {count, width};
    TRY_H5(fspace = H5Dget_space(ds), f, obj, "dataspace");
    TRY_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, fstart, NULL, fcount, NULL), f, obj,
           "selection");
    TRY_H5(mspace = H5Screate_simple(ndim, fcount, NULL), f, obj, "dataspace");
    TRY_H5(H5Dread(ds, native_type(type), mspace, fspace, H5P_DEFAULT, buf), f, obj,
           "read failed");
    rc = 0;
done:
    close_id(fspace);
    close_id(mspace);
    return rc;
}

int h5io_column_width(h5io_file *f, const char *path)
{
    hid_t ds = take_dataset(f, path);
    if (ds < 0) return -1;
    hsize_t dims[2];
    int ndim = column_dims(f, path, ds, dims);
    release_dataset(f, ds);
    if (ndim < 0) return -1;
    return ndim == 1 ? 1 : (int)dims[1];
}

int h5io_read_column(h5io_file *f, const char *path, h5io_type type, int64_t row0, int64_t n,
                     void *out)
{
    if (!type_valid(type) || type == H5IO_TEXT)
        return ERR("%s: %s: %s is not a column type", f->path, path, type_name(type));
    hid_t ds = take_dataset(f, path);
    if (ds < 0) return -1;
    hsize_t dims[2];
    int ndim = column_dims(f, path, ds, dims);
    int rc = ndim < 0 ? -1 : check_type(f, path, ds, type);
    if (rc == 0) rc = check_range(f, path, row0, n, (int64_t)dims[0]);
    if (rc == 0)
        rc = read_rows(f, path, ds, type, ndim, (hsize_t)row0, (hsize_t)n, dims[1], out);
    release_dataset(f, ds);
    return rc;
}

/* The two datasets of a ragged column, checked. */
typedef struct {
    hid_t data, offsets;
    int64_t rows, elems;
    char *data_obj, *off_obj;
} ragged_handles;

static void close_ragged(const h5io_file *f, ragged_handles *r)
{
    release_dataset(f, r->data);
    release_dataset(f, r->offsets);
    free(r->data_obj);
    free(r->off_obj);
}

static int open_ragged(h5io_file *f, const char *path, h5io_type type, ragged_handles *r,
                       bool check_data_type)
{
    size_t n = strlen(path) + 16;
    *r = (ragged_handles){-1, -1, 0, 0, xmalloc(n), xmalloc(n)};
    snprintf(r->data_obj, n, "%s/data", path);
    snprintf(r->off_obj, n, "%s/offsets", path);
    if (!f->path || f->file < 0) return ERR("%s: read from a closed file", path);
    r->offsets = try_take_dataset(f, r->off_obj);
    bool there = r->offsets >= 0 && (r->data = try_take_dataset(f, r->data_obj)) >= 0;
    /* explain what is missing (checked only then: opening is the common case) */
    if (!there && !h5io_exists(f, path)) return ERR("%s: no dataset %s", f->path, path);
    if (!there && object_kind(f, path) != H5I_GROUP)
        return ERR("%s: %s is a column, not a ragged column", f->path, path);
    if (!there && (!h5io_exists(f, r->off_obj) || !h5io_exists(f, r->data_obj)))
        return ERR("%s: %s is not a ragged column (no data and offsets)", f->path, path);
    hsize_t dims[2];
    if ((r->offsets < 0 && (r->offsets = take_dataset(f, r->off_obj)) < 0) ||
        check_type(f, r->off_obj, r->offsets, H5IO_I64))
        return -1;
    int ndim = column_dims(f, r->off_obj, r->offsets, dims);
    if (ndim < 0) return -1;
    if (ndim != 1 || dims[0] < 1)
        return ERR("%s: %s: expected rows + 1 offsets in a 1-D dataset", f->path, r->off_obj);
    r->rows = (int64_t)dims[0] - 1;
    if ((r->data < 0 && (r->data = take_dataset(f, r->data_obj)) < 0) ||
        (check_data_type && check_type(f, r->data_obj, r->data, type)))
        return -1;
    if (column_dims(f, r->data_obj, r->data, dims) != 1)
        return ERR("%s: %s is not 1-D", f->path, r->data_obj);
    r->elems = (int64_t)dims[0];
    return 0;
}

/* offsets[0..n] as read from the file (entries row0 ..): inside the data
 * and never decreasing, from `prev` (entry row0 - 1; 0 for row 0) on. */
static int check_offsets(const h5io_file *f, const ragged_handles *r, int64_t row0,
                         const int64_t *off, int64_t n, int64_t prev)
{
    if (off[0] < prev && off[0] >= 0)
        return ERR("%s: %s: offsets decrease at row %" PRId64 " (%" PRId64 " after %" PRId64 ")",
                   f->path, r->off_obj, row0, off[0], prev);
    for (int64_t i = 0; i <= n; i++) {
        if (off[i] < 0)
            return ERR("%s: %s: offset %" PRId64 " at row %" PRId64 " is negative", f->path,
                       r->off_obj, off[i], row0 + i);
        if (off[i] > r->elems)
            return ERR("%s: %s: offset %" PRId64 " at row %" PRId64 " is past the end of %s (%"
                       PRId64 " elements)", f->path, r->off_obj, off[i], row0 + i, r->data_obj,
                       r->elems);
        if (i > 0 && off[i] < off[i - 1])
            return ERR("%s: %s: offsets decrease at row %" PRId64 " (%" PRId64 " after %" PRId64
                       ")", f->path, r->off_obj, row0 + i, off[i], off[i - 1]);
    }
    return 0;
}

/* The offsets start at 0 and end at the data's size (else the offsets or
 * the data were cut short, or belong to different columns). Two
 * one-element reads, once per held dataset. */
static int check_offset_ends(h5io_file *f, const ragged_handles *r)
{
    bool *checked = held_ends_checked(f, r->offsets);
    if (checked && *checked) return 0;
    int64_t first, last;
    if (read_rows(f, r->off_obj, r->offsets, H5IO_I64, 1, 0, 1, 0, &first) ||
        read_rows(f, r->off_obj, r->offsets, H5IO_I64, 1, (hsize_t)r->rows, 1, 0, &last))
        return -1;
    if (first != 0)
        return ERR("%s: %s: first offset is %" PRId64 ", expected 0", f->path, r->off_obj, first);
    if (last != r->elems)
        return ERR("%s: %s: the last offset (row %" PRId64 ") is %" PRId64 " but %s has %" PRId64
                   " elements: offsets or data cut short", f->path, r->off_obj, r->rows, last,
                   r->data_obj, r->elems);
    if (checked) *checked = true;
    return 0;
}

int h5io_read_ragged(h5io_file *f, const char *path, h5io_type type, int64_t row0, int64_t n,
                     int64_t *offsets, void **data)
{
    *data = NULL;
    if (!type_valid(type)) return ERR("%s: %s: unknown type %d", f->path, path, (int)type);
    ragged_handles r;
    int rc = open_ragged(f, path, type, &r, true);
    if (rc == 0) rc = check_offset_ends(f, &r);
    if (rc == 0) rc = check_range(f, path, row0, n, r.rows);
    if (rc == 0)
        rc = read_rows(f, r.off_obj, r.offsets, H5IO_I64, 1, (hsize_t)row0, (hsize_t)n + 1, 0,
                       offsets);
    /* the entry before the range too: a decrease at its first entry would
     * otherwise read other rows' elements */
    int64_t prev = 0;
    if (rc == 0 && row0 > 0)
        rc = read_rows(f, r.off_obj, r.offsets, H5IO_I64, 1, (hsize_t)row0 - 1, 1, 0, &prev);
    if (rc == 0) rc = check_offsets(f, &r, row0, offsets, n, prev);
    if (rc == 0) {
        int64_t first = offsets[0], count = offsets[n] - first;
        size_t bytes = (size_t)count * type_size(type);
        char *buf = xmalloc(bytes + 1); /* +1: room for the text NUL, never 0 bytes */
        rc = read_rows(f, r.data_obj, r.data, type, 1, (hsize_t)first, (hsize_t)count, 0, buf);
        if (rc == 0) {
            buf[bytes] = '\0';
            for (int64_t i = 0; i <= n; i++) offsets[i] -= first;
            *data = buf;
        } else {
            free(buf);
        }
    }
    close_ragged(f, &r);
    return rc;
}

int64_t h5io_ragged_elems(h5io_file *f, const char *path)
{
    ragged_handles r;
    int rc = open_ragged(f, path, H5IO_U8, &r, false);
    if (rc == 0) rc = check_offset_ends(f, &r);
    close_ragged(f, &r);
    return rc == 0 ? r.elems : -1;
}

/* Rows of a column dataset, or of a ragged column through its offsets. */
static int64_t rows_of(h5io_file *f, const char *obj, hid_t ds, bool ragged)
{
    hsize_t dims[2];
    int ndim = column_dims(f, obj, ds, dims);
    release_dataset(f, ds);
    if (ndim < 0) return -1;
    if (!ragged) return (int64_t)dims[0];
    if (ndim == 1 && dims[0] >= 1) return (int64_t)dims[0] - 1;
    return ERR("%s: %s: not a list of rows + 1 offsets", f->path, obj);
}

int64_t h5io_rows(h5io_file *f, const char *path)
{
    if (!f->path || f->file < 0) return ERR("%s: read from a closed file", path);
    hid_t ds = try_take_dataset(f, path);
    if (ds >= 0) return rows_of(f, path, ds, false);
    size_t n = strlen(path) + 16;
    char *off_obj = xmalloc(n);
    snprintf(off_obj, n, "%s/offsets", path);
    int64_t rows = -1;
    if ((ds = try_take_dataset(f, off_obj)) >= 0) /* the common cases are tried first */
        rows = rows_of(f, off_obj, ds, true);
    else if (!h5io_exists(f, path))
        ERR("%s: no dataset %s", f->path, path);
    else if (object_kind(f, path) == H5I_DATASET)
        rows = (ds = take_dataset(f, path)) < 0 ? -1 : rows_of(f, path, ds, false);
    else if (!h5io_exists(f, off_obj))
        ERR("%s: %s is not a column (no offsets)", f->path, path);
    else
        rows = (ds = take_dataset(f, off_obj)) < 0 ? -1 : rows_of(f, off_obj, ds, true);
    free(off_obj);
    return rows;
}

/* ------------------------------------------------------------- attributes */

/* Object `obj` for attribute access ("/" for the root). */
static hid_t open_object(h5io_file *f, const char *obj)
{
    if (!f->path || f->file < 0) return ERR("%s: file not open", obj);
    if (!h5io_exists(f, obj)) return ERR("%s: no object %s", f->path, obj);
    hid_t o = H5Oopen(f->file, obj, H5P_DEFAULT);
    if (o < 0) return H5_FAIL(f, obj, "cannot open");
    return o;
}

/* Checked before the broadcasts of the setters, so a misuse fails alone
 * rather than waiting for ranks that never come. */
static int check_writable(const h5io_file *f, const char *obj)
{
    if (!f->path || f->file < 0) return ERR("%s: file not open", obj);
    if (!f->tmp) return ERR("%s: %s: file opened read-only", f->path, obj);
    return 0;
}

/* Write scalar attribute `name` (replacing one already there). */
static int write_attr(h5io_file *f, const char *obj, const char *name, hid_t type,
                      const void *value)
{
    int rc = -1;
    hid_t o = -1, space = -1, a = -1;
    if ((o = open_object(f, obj)) < 0) return -1;
    htri_t there = H5Aexists(o, name);
    TRY_H5(there, f, obj, name);
    if (there) TRY_H5(H5Adelete(o, name), f, obj, name);
    TRY_H5(space = H5Screate(H5S_SCALAR), f, obj, name);
    TRY_H5(a = H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT), f, obj, name);
    TRY_H5(H5Awrite(a, type, value), f, obj, name);
    rc = 0;
done:
    close_id(a);
    close_id(space);
    close_id(o);
    return rc;
}

/* Attribute values must be identical on every rank of a parallel file;
 * rank 0's value is the one written, so a rank-dependent value (a clock, a
 * host name) cannot corrupt the metadata. */
static int bcast_bytes(h5io_file *f, void *buf, int n)
{
    if (f->size > 1) CHECK_MPI(MPI_Bcast(buf, n, MPI_BYTE, 0, f->comm));
    return 0;
}

/* Variable-length UTF-8 strings: what h5py reads back as str. */
static hid_t vlen_utf8_type(const h5io_file *f, const char *obj)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return H5_FAIL(f, obj, "string type");
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5_FAIL(f, obj, "string type");
        H5Tclose(t);
        return -1;
    }
    return t;
}

int h5io_set_attr_str(h5io_file *f, const char *obj, const char *name, const char *value)
{
    if (check_writable(f, obj)) return -1;
    if (!value) value = "";
    int64_t len = (int64_t)strlen(value);
    if (bcast_bytes(f, &len, sizeof len)) return -1;
    char *v = xmalloc((size_t)len + 1);
    if (f->rank == 0) memcpy(v, value, (size_t)len + 1);
    int rc = bcast_bytes(f, v, (int)len + 1);
    hid_t t = rc ? -1 : vlen_utf8_type(f, obj);
    if (t < 0) rc = -1;
    if (rc == 0) rc = write_attr(f, obj, name, t, &v);
    close_id(t);
    free(v);
    return rc;
}

int h5io_set_attr_i64(h5io_file *f, const char *obj, const char *name, int64_t value)
{
    if (check_writable(f, obj)) return -1;
    if (bcast_bytes(f, &value, sizeof value)) return -1;
    return write_attr(f, obj, name, H5T_NATIVE_INT64, &value);
}

int h5io_set_attr_f64(h5io_file *f, const char *obj, const char *name, double value)
{
    if (check_writable(f, obj)) return -1;
    if (bcast_bytes(f, &value, sizeof value)) return -1;
    return write_attr(f, obj, name, H5T_NATIVE_DOUBLE, &value);
}

/* Open attribute `name` of obj holding one value; -1 with a message naming
 * it when absent. */
static hid_t open_attr(h5io_file *f, const char *obj, const char *name, hid_t *o)
{
    if ((*o = open_object(f, obj)) < 0) return -1;
    htri_t there = H5Aexists(*o, name);
    if (there < 0) return H5_FAIL(f, obj, name);
    if (!there) return ERR("%s: %s has no attribute %s", f->path, obj, name);
    hid_t a = H5Aopen(*o, name, H5P_DEFAULT);
    if (a < 0) return H5_FAIL(f, obj, name);
    hid_t space = H5Aget_space(a);
    hssize_t npoints = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    close_id(space);
    if (npoints != 1) {
        H5Aclose(a);
        return ERR("%s: %s: attribute %s holds %lld values, expected one", f->path, obj, name,
                   (long long)npoints);
    }
    return a;
}

/* A string attribute as stored: variable-length (ours, h5py's) or fixed,
 * read through a copy of its own type (same character set, no conversion). */
static char *read_str_attr(const h5io_file *f, const char *obj, const char *name, hid_t a,
                           hid_t ftype)
{
    char *out = NULL, *v = NULL;
    hid_t mtype = H5Tcopy(ftype);
    TRY_H5(mtype, f, obj, name);
    if (H5Tis_variable_str(ftype) > 0) {
        TRY_H5(H5Aread(a, mtype, &v), f, obj, name);
        out = xstrdup(v ? v : "");
        H5free_memory(v);
    } else {
        size_t size = H5Tget_size(ftype);
        char *buf = xcalloc(size + 1, 1); /* +1: a NUL even for a space-padded string */
        if (H5Aread(a, mtype, buf) < 0) {
            H5_FAIL(f, obj, name);
            free(buf);
            goto done;
        }
        out = buf;
    }
done:
    close_id(mtype);
    return out;
}

char *h5io_get_attr_str(h5io_file *f, const char *obj, const char *name)
{
    hid_t o = -1, a = open_attr(f, obj, name, &o), t = -1;
    char *out = NULL;
    if (a < 0) goto done;
    TRY_H5(t = H5Aget_type(a), f, obj, name);
    if (H5Tget_class(t) != H5T_STRING) {
        char found[32];
        ERR("%s: %s: attribute %s is %s, expected a string", f->path, obj, name,
            describe_h5_type(t, found, sizeof found));
        goto done;
    }
    out = read_str_attr(f, obj, name, a, t);
done:
    close_id(t);
    close_id(a);
    close_id(o);
    return out;
}

/* A numeric attribute converted to memtype; integers only when !allow_float. */
static int read_num_attr(h5io_file *f, const char *obj, const char *name, hid_t memtype,
                         bool allow_float, void *out)
{
    hid_t o = -1, a = open_attr(f, obj, name, &o), t = -1;
    int rc = -1;
    if (a < 0) goto done;
    TRY_H5(t = H5Aget_type(a), f, obj, name);
    H5T_class_t cls = H5Tget_class(t);
    if (cls != H5T_INTEGER && !(allow_float && cls == H5T_FLOAT)) {
        char found[32];
        ERR("%s: %s: attribute %s is %s, expected %s", f->path, obj, name,
            describe_h5_type(t, found, sizeof found), allow_float ? "a number" : "an integer");
        goto done;
    }
    TRY_H5(H5Aread(a, memtype, out), f, obj, name);
    rc = 0;
done:
    close_id(t);
    close_id(a);
    close_id(o);
    return rc;
}

int h5io_get_attr_i64(h5io_file *f, const char *obj, const char *name, int64_t *out)
{
    return read_num_attr(f, obj, name, H5T_NATIVE_INT64, false, out);
}

int h5io_get_attr_f64(h5io_file *f, const char *obj, const char *name, double *out)
{
    return read_num_attr(f, obj, name, H5T_NATIVE_DOUBLE, true, out);
}

/* ------------------------------------------------------------- provenance */

/* Characters a shell leaves alone; anything else gets single quotes. */
static bool shell_safe(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                     "_-+=/.,:@%",
                     *s))
            return false;
    return true;
}

/* The command line as a shell would take it back: arguments separated by
 * spaces, single-quoted where needed. */
static char *command_line(int argc, char **argv)
{
    strbuf out = {0};
    for (int i = 0; i < argc && argv && argv[i]; i++) {
        if (i) strbuf_putc(&out, ' ');
        const char *a = argv[i];
        if (shell_safe(a)) {
            strbuf_puts(&out, a);
            continue;
        }
        strbuf_putc(&out, '\'');
        for (const char *q = a; *q; q++) {
            if (*q == '\'') strbuf_puts(&out, "'\\''");
            else strbuf_putc(&out, *q);
        }
        strbuf_putc(&out, '\'');
    }
    return strbuf_take(&out);
}

static char *join_lines(const char *const *items, int n)
{
    strbuf out = {0};
    for (int i = 0; i < n && items; i++) {
        if (i) strbuf_putc(&out, '\n');
        strbuf_puts(&out, items[i] ? items[i] : "");
    }
    return strbuf_take(&out);
}

/* "2026-11-26T09:14:03Z" */
static void iso8601_utc_now(char buf[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int h5io_write_provenance(h5io_file *f, const h5io_provenance *p)
{
    if (!p->schema || !p->tool)
        return ERR("%s: provenance needs a schema and a tool name", f->path);
    char created[32];
    iso8601_utc_now(created); /* rank 0's clock wins (see h5io_set_attr_str) */
    char *cmd = command_line(p->argc, p->argv);
    char *inputs = join_lines(p->inputs, p->n_inputs);
    int rc = 0;
    rc = rc ? rc : h5io_set_attr_str(f, "/", "schema", p->schema);
    rc = rc ? rc : h5io_set_attr_i64(f, "/", "schema_version", p->schema_version);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "tool", p->tool);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "version", SIMA_VERSION);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "command_line", cmd);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "inputs", inputs);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "model", p->model_dir);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "model_hash", p->model_hash);
    rc = rc ? rc : h5io_set_attr_i64(f, "/", "seed", p->seed < 0 ? -1 : p->seed);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "run_key", p->run_key);
    rc = rc ? rc : h5io_set_attr_str(f, "/", "created", created);
    free(cmd);
    free(inputs);
    return rc;
}

int h5io_require_schema(h5io_file *f, const char *schema, int max_version)
{
    if (!f->path || f->file < 0) return ERR("h5io_require_schema: file not open");
    hid_t root = H5Oopen(f->file, "/", H5P_DEFAULT);
    htri_t has = root < 0 ? -1 : H5Aexists(root, "schema");
    if (has < 0) H5_FAIL(f, "/", "schema");
    close_id(root);
    if (has < 0) return -1;
    if (!has) return ERR("%s: not a sima file (no schema attribute)", f->path);
    char *found = h5io_get_attr_str(f, "/", "schema");
    if (!found) return -1;
    int rc = 0;
    int64_t version = 0;
    if (strcmp(found, schema) != 0)
        rc = ERR("%s: is a %s file, expected %s", f->path, found, schema);
    else if (h5io_get_attr_i64(f, "/", "schema_version", &version))
        rc = err_context("%s: %s file without a usable version", f->path, schema);
    else if (version > max_version)
        rc = ERR("%s: %s version %" PRId64 " is newer than this sima supports (%d)", f->path,
                 schema, version, max_version);
    else if (version < 1)
        rc = ERR("%s: %s has invalid schema_version %" PRId64, f->path, schema, version);
    free(found);
    return rc;
}

/* ----------------------------------------------------------------- hashes */

const char *h5io_hex64(uint64_t h, char *buf)
{
    snprintf(buf, 17, "%016" PRIx64, h);
    return buf;
}

static int hash_file(const char *path, uint64_t *h)
{
    char *buf;
    size_t len;
    if (fs_read_all(path, &buf, &len)) return -1;
    *h = hash_fnv1a(buf, len, *h);
    free(buf);
    return 0;
}

/* A single-file checkpoint: its 8-byte header length and JSON header, which
 * name every tensor with its dtype, shape and offsets (hashing the tensors
 * themselves would read gigabytes). */
static int hash_safetensors_header(const char *path, uint64_t *h)
{
    FILE *fp = fopen(path, "rb");
    CHECK_IO(fp, "%s: cannot open", path);
    unsigned char len8[8];
    int rc = 0;
    if (fread(len8, 1, 8, fp) != 8) {
        rc = ERR("%s: too short for a safetensors header", path);
    } else {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        if (n > (100u << 20)) {
            rc = ERR("%s: safetensors header of %" PRIu64 " bytes is implausible", path, n);
        } else {
            char *json = xmalloc(n ? n : 1);
            if (fread(json, 1, n, fp) != n) rc = ERR("%s: truncated safetensors header", path);
            else *h = hash_fnv1a(json, n, hash_fnv1a(len8, 8, *h));
            free(json);
        }
    }
    fclose(fp);
    return rc;
}

char *h5io_model_hash(const char *model_dir)
{
    uint64_t h = HASH_FNV_INIT;
    char *config = fs_join(model_dir, "config.json");
    char *index = fs_join(model_dir, "model.safetensors.index.json");
    char *single = fs_join(model_dir, "model.safetensors");
    int rc = hash_file(config, &h);
    if (rc == 0 && fs_is_file(index)) rc = hash_file(index, &h);
    else if (rc == 0 && fs_is_file(single)) rc = hash_safetensors_header(single, &h);
    free(config);
    free(index);
    free(single);
    if (rc) return NULL;
    char hex[17];
    return xstrdup(h5io_hex64(h, hex));
}
