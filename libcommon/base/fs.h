/* fs.h — base layer: small file helpers with checked errors. */
#ifndef SIMA_BASE_FS_H
#define SIMA_BASE_FS_H

#include <stdbool.h>
#include <stddef.h>

/* Read a whole file into a malloc'd, NUL-terminated buffer (len excludes the
 * NUL). Error: "PATH: reason". */
int fs_read_all(const char *path, char **buf, size_t *len);

/* Write a whole file atomically: PATH.tmp.PID, fsync, rename. */
int fs_write_atomic(const char *path, const void *buf, size_t len);

/* "dir/name" in a malloc'd string. */
char *fs_join(const char *dir, const char *name);

/* The folder part of a path, malloc'd: "." for a bare name, "/" for a name
 * right under the root. */
char *fs_dir_of(const char *path);

bool fs_is_dir(const char *path);
bool fs_is_file(const char *path);

#endif
