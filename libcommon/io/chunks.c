/* chunks.c — io layer: chunked, resumable, data-parallel output files. */
#define _GNU_SOURCE /* asprintf */
#include "chunks.h"
#include "err.h"
#include "hash.h"
#include "fs.h"
#include "log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void chk_run_key(char key[17], const char *const *texts, int n)
{
    uint64_t h = HASH_FNV_INIT;
    for (int i = 0; i < n; i++) h = hash_fnv1a(texts[i], strlen(texts[i]), h);
    h5io_hex64(h, key);
}

char *chk_input_identity(h5io_file *f, const char *path, int64_t rows)
{
    char *created = h5io_get_attr_str(f, "/", "created");
    char *key = h5io_get_attr_str(f, "/", "run_key");
    err_clear(); /* absent attributes are no error here */
    char *id = NULL;
    if (asprintf(&id, "%s@%s#%s/%lld", path, created ? created : "?", key ? key : "?",
                 (long long)rows) < 0)
        DIE("out of memory");
    free(created);
    free(key);
    return id;
}

void chk_plan_init(chk_plan *p, const char *out, const char *schema, int schema_version,
                   int64_t n_items, int64_t chunk, const char *run_key, bool resume,
                   bool overwrite)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->schema = schema;
    p->schema_version = schema_version;
    p->n_items = n_items;
    p->chunk = chunk;
    p->n_chunks = (n_items + chunk - 1) / chunk;
    snprintf(p->run_key, sizeof p->run_key, "%s", run_key);
    p->resume = resume;
    p->overwrite = overwrite;
    if (asprintf(&p->parts_dir, "%s.parts", out) < 0) DIE("out of memory");
}

void chk_plan_free(chk_plan *p)
{
    free(p->parts_dir);
    p->parts_dir = NULL;
}

char *chk_part_path(const chk_plan *p, int64_t chunk)
{
    char name[64];
    snprintf(name, sizeof name, "chunk-%08lld.h5", (long long)chunk);
    return fs_join(p->parts_dir, name);
}

void chk_items(const chk_plan *p, int64_t chunk, int64_t *first, int64_t *n)
{
    *first = chunk * p->chunk;
    *n = p->n_items - *first < p->chunk ? p->n_items - *first : p->chunk;
}

int64_t chk_pending_items(const chk_plan *p, const int64_t *pending, int64_t n_pending)
{
    int64_t total = 0, first, n;
    for (int64_t i = 0; i < n_pending; i++) {
        chk_items(p, pending[i], &first, &n);
        total += n;
    }
    return total;
}

/* Remove the files of the parts folder (it holds only our files). */
static int clear_parts(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot list", dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *path = fs_join(dir, e->d_name);
        if (unlink(path) != 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot remove", path);
        free(path);
    }
    closedir(d);
    return rc;
}

/* Rank 0: hold OUT.parts/.lock for the whole run, so that a second job on
 * the same output (a rerun while the old job's processes still live) stops
 * instead of writing the same files. The lock goes with the process, even
 * on SIGKILL. File systems without locks: warn and go on. */
static int g_lock_fd = -1;

static int lock_run(const chk_plan *p)
{
    if (mkdir(p->parts_dir, 0755) != 0 && errno != EEXIST)
        return err_errno_at(__FILE__, __LINE__, "%s: cannot create", p->parts_dir);
    char *path = fs_join(p->parts_dir, ".lock");
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            rc = ERR("another job is writing %s (%s is locked); wait for it to end or stop it",
                     p->out, path);
        else
            log_warn("%s: file locks unsupported here (%s); make sure no other job writes %s",
                     path, strerror(errno), p->out);
        if (rc != 0) close(fd);
        else g_lock_fd = fd;
    } else {
        g_lock_fd = fd;
    }
    free(path);
    return rc;
}

/* Rank 0: let go of the lock and remove the parts folder if nothing else
 * is in it. */
static void unlock_run(const chk_plan *p)
{
    if (g_lock_fd < 0) return;
    char *path = fs_join(p->parts_dir, ".lock");
    unlink(path);
    free(path);
    close(g_lock_fd);
    g_lock_fd = -1;
    rmdir(p->parts_dir); /* fails harmlessly when chunks are there */
}

/* Rank 0: is OUT already the complete output of this run? */
static int check_existing_output(const chk_plan *p, bool *done)
{
    *done = false;
    if (!fs_is_file(p->out)) return 0;
    h5io_file f;
    char *key = NULL;
    if (h5io_open(&f, p->out, MPI_COMM_SELF) == 0) {
        if (h5io_require_schema(&f, p->schema, p->schema_version) == 0)
            key = h5io_get_attr_str(&f, "/", "run_key");
        h5io_close(&f);
    }
    err_clear();
    bool same = key && strcmp(key, p->run_key) == 0;
    free(key);
    if (same) {
        *done = true;
        return 0;
    }
    if (!p->overwrite)
        return ERR("%s exists and belongs to a different run (other model, inputs or options); "
                   "use --overwrite to replace it", p->out);
    if (unlink(p->out) != 0) return err_errno_at(__FILE__, __LINE__, "%s: cannot remove", p->out);
    return 0;
}

/* Rank 0: keep the parts folder's chunks when they belong to this run and
 * resuming, else empty it. */
static int prepare_parts(const chk_plan *p)
{
    char *keyfile = fs_join(p->parts_dir, "run_key");
    int rc = 0;
    /* the folder exists (lock_run made it); a key file says whose chunks
     * are in it — none: nothing committed yet, start clean */
    if (fs_is_file(keyfile)) {
        char *old = NULL;
        size_t len = 0;
        bool same = fs_read_all(keyfile, &old, &len) == 0 && len >= 16 &&
                    strncmp(old, p->run_key, 16) == 0;
        err_clear();
        free(old);
        if (!same && !p->overwrite)
            rc = ERR("%s holds chunks of a different run; use --overwrite to discard them",
                     p->parts_dir);
        else if (!same || !p->resume)
            rc = clear_parts(p->parts_dir);
    } else {
        rc = clear_parts(p->parts_dir);
    }
    if (rc == 0) rc = fs_write_atomic(keyfile, p->run_key, 16);
    free(keyfile);
    return rc;
}

static int64_t list_pending(const chk_plan *p, int64_t *pending)
{
    int64_t n = 0;
    for (int64_t c = 0; c < p->n_chunks; c++) {
        char *path = chk_part_path(p, c);
        if (!fs_is_file(path)) pending[n++] = c;
        free(path);
    }
    return n;
}

void chk_prepare(tool_ctx *t, chk_plan *p, bool *done, int64_t **pending, int64_t *n_pending)
{
    int rc = 0, flag = 0;
    *pending = xmalloc(sizeof(int64_t) * (size_t)(p->n_chunks ? p->n_chunks : 1));
    *n_pending = 0;
    if (t->rank == 0) {
        bool d = false;
        rc = lock_run(p);
        if (rc == 0) rc = check_existing_output(p, &d);
        flag = d;
        if (rc == 0 && !d) rc = prepare_parts(p);
        if (rc == 0 && !d) *n_pending = list_pending(p, *pending);
        if (rc == 0 && d) unlock_run(p);
    }
    tool_agree(t, rc);
    MPI_Bcast(&flag, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(n_pending, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(*pending, (int)*n_pending, MPI_INT64_T, 0, MPI_COMM_WORLD);
    *done = flag != 0;
}

int chk_part_create(const chk_plan *p, int64_t chunk, h5io_file *f)
{
    char *path = chk_part_path(p, chunk);
    int rc = h5io_create(f, path, MPI_COMM_SELF);
    free(path);
    return rc;
}

int chk_part_commit(const chk_plan *p, h5io_file *f)
{
    int rc = h5io_set_attr_str(f, "/", "run_key", p->run_key);
    if (rc != 0) {
        h5io_abandon(f);
        return rc;
    }
    return h5io_commit(f);
}

int chk_part_open(const chk_plan *p, int64_t chunk, h5io_file *f)
{
    char *path = chk_part_path(p, chunk);
    int rc = h5io_open(f, path, MPI_COMM_SELF);
    free(path);
    return rc;
}

bool chk_all_committed(tool_ctx *t, const chk_plan *p)
{
    MPI_Barrier(MPI_COMM_WORLD);
    int ok = 1;
    if (t->rank == 0) {
        int64_t *pending = xmalloc(sizeof(int64_t) * (size_t)(p->n_chunks ? p->n_chunks : 1));
        ok = list_pending(p, pending) == 0;
        free(pending);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return ok != 0;
}

void chk_my_block(const chk_plan *p, const tool_ctx *t, int64_t *c0, int64_t *c1)
{
    *c0 = p->n_chunks * t->rank / t->size;
    *c1 = p->n_chunks * (t->rank + 1) / t->size;
}

void chk_remove_parts(const tool_ctx *t, chk_plan *p)
{
    if (t->rank != 0) return;
    int rc = clear_parts(p->parts_dir);
    unlock_run(p);
    if (rc == 0 && fs_is_dir(p->parts_dir) && rmdir(p->parts_dir) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot remove", p->parts_dir);
    if (rc != 0) log_warn("%s (the output is complete)", err_msg());
}

/* ----------------------------------------------------------- progress -- */

enum { TAG_PROGRESS = 7, TAG_END = 8 };

void chk_progress_init(chk_progress *pr, tool_ctx *t, const char *unit, const char *rate_unit,
                       double interval, int64_t total, int64_t before)
{
    memset(pr, 0, sizeof *pr);
    pr->t = t;
    pr->unit = unit;
    pr->rate_unit = rate_unit;
    pr->interval = interval;
    pr->total = total;
    pr->before = before;
    pr->last = MPI_Wtime();
    /* reports are sent at most once per interval, so a small buffer holds
     * what rank 0 has not received yet */
    static char buf[1 << 16];
    static int attached;
    if (!attached++) MPI_Buffer_attach(buf, sizeof buf);
}

void chk_progress_add(chk_progress *pr, int64_t items, int64_t tokens)
{
    pr->items += items;
    pr->tokens += tokens;
}

static void send_report(chk_progress *pr, int tag)
{
    int64_t msg[2] = {pr->items - pr->sent_items, pr->tokens - pr->sent_tokens};
    pr->sent_items = pr->items;
    pr->sent_tokens = pr->tokens;
    MPI_Bsend(msg, 2, MPI_INT64_T, 0, tag, MPI_COMM_WORLD);
}

static void collect_reports(chk_progress *pr)
{
    int flag;
    MPI_Status st;
    while (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) == MPI_SUCCESS &&
           flag) {
        if (st.MPI_TAG != TAG_PROGRESS && st.MPI_TAG != TAG_END) break;
        int64_t msg[2];
        MPI_Recv(msg, 2, MPI_INT64_T, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        pr->all_items += msg[0];
        pr->all_tokens += msg[1];
        if (st.MPI_TAG == TAG_END) pr->finished_ranks++;
    }
}

static void print_line(chk_progress *pr)
{
    double now = MPI_Wtime(), el = now - pr->t->t0;
    int64_t items = pr->all_items + pr->items, tokens = pr->all_tokens + pr->tokens;
    int64_t total = pr->before + pr->total, done = pr->before + items;
    double eta = items > 0 ? el * (double)(pr->total - items) / (double)items : -1;
    char b1[32], b2[32];
    log_info("%lld/%lld %s (%.1f%%), %.0f %s, elapsed %s, ETA %s", (long long)done,
             (long long)total, pr->unit, total ? 100.0 * (double)done / (double)total : 100.0,
             tokens / (el > 0 ? el : 1), pr->rate_unit, tool_duration(el, b1),
             eta >= 0 ? tool_duration(eta, b2) : "unknown");
}

void chk_progress_tick(chk_progress *pr)
{
    double now = MPI_Wtime();
    if (pr->t->rank == 0) collect_reports(pr);
    if (now - pr->last < pr->interval) return;
    pr->last = now;
    if (pr->t->rank == 0) print_line(pr);
    else send_report(pr, TAG_PROGRESS);
}

void chk_progress_finish(chk_progress *pr, int64_t *items, int64_t *tokens)
{
    if (pr->t->rank != 0) {
        send_report(pr, TAG_END);
    } else {
        while (pr->finished_ranks < pr->t->size - 1) {
            collect_reports(pr);
            if (pr->finished_ranks < pr->t->size - 1) {
                if (MPI_Wtime() - pr->last >= pr->interval) {
                    pr->last = MPI_Wtime();
                    print_line(pr);
                }
                usleep(20000);
            }
        }
        print_line(pr);
    }
    *items = pr->all_items + pr->items;
    *tokens = pr->all_tokens + pr->tokens;
}
