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
    if (rc == 0)
        rc = sess_image_config(model_dir, preprocess, s->m->cfg.vision.image_size, &s->pc,
                               &s->mode);
    return rc;
}

int sess_image_config(const char *model_dir, const char *preprocess, int image_size,
                      img_proc_cfg *pc, img_mode *mode)
{
    int rc = 0;
    img_proc_default(pc);
    char *pp = fs_join(model_dir, "preprocessor_config.json");
    if (fs_is_file(pp)) rc = img_proc_load(model_dir, pc);
    free(pp);
    if (rc == 0) rc = img_mode_parse(preprocess, mode);
    if (rc == 0 && (pc->crop_w != image_size || pc->crop_h != image_size))
        rc = ERR("%s: preprocessor crop %dx%d does not match the vision tower's %d px",
                 model_dir, pc->crop_w, pc->crop_h, image_size);
    return rc;
}

void sess_free(sess_model *s)
{
    if (s->tok) tok_free(s->tok);
    if (s->m) llava_free(s->m);
    if (s->be) s->be->destroy(s->be);
    memset(s, 0, sizeof *s);
}
