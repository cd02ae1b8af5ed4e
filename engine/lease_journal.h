/* engine/lease_journal.h — the append-only lease/host journal in --state-dir.
 *
 * Files in the state directory
 *   leases.journal      the journal
 *   leases.journal.tmp  a compaction in progress (removed at open)
 *   leases.lock         flock()ed while a journal is open: two servers cannot
 *                       share one state directory (they would hand out the
 *                       same addresses)
 *
 * Format, all integers little-endian
 *   header  16 bytes  "BSLJ", u16 version = 1, u16 header size = 16, u32 0,
 *                     u32 CRC32C of bytes 0..11
 *   record  12 bytes  u32 payload length (<= LEASE_JOURNAL_PAYLOAD_MAX),
 *                     u8 type, u8 flags = 0, u16 0,
 *                     u32 CRC32C of the 8 bytes before it and of the payload
 *           payload
 *   Types: 1 lease upsert, 2 lease delete, 3 host state.  Types 0x80..0xff are
 *   skippable: a reader that does not know one skips it (counted); an unknown
 *   type below 0x80 stops the replay with LEASE_JOURNAL_EUNKNOWN.  A payload may
 *   carry trailing bytes after the fields this version knows (ignored), so a
 *   record type can grow new fields without a version change.
 *
 * Opening replays the file through callbacks.  The framing and CRC of every
 * record are checked before the first callback runs.  A damaged record after
 * which no intact record follows is a torn tail (a crash in the middle of a
 * write): it is cut off, and the report says how many bytes went.  A damaged
 * record followed by intact ones is corruption: the open fails with
 * LEASE_JOURNAL_ECORRUPT and the record's offset (unless the operator asked for
 * truncate_corrupt, which cuts there instead and loses what follows).
 *
 * What is promised (the --fsync-interval-ms contract)
 *   lease_journal_append*  queues the record in memory, in this process only.
 *                          A crash loses it.  Never acknowledge on this.
 *   lease_journal_flush(j, false)
 *                          write()s the whole queue with one system call.
 *                          Afterwards a process crash (kill -9, abort, OOM
 *                          kill) loses nothing: the bytes are in the kernel's
 *                          page cache.  Power loss or a kernel crash can.
 *   lease_journal_flush(j, true)
 *                          the same plus fdatasync(): after it returns the
 *                          records also survive power loss.
 *   lease_journal_commit(j) what the DHCP service calls once per loop turn (the
 *                          before-sleep hook) before it sends the ACKs waiting
 *                          on the records appended in that turn:
 *     fsync_interval_ms = 0  write + fdatasync whenever anything is unsynced:
 *                          an ACK sent after commit survives kill -9 and power
 *                          loss.
 *     fsync_interval_ms = N  write on every commit (so kill -9 still loses no
 *                          acknowledged lease); fdatasync only when the last one
 *                          is N ms old or more.  Power loss can lose the leases
 *                          acknowledged during the last N ms (plus the length of
 *                          one fdatasync).  The caller arms a timer from
 *                          lease_journal_sync_delay_ms() so that a server that
 *                          falls quiet still syncs within N ms.
 *   With the syncer running (lease_journal_syncer_start) the fdatasync()s move to
 *   its thread, and no caller of commit ever waits for the disk:
 *     commit               write()s what is queued (kill -9 still loses nothing
 *                          that was acknowledged after it), and leaves the
 *                          fdatasync to the syncer: at most fsync_interval_ms
 *                          after the last one (0: at once).
 *     lease_journal_sync_to(j, seq)
 *                          asks the syncer for durable_seq >= seq and returns at
 *                          once; the notify callback runs on the syncer's thread
 *                          after each write + fdatasync (or its failure).  This
 *                          is what fsync_interval_ms = 0 acknowledges on.
 *   The fdatasync itself runs without the lock that writes take, so appends and
 *   writes of other threads go on while the disk works, with or without syncer.
 *   Every append returns a sequence number (per process, from 1, not stored):
 *   lease_journal_written_seq(j) >= seq  → survives a process crash;
 *   lease_journal_durable_seq(j) >= seq  → survives power loss.
 *
 * Threads: appends from any thread (one mutex around the in-memory batch).
 * flush/commit from any thread: group commit — the caller that gets the I/O
 * lock writes everyone's queued records in one write(), and callers that were
 * waiting find their records already written and return without I/O.  A caller
 * of flush may wait for another thread's write/fdatasync (never for a lock held
 * during anything else).  Compaction runs concurrently with appends and flushes
 * (it blocks them only while it copies the records appended meanwhile and
 * renames the file).
 */
#ifndef BOOTSTORM_ENGINE_LEASE_JOURNAL_H
#define BOOTSTORM_ENGINE_LEASE_JOURNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/lease_table.h"

#define LEASE_JOURNAL_FILE           "leases.journal"
#define LEASE_JOURNAL_VERSION        1
#define LEASE_JOURNAL_HEADER_SIZE    16
#define LEASE_JOURNAL_RECORD_HEADER  12
#define LEASE_JOURNAL_PAYLOAD_MAX    4096
#define LEASE_JOURNAL_HOST_NAME_MAX  64   /* host-state key bytes */
#define LEASE_JOURNAL_HOST_VALUE_MAX 1024 /* host-state value bytes */
#define LEASE_JOURNAL_COMPACT_MIN_DEFAULT (8u << 20) /* compact_min_bytes = 0 means this */

enum lease_journal_type {
    LEASE_JOURNAL_UPSERT     = 1,    /* a whole struct lease (the newest state of its key) */
    LEASE_JOURNAL_DELETE     = 2,    /* the key has no lease */
    LEASE_JOURNAL_HOST_STATE = 3,    /* hardware address + name + value (install-once state) */
    LEASE_JOURNAL_SKIPPABLE  = 0x80, /* types >= this may be ignored by older readers */
};

enum lease_journal_result {
    LEASE_JOURNAL_OK       = 0,
    LEASE_JOURNAL_ECORRUPT = -EBADMSG,         /* damaged record with intact ones after it,
                                                  bad header CRC, or bad record contents */
    LEASE_JOURNAL_EMAGIC   = -EMEDIUMTYPE,     /* the file is not a bootstorm journal */
    LEASE_JOURNAL_EVERSION = -EPROTONOSUPPORT, /* written by a newer format version */
    LEASE_JOURNAL_EUNKNOWN = -ENOMSG,          /* a mandatory record type unknown here */
    LEASE_JOURNAL_EBUSY    = -EBUSY,           /* another process has the state directory */
    LEASE_JOURNAL_E2BIG    = -E2BIG,           /* payload, name or value too long */
    LEASE_JOURNAL_EINVAL   = -EINVAL,
    LEASE_JOURNAL_ENOMEM   = -ENOMEM,
    LEASE_JOURNAL_ENOBUFS  = -ENOBUFS,         /* batch at batch_max_bytes: flush first */
    /* anything else: -errno of a failed system call (EIO, ENOSPC, ...) */
};

struct lease_journal;

struct lease_journal_options {
    unsigned fsync_interval_ms; /* see the contract above; 0 = fsync on every commit */
    uint64_t compact_min_bytes; /* never compact a smaller file; 0 = LEASE_JOURNAL_COMPACT_MIN_DEFAULT */
    unsigned compact_ratio;     /* compact when file > ratio x live set; 0 = 4 */
    size_t batch_max_bytes;     /* bound on queued, unflushed bytes; 0 = 64 MiB */
    bool truncate_corrupt;      /* repair mode: cut at the first damaged record even
                                   when intact records follow (they are lost) */
    void (*on_log)(void *arg, const char *msg); /* NULL: stderr */
    void *log_arg;
};

/* Replay callbacks, in file order.  Any may be NULL (record ignored).  A
 * non-zero return stops the replay; lease_journal_open then fails with that
 * value and report.error_offset names the record. */
struct lease_journal_replay {
    int (*on_upsert)(void *arg, const struct lease *l);
    int (*on_delete)(void *arg, const struct lease_key *k);
    int (*on_host_state)(void *arg, const struct lease_key *k, const char *name, size_t name_len,
                         const void *value, size_t value_len);
    void *arg;
    /* Called once, after the whole file was verified and before the first
     * record callback, with the number of upsert records and an estimate of
     * the distinct keys among them (HyperLogLog: within a few per cent above
     * 10,000 keys, never more than upsert_records), so that the caller sizes
     * its table once instead of growing it record by record
     * (lease_table_reserve).  A journal holds several records per live lease
     * until it is compacted: sizing for the records would waste memory. */
    int (*on_begin)(void *arg, uint64_t upsert_records, uint64_t upsert_keys);
};

struct lease_journal_report {
    uint64_t records;         /* records replayed */
    uint64_t upserts, deletes, host_states;
    uint64_t skipped;         /* skippable records of unknown type */
    uint64_t file_bytes;      /* journal size once open */
    uint64_t truncated_bytes; /* torn tail cut off (0 normally) */
    uint64_t error_offset;    /* the record an error is about, or where the tail was cut */
    char message[224];        /* what happened, for the log; "" when nothing notable */
};

/** Open (creating dir and the journal if missing) and replay the journal.
 *  opt and replay may be NULL, rep may be NULL.  On success *out owns the
 *  files and the lock; close it with lease_journal_close().  On failure
 *  nothing stays open and rep->message/error_offset say why.  Replay
 *  callbacks run on the calling thread; on a failure after some callbacks
 *  ran (a callback error, invalid record contents) the caller discards what
 *  they built. */
int lease_journal_open(const char *dir, const struct lease_journal_options *opt,
                       const struct lease_journal_replay *replay, struct lease_journal **out,
                       struct lease_journal_report *rep);

/** Flush with fdatasync, release the directory lock, free.  Returns the flush
 *  result (the journal is freed either way). */
int lease_journal_close(struct lease_journal *j);

/** Queue one record; *seq (may be NULL) gets its sequence number.  type 1..255,
 *  len <= LEASE_JOURNAL_PAYLOAD_MAX.  Errors: EINVAL, E2BIG, ENOBUFS, ENOMEM. */
int lease_journal_append(struct lease_journal *j, unsigned type, const void *payload, size_t len,
                         uint64_t *seq);
/** Queue a lease upsert (the lease must pass lease_validate). */
int lease_journal_append_upsert(struct lease_journal *j, const struct lease *l, uint64_t *seq);
/** Queue a lease delete. */
int lease_journal_append_delete(struct lease_journal *j, const struct lease_key *k, uint64_t *seq);
/** Queue a host-state record: name 1..LEASE_JOURNAL_HOST_NAME_MAX bytes, value
 *  0..LEASE_JOURNAL_HOST_VALUE_MAX bytes (by convention an empty value unsets). */
int lease_journal_append_host_state(struct lease_journal *j, const struct lease_key *k,
                                    const char *name, size_t name_len, const void *value,
                                    size_t value_len, uint64_t *seq);

/** Write every queued record (one write()), then fdatasync if do_fsync.
 *  Returns LEASE_JOURNAL_OK or -errno.  After a failed write the file is cut
 *  back and the records stay queued for the next flush; after a failed
 *  fdatasync, or a failed cut, the journal is broken and every later flush
 *  returns that error (the page cache state is unknown; restart and replay). */
int lease_journal_flush(struct lease_journal *j, bool do_fsync);
/** flush() with the fsync_interval_ms policy; see the contract at the top. */
int lease_journal_commit(struct lease_journal *j);
/** When the next commit is needed: -1 nothing queued or unsynced (or the
 *  syncer runs: it takes care of both), 0 now, else milliseconds until the
 *  fsync interval runs out. */
int lease_journal_sync_delay_ms(struct lease_journal *j);

/** Starts the syncer thread (see the contract above); notify (may be NULL) is
 *  called on it after every write + fdatasync attempt, without any journal
 *  lock held.  lease_journal_close() stops it.  EINVAL when already running. */
int lease_journal_syncer_start(struct lease_journal *j, void (*notify)(void *arg), void *arg);
/** durable_seq >= seq soon: with the syncer, asks it and returns at once;
 *  without, writes and fdatasyncs here.  Returns the journal's sticky error
 *  (a failed fdatasync: nothing more will become durable) or OK. */
int lease_journal_sync_to(struct lease_journal *j, uint64_t seq);
/** 0, or the sticky error that stops every later flush. */
int lease_journal_error(struct lease_journal *j);

uint64_t lease_journal_appended_seq(struct lease_journal *j);
uint64_t lease_journal_written_seq(struct lease_journal *j);
uint64_t lease_journal_durable_seq(struct lease_journal *j);

/* Compaction: the snapshot callback re-emits the whole live set. */
struct lease_journal_snapshot;
typedef int (*lease_journal_snapshot_fn)(void *arg, struct lease_journal_snapshot *snap);
int lease_journal_snapshot_lease(struct lease_journal_snapshot *snap, const struct lease *l);
int lease_journal_snapshot_host_state(struct lease_journal_snapshot *snap, const struct lease_key *k,
                                      const char *name, size_t name_len, const void *value,
                                      size_t value_len);

/** True when the file is larger than compact_min_bytes and than compact_ratio
 *  times `live_records` records of the file's average record size. */
bool lease_journal_should_compact(struct lease_journal *j, uint64_t live_records);

/** Rewrite the journal as fn's snapshot followed by every record appended
 *  since the snapshot began, then fsync it, rename it over the journal and
 *  fsync the directory.  Safe while other threads append and flush.
 *  For the result to be exact, whoever appends must change the in-memory
 *  state that fn reads *before* appending the record, under a lock that
 *  orders writers of one key (lease_table's commit callback does this).
 *  On failure the old journal stays in place, untouched. */
int lease_journal_compact(struct lease_journal *j, lease_journal_snapshot_fn fn, void *arg);

struct lease_journal_stats {
    uint64_t file_bytes;
    uint64_t file_records;
    uint64_t pending_bytes;   /* queued, not yet written */
    uint64_t appended_seq, written_seq, durable_seq;
    uint64_t writes, fsyncs, compactions;
    int broken;               /* 0, or the sticky error */
};
void lease_journal_stats(struct lease_journal *j, struct lease_journal_stats *st);

/** CRC32C (Castagnoli), chainable: crc32c(crc32c(0, a), b) == crc32c(0, a‖b).
 *  Uses SSE4.2 when the CPU has it. */
uint32_t lease_journal_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
