/* core/compress.h — whole-buffer gzip for the exporters' request bodies (libdeflate).
 *
 * libdeflate compresses a buffer in one call, about twice as fast as zlib's streaming
 * deflate at the same level with an equal or better ratio; the price is that the whole
 * input must be in memory, which it is for an encoded request. A compressor (a few hundred
 * KiB of tables) is made on first use per thread and level and kept for the thread's life:
 * the exporters' consumer threads compress every request, so a compressor per call would
 * cost more than the compression. Compressors of a thread are freed when it exits (a
 * pthread key destructor); those of threads still running at process exit stay reachable
 * from a process-wide list (not leaks). */
#ifndef LG_COMPRESS_H
#define LG_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* zlib's Z_DEFAULT_COMPRESSION: the Collector's confighttp default for gzip (Go's
 * compress/gzip DefaultCompression, level 6). */
#define LG_GZIP_LEVEL_DEFAULT (-1)
#define LG_GZIP_LEVEL_MIN     0  /* stored, no compression */
#define LG_GZIP_LEVEL_MAX     12 /* libdeflate's slowest, smallest */

/** Worst-case gzip size of len input bytes (any level). */
size_t lg_gzip_bound(size_t len);

/** gzip (RFC 1952) of in[0, len) into out (cap bytes) at level (LG_GZIP_LEVEL_DEFAULT or
 *  0..12; 1 fastest, 6 zlib's default). Returns the compressed length, or 0 when out of
 *  memory, the level is invalid, or cap is too small (cap >= lg_gzip_bound(len) never is). */
size_t lg_gzip(int level, const void *in, size_t len, void *out, size_t cap);

/** As lg_gzip into a malloc'd buffer (the caller frees it); NULL on failure. */
uint8_t *lg_gzip_alloc(int level, const void *in, size_t len, size_t *out_len);

#endif
