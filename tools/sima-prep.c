/* sima-prep — build prompts.h5 from the data people have, and look inside any
 * sima file.
 *
 *   sima-prep import [--format llava|sima|auto] INPUT.json[l] --image-root DIR
 *                    --out prompts.h5 [--report FILE] [--limit N]
 *   sima-prep export FILE.h5 [--out FILE.jsonl] [--images DIR]
 *   sima-prep info FILE.h5
 *
 * Ranks: sima-prep needs no mpirun. Started with several ranks, `import` lets
 * rank 0 parse the input while all ranks share the reading and checking of
 * the images, each holding only its own block of image bytes (the part that
 * can reach gigabytes); the file written is the same for any number of
 * ranks. `export` and `info` run on rank 0 alone.
 */
#define _GNU_SOURCE
#include "sima-prep.h"

#include "err.h"
#include "h5util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const USAGE =
    "usage: sima-prep COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  import INPUT --image-root DIR --out prompts.h5\n"
    "         [--format llava|sima|auto] [--report FILE] [--limit N]\n"
    "      build a sima.prompts file from LLaVA instruction data (a JSON array or\n"
    "      JSON Lines of {\"id\", \"image\", \"conversations\": [...]}) or SIMA prompt\n"
    "      JSON Lines ({\"image\", \"text\", \"ground_truth\"}, optional \"id\"). Image\n"
    "      paths are relative to DIR; each image is stored once, as its original\n"
    "      bytes (JPEG or PNG). Prompts whose image is missing or not a readable\n"
    "      JPEG or PNG are skipped and listed in the report (default:\n"
    "      OUT.report.txt); the exit status is 1 only when no prompt is left.\n"
    "      --limit N reads only the first N records. --format auto (default)\n"
    "      looks at the first record.\n"
    "  export FILE.h5 [--out FILE.jsonl] [--images DIR]\n"
    "      one JSON object per row of the file's main group (stdout by default);\n"
    "      --images DIR also writes a prompts file's stored images to DIR/NAME.\n"
    "      An exported prompts file can be imported again (--format sima).\n"
    "  info FILE.h5\n"
    "      schema, groups with their row counts, and the provenance attributes\n"
    "\n"
    "common options: --verbose, --quiet, --help, --version\n"
    "sima-prep needs no mpirun; under mpirun, import shares the image reading\n"
    "between the ranks, and export and info run on rank 0.\n";

_Noreturn void bad_option(tool_ctx *t, int c, const char *cmd, char **argv)
{
    char shown[3] = {'-', (char)optopt, '\0'}; /* a short option: optopt names it */
    const char *opt = optopt ? shown : argv[optind - 1];
    if (c == ':') tool_usage_error(t, "option '%s' needs a value", opt);
    tool_usage_error(t, "unknown option '%s' for '%s'", opt, cmd);
}

/* =============================================================== main === */

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-prep");
    h5u_init();
    if (argc < 2) {
        if (t.rank == 0) fputs(USAGE, stderr);
        return tool_finish(&t, TOOL_USAGE);
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (t.rank == 0) fputs(USAGE, stdout);
        return tool_finish(&t, TOOL_OK);
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        if (t.rank == 0) printf("sima-prep %s\n", SIMA_VERSION);
        return tool_finish(&t, TOOL_OK);
    }
    /* Subcommand options start after the command name. getopt reorders
     * the array it parses, so it gets a copy: t.argv keeps the command line
     * as typed, for provenance. */
    char **args = xmalloc((size_t)argc * sizeof *args);
    memcpy(args, argv + 1, (size_t)(argc - 1) * sizeof *args);
    args[argc - 1] = NULL;
    int code;
    if (!strcmp(cmd, "import")) code = cmd_import(&t, argc - 1, args);
    else if (!strcmp(cmd, "export")) code = cmd_export(&t, argc - 1, args);
    else if (!strcmp(cmd, "info")) code = cmd_info(&t, argc - 1, args);
    else tool_usage_error(&t, "unknown command '%s' (import, export, info)", cmd);
    free(args);
    return tool_finish(&t, code);
}
