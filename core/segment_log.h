/* core/segment_log.h — the on-disk queue behind a persistent sending queue: an append-only,
 * checksummed log of records in segment files inside one directory, with a small state file
 * (replaced atomically with rename) recording what has been delivered. Also the API of the
 * `file_storage` extension (extensions/file_storage.c) that hands such logs to exporters.
 *
 * Directory layout (one directory per exporter ID + signal):
 *   seg-<16 hex digits>.log   segments, numbered in write order; a new one starts when the
 *                             current one would pass segment_size
 *   state                     snapshot: committed read position + the records acknowledged
 *                             past it (out of order) + the records handed to a sender and
 *                             not yet acknowledged (so a restart knows what it may deliver
 *                             twice); written to state.tmp, then renamed over `state`
 *   journal                   the same events since the snapshot, one 24-byte entry each
 *                             (u32 type 'A' acknowledged | 'F' in flight, u32 CRC-32 of
 *                             type+position, u64 segment, u64 offset); every 4096 entries a
 *                             new snapshot is written and the journal emptied
 *
 * Record (all integers little-endian):
 *   u32 magic "LGQ1" | u32 payload length | u32 items | u32 CRC-32 (zlib) of the 8 bytes
 *   length+items followed by the payload | payload
 * The payload is opaque here; the exporter helper writes one signal byte + the protobuf
 * Export*ServiceRequest. A record that fails magic, length or CRC checks (a torn tail after
 * SIGKILL, a flipped byte) is skipped: the reader scans forward for the next valid record,
 * counts one corrupt region, and carries on. Nothing in a segment file can crash the reader.
 *
 * Records get an in-process id (increasing, starting at 0 at each open) used to acknowledge
 * them; ids are not stored on disk. Thread-safe: one internal mutex. The log owns its files
 * and memory; record payloads returned by read are malloc'd and owned by the caller. */
#ifndef LG_SEGMENT_LOG_H
#define LG_SEGMENT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "common.h"

struct lg_segment_log;
struct lg_component;

#define LG_SEGMENT_LOG_DEFAULT_SEGMENT_SIZE (8 * 1024 * 1024)
/* A record larger than this is refused on append and treated as corrupt on read. */
#define LG_SEGMENT_LOG_MAX_RECORD (256u * 1024 * 1024)

struct lg_segment_log_opts {
    const char *dir;      /* created (one level) when missing */
    bool fsync;           /* fdatasync each append (and the state file) before returning */
    int64_t segment_size; /* rotate past this many bytes; <= 0: the default (8 MiB) */
};

struct lg_segment_log_stats {
    uint64_t pending_records; /* appended or replayed, not yet read */
    uint64_t pending_items;
    uint64_t pending_bytes;   /* payload bytes */
    uint64_t unacked_records; /* pending + read and not yet acknowledged */
    uint64_t corrupt_records; /* corrupt regions skipped since open */
    uint64_t corrupt_bytes;
    uint64_t replayed_records; /* found unacknowledged at open */
    uint64_t replayed_items;
    uint64_t redelivered_records; /* of those, handed to a sender before the restart */
    uint64_t redelivered_items;
    uint64_t segments; /* segment files on disk */
};

struct lg_segment_record {
    uint64_t id;
    uint8_t *data; /* malloc'd; the caller frees */
    size_t len;
    uint32_t items;
    bool redelivery; /* it was handed to a sender before a restart */
};

/** Opens (creating the directory when missing) and scans every segment from the committed
 *  position: valid unacknowledged records become pending, corrupt regions are counted and
 *  skipped, a torn tail of the last segment is cut off so appends continue cleanly. */
int lg_segment_log_open(const struct lg_segment_log_opts *o, struct lg_segment_log **out,
                        struct lg_err *err);
/** Appends one record; written with write() (and fdatasync when fsync) before it returns. */
int lg_segment_log_append(struct lg_segment_log *l, const void *data, size_t len, uint32_t items,
                          struct lg_err *err);
/** Takes the oldest pending record. LG_OK, LG_EAGAIN when none is pending, LG_EIO/LG_ENOMEM.
 *  A record that became unreadable since open is counted corrupt and skipped. */
int lg_segment_log_read(struct lg_segment_log *l, struct lg_segment_record *rec);
/** Marks a read record delivered (or given up). The committed position advances past every
 *  contiguous acknowledged record; fully acknowledged segments are deleted. */
int lg_segment_log_ack(struct lg_segment_log *l, uint64_t id);
void lg_segment_log_stats(struct lg_segment_log *l, struct lg_segment_log_stats *st);
/** Closes; unacknowledged records stay on disk for the next open. NULL allowed. */
void lg_segment_log_close(struct lg_segment_log *l);

/** Reads a buffer as one segment file's content and returns how many valid records and
 *  corrupt regions it holds (the scanner the log uses; exposed for the fuzz target). */
void lg_segment_scan_buffer(const uint8_t *buf, size_t len, size_t *valid, size_t *corrupt);

/* ---- file_storage extension (extensions/file_storage.c) ---- */

/** True when ext is a file_storage extension instance. */
bool lg_file_storage_is(const struct lg_component *ext);
/** Opens the queue of (owner ID, signal) inside the extension's directory, in a
 *  subdirectory named after both (characters other than [A-Za-z0-9._-] escaped as ~XX).
 *  The extension must have been started. */
int lg_file_storage_open_queue(struct lg_component *ext, const char *owner_id,
                               enum lg_signal signal, struct lg_segment_log **out,
                               struct lg_err *err);

#endif
