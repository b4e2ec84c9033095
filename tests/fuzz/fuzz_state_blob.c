/* libFuzzer: the state blob check (libbaton/state_blob.c) on any memfd.
 * The first byte picks the seals, the rest is the file. */
#include "libbaton/state_blob.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fd = memfd_create("fuzz-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return 0;
    if (write(fd, data + 1, size - 1) == (ssize_t)(size - 1)) {
        int seals = data[0] & 1 ? F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE : F_SEAL_WRITE;
        fcntl(fd, F_ADD_SEALS, seals);
        struct state_blob b;
        char err[256];
        int flags = data[0] & 2 ? STATE_BLOB_VERIFY : 0;
        if (state_blob_open(fd, 1 << 20, flags | STATE_BLOB_POPULATE, &b, err, sizeof err) == 0) {
            /* Every byte it says it holds must be readable. */
            uint64_t sum = 0;
            for (uint64_t i = 0; i < b.length; i++)
                sum += ((const uint8_t *)b.data)[i];
            if (sum > 255 * b.length) /* never: keeps the reads */
                abort();
            state_blob_close(&b);
        }
    }
    close(fd);
    return 0;
}
