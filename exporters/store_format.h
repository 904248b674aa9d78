/* exporters/store_format.h — the on-disk format of the interaction store, shared by the
 * `interaction_store` exporter (writer) and `llmgate store` (reader): keys and key IDs,
 * AES-256-GCM record frames, segment files, the directory permission check, retention, and
 * the trace-ID sampling hash that agrees with the Collector's tail_sampling probabilistic
 * policy. Everything here is synchronous and thread-agnostic; the caller serialises access
 * to one segment file.
 *
 * Store layout: a directory (mode 0700) of segment files (mode 0600) named
 *   seg-<20-digit wall-clock ns at creation>-<4-digit sequence>.lgs
 * so that name order is creation order. A segment starts with the 8 bytes "LGSTOR01"
 * followed by record frames, only ever appended:
 *
 *   offset  size  field
 *        0     4  magic "LGSR"
 *        4     1  format version (1)
 *        5     3  reserved, zero
 *        8     8  key ID: first 8 bytes of SHA-256(key)
 *       16    12  nonce (fresh random 96 bits per record)
 *       28     4  ciphertext length N, big-endian (at most LG_STORE_MAX_RECORD)
 *       32     N  ciphertext: AES-256-GCM of the record (JSON text, see interaction_store.h)
 *     32+N    16  GCM tag
 *
 * The 32 header bytes are the GCM additional authenticated data, so a change to any byte of
 * a frame fails the tag. A reader walks frames by their length; when the magic, the length or
 * the tag is wrong it counts the record as corrupt and searches forward for the next magic
 * (so one bad byte costs one record); a frame cut short at the end of the file (a crash
 * mid-write) is counted as a truncated tail.
 *
 * Ownership: keys are plain structs (callers wipe them with lg_store_key_wipe); buffers
 * returned through `uint8_t **` are malloc'd and freed by the caller. */
#ifndef LG_STORE_FORMAT_H
#define LG_STORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/common.h"

#define LG_STORE_KEY_LEN        32
#define LG_STORE_KEY_ID_LEN     8
#define LG_STORE_NONCE_LEN      12
#define LG_STORE_TAG_LEN        16
#define LG_STORE_HDR_LEN        32
#define LG_STORE_FILE_MAGIC     "LGSTOR01"
#define LG_STORE_FILE_MAGIC_LEN 8
#define LG_STORE_REC_MAGIC      "LGSR"
#define LG_STORE_VERSION        1
/* One record's ciphertext at most: far above any real prompt, small enough that a corrupted
 * length cannot make a reader allocate gigabytes. */
#define LG_STORE_MAX_RECORD (64u * 1024u * 1024u)
#define LG_STORE_SEG_PREFIX "seg-"
#define LG_STORE_SEG_SUFFIX ".lgs"

struct lg_store_key {
    uint8_t key[LG_STORE_KEY_LEN];
    uint8_t id[LG_STORE_KEY_ID_LEN];
    char id_hex[2 * LG_STORE_KEY_ID_LEN + 1];
    char source[128]; /* "file /path" or "env VAR", for messages */
};

/** Parses base64 text (surrounding whitespace ignored) holding exactly 32 bytes. */
int lg_store_key_parse(const char *text, struct lg_store_key *out, struct lg_err *err);
/** Reads a key file (base64 text). Warns through *loose_mode when group/other can read it. */
int lg_store_key_load_file(const char *path, struct lg_store_key *out, bool *loose_mode,
                           struct lg_err *err);
/** Reads a key from environment variable `var` (base64 text). */
int lg_store_key_load_env(const char *var, struct lg_store_key *out, struct lg_err *err);
void lg_store_key_wipe(struct lg_store_key *k);

/** Builds one frame (header + ciphertext + tag) of `plain` with `key`; *out malloc'd. */
int lg_store_seal(const struct lg_store_key *key, const uint8_t *plain, size_t len, uint8_t **out,
                  size_t *outlen, struct lg_err *err);

/** What a read saw. unknown_ids lists up to 8 distinct key IDs no given key matched. */
struct lg_store_read_stats {
    uint64_t segments;
    uint64_t records;     /* decrypted and handed to the callback */
    uint64_t corrupt;     /* bad magic / length / tag, or a segment with a bad file header */
    uint64_t truncated;   /* frames cut short at the end of a segment */
    uint64_t being_written; /* a frame cut short at the end of the newest segment while the
                             * file was growing: an append in progress, not damage (left
                             * for the next read, not counted in truncated) */
    uint64_t unknown_key; /* frames whose key ID matches no given key */
    char unknown_ids[8][2 * LG_STORE_KEY_ID_LEN + 1];
    size_t n_unknown_ids;
};

/** Called with each decrypted record (plain is NUL-terminated, not owned). Return non-zero
 *  to stop the walk (that value is returned by the read function). */
typedef int (*lg_store_record_fn)(void *ctx, const char *segment, uint64_t offset,
                                  const uint8_t *plain, size_t len);

/** Walks the frames of buf[0..len) (a whole segment, file magic included). */
int lg_store_read_buffer(const uint8_t *buf, size_t len, const char *segment,
                         const struct lg_store_key *keys, size_t nkeys, lg_store_record_fn fn,
                         void *ctx, struct lg_store_read_stats *st);
/** Reads one segment file. LG_EIO with a message when it cannot be read. */
int lg_store_read_segment(const char *path, const struct lg_store_key *keys, size_t nkeys,
                          lg_store_record_fn fn, void *ctx, struct lg_store_read_stats *st,
                          struct lg_err *err);
/** Whether the file at path is (or within a short bounded wait becomes) longer than len:
 *  a writer is appending to it. */
bool lg_store_file_grew(const char *path, size_t len);
/** Reads every segment of dir in creation order. */
int lg_store_read_dir(const char *dir, const struct lg_store_key *keys, size_t nkeys,
                      lg_store_record_fn fn, void *ctx, struct lg_store_read_stats *st,
                      struct lg_err *err);

/** Offset just past the last complete frame of buf (structural check only, no key needed):
 *  where a writer could append without leaving a gap. */
size_t lg_store_valid_prefix(const uint8_t *buf, size_t len);

struct lg_store_segment {
    char name[64];
    int64_t size;
    int64_t mtime_ns;
};

/** Segment files of dir sorted by name (= creation order); *out malloc'd (NULL when none). */
int lg_store_list_segments(const char *dir, struct lg_store_segment **out, size_t *n,
                           struct lg_err *err);

/** Makes sure dir exists as a directory with mode 0700 owned by this user and that its
 *  segments are 0600: creates it (and missing parents, 0700) when absent; when group or other
 *  have any access it is fixed with chmod if `fix`, else refused. Refuses a directory owned by
 *  another user. *fixed counts what was chmod'ed. */
int lg_store_check_dir(const char *dir, bool create, bool fix, int *fixed, struct lg_err *err);

/** Deletes whole segments, oldest first: those last written more than max_age_ns before
 *  now_wall_ns (0 = no age limit), then more while the total size exceeds max_bytes (0 = no
 *  limit). Never deletes `keep` (the segment being written; may be NULL). */
int lg_store_retention(const char *dir, int64_t max_age_ns, int64_t max_bytes, const char *keep,
                       int64_t now_wall_ns, uint64_t *deleted_age, uint64_t *deleted_size,
                       struct lg_err *err);

/* ---- sampling, as the Collector's tail_sampling `probabilistic` policy does it ---- */

/** The Collector's default hash_salt when none is set. */
#define LG_STORE_DEFAULT_HASH_SALT "default-hash-seed"
/** FNV-1a 64 over the salt bytes followed by the trace ID bytes. */
uint64_t lg_store_trace_hash(const char *salt, const uint8_t *trace_id, size_t len);
/** MaxUint64 × percentage/100, rounded as Go's big.Float does it (64-bit mantissa, nearest
 *  even) and truncated to an integer. A trace is sampled when its hash <= threshold. */
uint64_t lg_store_sampling_threshold(double percentage);

#endif
