/* sima-dpo-state.c — what sima-dpo writes and resumes from: state.bin
 * (header, parameters, AdamW moments, reference log-probs), the
 * checkpoint and adapter folders replaced atomically, the merged or
 * trained model folder. */
#define _GNU_SOURCE
#include "sima-dpo.h"

#include "err.h"
#include "fs.h"
#include "log.h"
#include "lora_merge.h"
#include "peft_modules.h"
#include "safetensors.h"
#include "train_names.h"
#include "weights.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --------------------------------------------------------- checkpoint -- */

/* state.bin: a header, the parameters, the first and second AdamW moments
 * (float32, this machine's byte order, as the header's mark says), then the
 * reference log-probs scored before training (n_ref pairs: chosen, rejected
 * as doubles), if any. */
#define STATE_MAGIC "SIMADPOS"
#define STATE_VERSION 2
#define STATE_BOM 0x01020304u  /* reads 0x04030201 on the other byte order */

typedef struct {
    char magic[8];
    uint32_t version, bom, float_bytes, header_bytes;
    char key[16];           /* the run key, hex */
    int64_t step, total;    /* steps done; parameters */
    int64_t n_tensors, n_ref;
} state_header;

static int64_t state_size(const state_header *h)
{
    return (int64_t)sizeof *h + 3 * h->total * (int64_t)sizeof(float) + 2 * h->n_ref * (int64_t)sizeof(double);
}

static int write_bytes(FILE *f, const void *v, size_t size, int64_t n, const char *path)
{
    if (n > 0 && fwrite(v, size, (size_t)n, f) != (size_t)n)
        return err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    return 0;
}

static int64_t ref_count(const trainer *tr) { return tr->ref_once ? tr->data.n : 0; }

static int write_refs(FILE *f, const trainer *tr, const char *path)
{
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < ref_count(tr); i++) {
        double r[2] = {tr->data.pair[i].ref_chosen, tr->data.pair[i].ref_rejected};
        rc = write_bytes(f, r, sizeof(double), 2, path);
    }
    return rc;
}

static int state_write(const trainer *tr, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return err_errno_at(__FILE__, __LINE__, "%s: cannot create", path);
    state_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, STATE_MAGIC, 8);
    h.version = STATE_VERSION;
    h.bom = STATE_BOM;
    h.float_bytes = sizeof(float);
    h.header_bytes = sizeof h;
    memcpy(h.key, tr->key, 16);
    h.step = tr->step;
    h.total = tr->p.total;
    h.n_tensors = tr->p.n;
    h.n_ref = ref_count(tr);
    int rc = write_bytes(f, &h, sizeof h, 1, path);
    for (int k = 0; rc == 0 && k < tr->p.n; k++)
        rc = write_bytes(f, tr->p.t[k].param, sizeof(float), tr->p.t[k].n, path);
    if (rc == 0) rc = write_bytes(f, tr->p.m, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = write_bytes(f, tr->p.v, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = write_refs(f, tr, path);
    if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    if (fclose(f) != 0 && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    return rc;
}

static int read_bytes(FILE *f, void *v, size_t size, int64_t n, const char *path)
{
    if (n > 0 && fread(v, size, (size_t)n, f) != (size_t)n) return ERR("%s: truncated", path);
    return 0;
}

/* Is h a state header this build reads, and the file of its size? */
static int state_check(const state_header *h, int64_t file_size, const char *path)
{
    if (!memcmp(h->magic, "SIMADPO1", 8))
        return ERR("%s: a checkpoint of an older sima-dpo (no format version); start over with "
                   "--no-resume", path);
    if (memcmp(h->magic, STATE_MAGIC, 8) != 0) return ERR("%s: not a sima-dpo checkpoint", path);
    if (h->bom != STATE_BOM)
        return ERR("%s: written on a machine of another byte order (mark 0x%08x); start over "
                   "with --no-resume", path, (unsigned)h->bom);
    if (h->version != STATE_VERSION)
        return ERR("%s: checkpoint format version %u, this sima-dpo reads version %d", path,
                   (unsigned)h->version, STATE_VERSION);
    if (h->float_bytes != sizeof(float) || h->header_bytes != sizeof *h)
        return ERR("%s: header of %u bytes with %u-byte floats; expected %zu and %zu", path,
                   (unsigned)h->header_bytes, (unsigned)h->float_bytes, sizeof *h, sizeof(float));
    if (h->total < 0 || h->n_ref < 0 || h->step < 0 || state_size(h) != file_size)
        return ERR("%s: %lld bytes, the header describes %lld (truncated or corrupted)", path,
                   (long long)file_size, (long long)state_size(h));
    return 0;
}

/* Read and check a checkpoint's header; *found false when there is none. */
static int state_peek(const char *path, state_header *h, bool *found)
{
    *found = false;
    if (!fs_is_file(path)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    struct stat st;
    int rc = fstat(fileno(f), &st) == 0 ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot stat", path);
    memset(h, 0, sizeof *h);
    size_t want = rc == 0 && st.st_size < (off_t)sizeof *h ? (size_t)st.st_size : sizeof *h;
    if (rc == 0 && fread(h, 1, want, f) != want) rc = ERR("%s: cannot read", path);
    if (rc == 0 && want < sizeof *h && memcmp(h->magic, "SIMADPO1", 8) != 0)
        rc = ERR("%s: %lld bytes: too short for a sima-dpo checkpoint", path, (long long)st.st_size);
    if (rc == 0) rc = state_check(h, (int64_t)st.st_size, path);
    fclose(f);
    *found = rc == 0;
    return rc;
}

static int read_refs(FILE *f, trainer *tr, int64_t n_ref, const char *path)
{
    if (n_ref != ref_count(tr))
        return ERR("%s: %lld reference log-probs, this run scores %lld", path, (long long)n_ref,
                   (long long)ref_count(tr));
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < n_ref; i++) {
        double r[2];
        rc = read_bytes(f, r, sizeof(double), 2, path);
        tr->data.pair[i].ref_chosen = r[0];
        tr->data.pair[i].ref_rejected = r[1];
        tr->data.pair[i].has_ref = true;
    }
    return rc;
}

static int state_read(trainer *tr, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    state_header h;
    int rc = read_bytes(f, &h, sizeof h, 1, path);
    if (rc == 0 && (h.total != tr->p.total || h.n_tensors != tr->p.n))
        rc = ERR("%s: %lld parameters in %lld tensors, this run trains %lld in %d", path,
                 (long long)h.total, (long long)h.n_tensors, (long long)tr->p.total, tr->p.n);
    for (int k = 0; rc == 0 && k < tr->p.n; k++)
        rc = read_bytes(f, tr->p.t[k].param, sizeof(float), tr->p.t[k].n, path);
    if (rc == 0) rc = read_bytes(f, tr->p.m, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = read_bytes(f, tr->p.v, sizeof(float), tr->p.total, path);
    if (rc == 0) rc = read_refs(f, tr, h.n_ref, path);
    fclose(f);
    if (rc == 0) tr->step = h.step;
    return rc;
}

/* rm -r of a folder we wrote (files and one level of subfolders). */
static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot open", dir);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = fs_join(dir, e->d_name);
        if (fs_is_dir(p)) rc = remove_tree(p);
        else if (unlink(p) != 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot remove", p);
        free(p);
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot remove", dir);
    return rc;
}

/* Put folder tmp in place of dst: dst -> dst.old, tmp -> dst, drop dst.old.
 * A crash between the renames leaves dst.old, which checkpoint_path finds. */
static int replace_dir(const char *tmp, const char *dst)
{
    char *old = NULL;
    if (asprintf(&old, "%s.old", dst) < 0) DIE("out of memory");
    int rc = remove_tree(old);
    if (rc == 0 && fs_is_dir(dst) && rename(dst, old) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename", dst);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", tmp, dst);
    if (rc == 0) rc = remove_tree(old);
    free(old);
    return rc;
}

int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_errno_at(__FILE__, __LINE__, "%s: cannot create", dir);
    return 0;
}

/* The adapter folder: LoRA terms, and the projector when it is not the
 * base's (PEFT modules_to_save). */
int save_adapter(const trainer *tr, const char *dir)
{
    int rc = lora_save_peft(tr->ad, dir, tr->a->model);
    if (rc != 0 || !tr->proj[0]) return rc;
    peft_module_tensor ts[4];
    for (int i = 0; i < 4; i++) {
        const be_weight *w = proj_weight(tr->s.m, i);
        ts[i] = (peft_module_tensor){PROJ_NAME[i], tr->proj[i], w->rows, w->cols};
    }
    return peft_add_module(dir, PEFT_PROJECTOR_MODULE, ts, 4);
}

/* Rank 0 writes OUT/checkpoint (atomically); collective. */
void checkpoint_save(trainer *tr)
{
    int rc = 0;
    params_to_host(&tr->p);
    if (tr->t->rank == 0) {
        char *dir = fs_join(tr->a->out, "checkpoint"), *tmp = fs_join(tr->a->out, "checkpoint.tmp");
        char *adapter = fs_join(tmp, "adapter"), *state = fs_join(tmp, "state.bin");
        rc = remove_tree(tmp);
        if (rc == 0) rc = make_dir(tmp);
        if (rc == 0 && tr->ad) rc = save_adapter(tr, adapter);
        if (rc == 0) rc = state_write(tr, state);
        if (rc == 0) rc = replace_dir(tmp, dir);
        if (rc == 0) log_debug("checkpoint at step %lld", (long long)tr->step);
        free(dir);
        free(tmp);
        free(adapter);
        free(state);
    }
    tool_agree(tr->t, rc);
}

/* The checkpoint's state.bin: checkpoint/, else checkpoint.old/ (a crash
 * mid-replace); malloc'd. */
static char *checkpoint_state_path(const char *out)
{
    const char *dirs[] = {"checkpoint/state.bin", "checkpoint.old/state.bin"};
    for (int i = 0; i < 2; i++) {
        char *p = fs_join(out, dirs[i]);
        if (fs_is_file(p)) return p;
        free(p);
    }
    return fs_join(out, dirs[0]);
}

/* Resume when asked or (auto) when the checkpoint is of this run. */
int maybe_resume(trainer *tr, bool *resumed)
{
    *resumed = false;
    if (tr->a->resume == 0) return 0;  /* the checkpoint, whatever it holds, is replaced */
    char *path = checkpoint_state_path(tr->a->out);
    state_header h;
    bool found;
    int rc = state_peek(path, &h, &found);
    if (rc == 0 && found && tr->a->resume != 0) {
        if (memcmp(h.key, tr->key, 16) != 0)
            rc = ERR("%s holds a checkpoint of a different run (other settings or inputs); "
                     "use --no-resume to start over", tr->a->out);
        else if (h.step > tr->total_steps)
            rc = ERR("%s: checkpoint at step %lld, past this run's %lld steps", path,
                     (long long)h.step, (long long)tr->total_steps);
        else
            rc = state_read(tr, path);
        if (rc == 0) {
            params_upload(&tr->p);
            *resumed = true;
        }
    } else if (rc == 0 && !found && tr->a->resume == 1) {
        log_info("no checkpoint in %s: starting from step 0", tr->a->out);
    }
    free(path);
    return rc;
}

/* -------------------------------------------------------------- merge -- */

/* The trained weights (and a non-base projector) as overrides of the base
 * model's tensors; names malloc'd. */
static int model_overrides(trainer *tr, lora_override **out, int *n_out)
{
    st_set *set = NULL;
    if (st_open_dir(tr->a->model, &set) != 0) return -1;
    size_t n = st_count(set);
    lora_override *ov = xcalloc(n + 4, sizeof *ov);
    int k = 0;
    char canon[512];
    for (size_t i = 0; i < n; i++) {
        const char *name = st_at(set, i)->name;
        dpo_tensor *t = params_by_grad(&tr->p, train_grad_by_name(tr->s.m, &tr->g, &tr->vg, name));
        if (t && t->w && wt_canonical(name, canon, sizeof canon))
            ov[k++] = (lora_override){xstrdup(canon), t->param, t->n};
    }
    st_close(set);
    /* a projector loaded from an adapter and kept frozen */
    for (int i = 0; tr->proj_owned && i < 4; i++) {
        const be_weight *w = proj_weight(tr->s.m, i);
        ov[k++] = (lora_override){xstrdup(PROJ_NAME[i]), tr->proj[i], w->rows * w->cols};
    }
    *out = ov;
    *n_out = k;
    return 0;
}

/* Rank 0 writes OUT/<name> (atomically), the base model with the adapter
 * merged and the trained tensors in place; collective. */
void write_model(trainer *tr, const char *name)
{
    int rc = 0;
    params_to_host(&tr->p);
    if (tr->t->rank == 0) {
        char *dir = fs_join(tr->a->out, name), *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", dir) < 0) DIE("out of memory");
        lora_override *ov = NULL;
        int n_ov = 0;
        rc = model_overrides(tr, &ov, &n_ov);
        if (rc == 0) rc = remove_tree(tmp);
        if (rc == 0) rc = make_dir(tmp);
        if (rc == 0) rc = lora_write_model(tr->ad, ov, n_ov, tr->a->model, tmp);
        if (rc == 0) rc = replace_dir(tmp, dir);
        if (rc == 0)
            log_info("wrote %s (%s, F32)", dir,
                     tr->ad ? "the model with the adapter merged" : "the trained model");
        for (int i = 0; i < n_ov; i++) free((void *)ov[i].name);
        free(ov);
        free(dir);
        free(tmp);
    }
    tool_agree(tr->t, rc);
}

/* Will maybe_resume take the checkpoint (which then holds the references)? */
bool checkpoint_resumable(trainer *tr)
{
    if (tr->a->resume == 0) return false;
    char *path = checkpoint_state_path(tr->a->out);
    state_header h;
    bool found;
    int rc = state_peek(path, &h, &found);
    free(path);
    err_clear();  /* maybe_resume reports what is wrong */
    return rc == 0 && found && !memcmp(h.key, tr->key, 16) && h.n_ref == tr->data.n;
}
