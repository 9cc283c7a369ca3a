// Test-only LD_PRELOAD shim: fsync and fdatasync on files under one directory sleep first, like an SD card
// that takes seconds per sync; every slowed call is reported on a pipe so the test can wait for it.
//
// Environment (read at each call):
//   SHIPD_SLOW_FSYNC_DIR        absolute, canonical directory; the directory itself and everything below it
//                               is slowed. Unset: the shim does nothing.
//   SHIPD_SLOW_FSYNC_MS         the delay in ms (default 2000)
//   SHIPD_SLOW_FSYNC_NOTIFY_FD  optional fd that gets "begin|end <call> tid=<tid> main=<0|1> <path>\n"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static sync_fn next_symbol(const char* name) {
    void* symbol = dlsym(RTLD_NEXT, name);
    sync_fn fn = NULL;
    // ISO C has no conversion from object to function pointer; copying the bits is what dlsym(3) suggests.
    memcpy(&fn, &symbol, sizeof fn);
    return fn;
}

static int under_slow_dir(int fd, char* path, size_t size) {
    const char* dir = getenv("SHIPD_SLOW_FSYNC_DIR");
    if (!dir || !*dir) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, path, size - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    const size_t len = strlen(dir);
    return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

static void report(const char* what, const char* call, const char* path) {
    const char* fd_text = getenv("SHIPD_SLOW_FSYNC_NOTIFY_FD");
    if (!fd_text || !*fd_text) return;
    const long tid = syscall(SYS_gettid);
    char line[PATH_MAX + 128];
    const int n = snprintf(line, sizeof line, "%s %s tid=%ld main=%d %s\n", what, call, tid,
                           tid == (long)getpid() ? 1 : 0, path);
    if (n > 0) {
        // One write below PIPE_BUF: lines from several threads never interleave.
        const ssize_t w = write(atoi(fd_text), line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

static int slowed(int fd, const char* call, sync_fn real) {
    char path[PATH_MAX];
    const int slow = under_slow_dir(fd, path, sizeof path);
    if (slow) {
        const char* ms_text = getenv("SHIPD_SLOW_FSYNC_MS");
        const long ms = ms_text && *ms_text ? atol(ms_text) : 2000;
        report("begin", call, path);
        struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&left, &left) != 0 && errno == EINTR) {
        }
    }
    const int rc = real(fd);
    const int saved = errno;
    if (slow) report("end", call, path);
    errno = saved;
    return rc;
}

int fsync(int fd) {
    static sync_fn real;
    if (!real) real = next_symbol("fsync");
    return slowed(fd, "fsync", real);
}

int fdatasync(int fd) {
    static sync_fn real;
    if (!real) real = next_symbol("fdatasync");
    return slowed(fd, "fdatasync", real);
}
