/* test_chat.c — prompt templates: the bundled files load, the question and
 * image placeholder are filled as LLaVA does, text without an image drops
 * the placeholder, user text cannot inject image tokens, and bad templates
 * give errors naming the file. */
#include "chat.h"
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_format(const char *name, const char *q, bool img, const char *want)
{
    chat_template t;
    CHECK_OK(chat_template_load(name, &t));
    if (!t.text) return;
    char *got = chat_format(&t, q, img);
    CHECK_MSG(strcmp(got, want) == 0, "%s(%s, image=%d): got \"%s\", want \"%s\"", name, q, img,
              got, want);
    free(got);
    chat_template_free(&t);
}

static const char *SYS = "A chat between a curious human and an artificial intelligence "
                         "assistant. The assistant gives helpful, detailed, and polite answers "
                         "to the human's questions.";

int main(void)
{
    char want[1024];
    snprintf(want, sizeof want, "%s USER: <image>\nWhat is this? ASSISTANT:", SYS);
    check_format("vicuna_v1", "What is this?", true, want);
    snprintf(want, sizeof want, "%s USER: What is this? ASSISTANT:", SYS);
    check_format("vicuna_v1", "What is this?", false, want);
    check_format("llava_hf", "Describe it.", true, "USER: <image>\nDescribe it. ASSISTANT:");
    check_format("llava_hf", "Describe it.", false, "USER: Describe it. ASSISTANT:");
    check_format("plain", "Describe it.", true, "<image>\nDescribe it.");
    check_format("plain", "Describe it.", false, "Describe it.");
    /* LLaVA-Instruct questions carry their own <image>: it is removed */
    check_format("llava_hf", "<image>\nWhat color?", true, "USER: <image>\nWhat color? ASSISTANT:");
    check_format("llava_hf", "What color?\n<image>", true, "USER: <image>\nWhat color? ASSISTANT:");
    check_format("llava_hf", "a <image> b", false, "USER: a  b ASSISTANT:");

    /* a template given by path */
    char *dir = test_tmpdir("chat");
    char *p = fs_join(dir, "mine.txt");
    const char *tpl = "Q: {question}\nA:\n";
    CHECK_OK(fs_write_atomic(p, tpl, strlen(tpl)));
    check_format(p, "why?", true, "Q: why?\nA:");
    /* errors name the file */
    const char *bad = "no placeholder here";
    CHECK_OK(fs_write_atomic(p, bad, strlen(bad)));
    chat_template t;
    CHECK_FAILS_WITH(chat_template_load(p, &t), "mine.txt: the template has no {question}");
    CHECK_FAILS_WITH(chat_template_load("no_such_template", &t), "no_such_template");
    char *missing = fs_join(dir, "missing.txt");
    CHECK_FAILS_WITH(chat_template_load(missing, &t), "missing.txt: cannot open");
    unlink(p);
    rmdir(dir);
    free(missing);
    free(p);
    free(dir);
    return check_finish();
}
