// The PAL's file functions for an RTOS host half (EW_PAL_HOST pointing at a board's own
// folder, which compiles this file next to its clock, log and entropy): pal::read_file
// (the INI, key files, the state file) and pal::write_file_atomic (the state file) call
// two hooks the board implements on its flash file system (LittleFS, FatFS, SPIFFS, NVS).
// Without them the weak defaults answer ENOTSUP: edgeway then runs without a state file
// and says so once ("state_file ...: not supported on this port").
//
//   extern "C" int ew_board_file_read(const char* path, char* buf, size_t cap, size_t* len);
//     the whole file into buf (cap includes room for a NUL); 0 or an errno value
//     (ENOENT when there is none, EFBIG when it does not fit)
//   extern "C" int ew_board_file_replace(const char* path, const void* data, size_t len);
//     the new content as a whole or not at all (LittleFS: write "path.tmp", close, rename;
//     NVS: one blob set + commit); 0 or an errno value
//
// Files on a board have no other users: private_ok is always true. Built for Cortex-M by
// tests/target (the self-test checks the "not supported" default).
#include <errno.h>
#include <stddef.h>

#include "pal.h"

#ifndef ENOTSUP
#define ENOTSUP 134
#endif

extern "C" {
__attribute__((weak)) int ew_board_file_read(const char*, char*, size_t, size_t*) { return ENOTSUP; }
__attribute__((weak)) int ew_board_file_replace(const char*, const void*, size_t) { return ENOTSUP; }
}

namespace pal {

int read_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok) {
    if (len) *len = 0;
    if (private_ok) *private_ok = true;
    if (!path || !buf || cap == 0) return EINVAL;
    buf[0] = '\0';
    size_t n = 0;
    int rc = ew_board_file_read(path, buf, cap, &n);
    if (rc != 0) return rc;
    if (n >= cap) return EFBIG;
    buf[n] = '\0';
    if (len) *len = n;
    return 0;
}

int write_file_atomic(const char* path, const void* data, size_t len) {
    if (!path || !path[0] || (!data && len)) return EINVAL;
    return ew_board_file_replace(path, data, len);
}

}  // namespace pal
