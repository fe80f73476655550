/* log.h — base layer: leveled logging.
 *
 * Info and debug lines are printed by rank 0 only (every rank when the rank
 * is unknown); warnings and errors by every rank, tagged with the rank.
 * Default level is LOG_INFO; --verbose raises it to LOG_DEBUG, --quiet
 * lowers it to LOG_WARN.
 */
#ifndef SIMA_BASE_LOG_H
#define SIMA_BASE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_level(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
