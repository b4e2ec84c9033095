#ifndef BATON_STATE_BLOB_H
#define BATON_STATE_BLOB_H

/* A state blob: what a generation hands to the next one. One layout
 * implementation, used by apps (baton_state_save/load) and by the
 * supervisor (which checks every blob before a generation receives it).
 *
 * A blob is a sealed memfd: a 64-byte header, then the payload.
 *
 *   offset  size  field
 *        0     8  magic "BATNSTB1"
 *        8     4  layout (1)
 *       12     4  header_size (64; readers navigate by it)
 *       16     8  length: payload bytes after the header
 *       24     4  schema: the app's own version of what the payload means
 *       28     4  checksum: CRC-32C (Castagnoli) of the payload
 *       32     4  generation that stored it (0: unknown)
 *       36     4  header_checksum: CRC-32C of the header with this field 0
 *       40     8  created: CLOCK_REALTIME nanoseconds
 *       48    16  reserved, zero
 *
 * Integers are native-endian: a blob never leaves the machine. The memfd
 * must carry F_SEAL_WRITE, F_SEAL_GROW and F_SEAL_SHRINK: once sealed, its
 * bytes cannot change, so a blob checked once stays good, and the old
 * generation cannot touch what it handed over.
 *
 * Where the host has no seals (shmfd.h: Linux before 3.17, or memfd_create
 * refused by a sandbox) a blob is an unlinked file, unsealed, and only
 * there is an unsealed blob taken. Nothing then keeps its bytes: every
 * state_blob_open copies the whole file into private memory and checks
 * the copy (header unchanged since read, length within the file, the
 * payload's CRC-32C), with or without STATE_BLOB_VERIFY, and the caller
 * reads the copy. So a reader still gets bytes that were checked; what is
 * lost is the zero-copy mapping (the payload is read once more) and the
 * guarantee that the sender cannot change the blob for a later reader,
 * which checks it again. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* ENODATA (a truncated blob, below) is an XSI STREAMS errno that FreeBSD
 * does not have: there a truncated blob answers ENOATTR, "attribute not
 * found", its nearest. */
#if !defined(ENODATA) && defined(ENOATTR)
#define ENODATA ENOATTR
#endif

#define STATE_BLOB_MAGIC "BATNSTB1"
#define STATE_BLOB_LAYOUT 1
#define STATE_BLOB_HEADER_SIZE 64

struct state_blob_header {
    char magic[8];
    uint32_t layout;
    uint32_t header_size;
    uint64_t length;
    uint32_t schema;
    uint32_t checksum;
    uint32_t generation;
    uint32_t header_checksum;
    uint64_t created_ns;
    uint8_t reserved[16];
};

/* A blob mapped read-only. */
struct state_blob {
    const void *map; /* the whole file */
    size_t map_len;
    const void *data; /* the payload */
    uint64_t length;
    uint32_t schema;
    uint32_t generation;
    uint64_t created_ns;
};

/* CRC-32C of LEN bytes, continuing from CRC (start with 0). Uses the CPU's
 * crc32 instruction where there is one. */
uint32_t state_crc32c(uint32_t crc, const void *buf, size_t len);

/* Writes a blob: a new memfd holding the header and LEN bytes of DATA,
 * sealed. Returns the fd (close-on-exec) or a negative errno. */
int state_blob_create(const void *data, size_t len, uint32_t schema, uint32_t generation);

/* For payloads built in place (no copy): a memfd of LEN payload bytes,
 * mapped writable at *PAYLOAD. Fill it, then state_blob_seal(). */
int state_blob_begin(size_t len, void **payload, int *fd);
/* Writes the header, unmaps the payload and seals. Returns 0 or -errno
 * (the fd is closed on failure). */
int state_blob_seal(int fd, void *payload, size_t len, uint32_t schema, uint32_t generation);

#define STATE_BLOB_VERIFY 1   /* check the payload's checksum */
#define STATE_BLOB_POPULATE 2 /* map every page now: the caller reads them all */

/* Checks the blob in FD and maps it read-only: sealed, header intact, a
 * length no more than MAX and no more than the file holds, and with
 * STATE_BLOB_VERIFY in FLAGS the checksum right (without it: a blob already
 * checked, which its seals keep as it was). Returns 0; or a negative errno
 * with the reason in ERR:
 *   -EPERM     not a sealed memfd (where the host has seals)
 *   -EBADMSG   not a state blob (magic, header checksum, layout)
 *   -E2BIG     larger than MAX
 *   -ENODATA   truncated: the file is shorter than its header says
 *   -EILSEQ    checksum mismatch
 * The fd stays the caller's. */
int state_blob_open(int fd, uint64_t max, int flags, struct state_blob *b, char *err,
                    size_t errlen);
void state_blob_close(struct state_blob *b);

#endif
