/* session.c — engine layer: loading a model, tokenizer and preprocessing. */
#include "session.h"
#include "err.h"
#include "fs.h"

#include <stdlib.h>
#include <string.h>

int sess_load(const char *model_dir, const char *preprocess, sess_model *s)
{
    memset(s, 0, sizeof *s);
    s->be = be_cpu_new(0);
    int rc = llava_load(model_dir, s->be, &s->m);
    if (rc == 0) rc = tok_load(model_dir, &s->tok);
    img_proc_default(&s->pc);
    char *pp = fs_join(model_dir, "preprocessor_config.json");
    if (rc == 0 && fs_is_file(pp)) rc = img_proc_load(model_dir, &s->pc);
    free(pp);
    if (rc == 0) rc = img_mode_parse(preprocess, &s->mode);
    int size = rc == 0 ? s->m->cfg.vision.image_size : 0;
    if (rc == 0 && (s->pc.crop_w != size || s->pc.crop_h != size))
        rc = ERR("%s: preprocessor crop %dx%d does not match the vision tower's %d px",
                 model_dir, s->pc.crop_w, s->pc.crop_h, size);
    return rc;
}

void sess_free(sess_model *s)
{
    if (s->tok) tok_free(s->tok);
    if (s->m) llava_free(s->m);
    if (s->be) s->be->destroy(s->be);
    memset(s, 0, sizeof *s);
}
