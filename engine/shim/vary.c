/*
 * hermetic's variation shim, preloaded through the sandbox's own /etc/ld.so.preload (never
 * an environment variable) into every dynamically linked process of every host-toolchain
 * sandbox. The canonical run loads it too, as a pass-through, so the two runs of a dual
 * build see the same files, the same /etc and the same mappings. In the second run it
 * makes the build observe:
 *   - a wall clock 200 days ahead (clock_gettime, gettimeofday, time), and file times read
 *     back through any stat call shifted the same way, with explicit times written through
 *     the utime family shifted back, so a build that sets mtimes to SOURCE_DATE_EPOCH sees
 *     the same value in both runs;
 *   - every directory listing (readdir) in reverse order.
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME are left alone (the time namespace pins them).
 *
 * Why C and not libfaketime: libfaketime exports FAKETIME_SHARED into the environment,
 * fakes CLOCK_MONOTONIC, and does not wrap fstatat/statx on current glibc, so it both
 * invents and hides differences. Why not Rust: this must be a tiny, dependency-free
 * shared object loaded into every process of the build.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <utime.h>

#define SHIFT_SECONDS ((time_t)200 * 86400)

/*
 * The launcher installs this object unchanged for a pass-through run and, for the varied
 * run, with the marker's last byte patched to '1' (same size, same path), so nothing but
 * the object's bytes tells the runs apart. volatile keeps the compiler from folding it.
 */
static volatile const char mode_marker[] = "hermetic-vary-mode:0";

/* Read on every call rather than in a constructor: other libraries' constructors may
 * read the clock before ours would run. */
static int varying(void) { return mode_marker[sizeof mode_marker - 2] == '1'; }

static time_t shift_seconds(void) { return varying() ? SHIFT_SECONDS : 0; }

/* glibc declares these pointers nonnull, but callers do pass NULL (gettimeofday(NULL, tz)). */
#pragma GCC diagnostic ignored "-Wnonnull-compare"

#define REAL(name)                                                                   \
    static __typeof__(name) *real_##name;                                            \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name);

static int is_wall_clock(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_TAI ||
           clock == CLOCK_REALTIME_ALARM;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    REAL(clock_gettime);
    int rc = real_clock_gettime(clock, ts);
    if (rc == 0 && ts && is_wall_clock(clock)) ts->tv_sec += shift_seconds();
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    REAL(gettimeofday);
    int rc = real_gettimeofday(tv, tz);
    if (rc == 0 && tv) tv->tv_sec += shift_seconds();
    return rc;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out) *out = now.tv_sec;
    return now.tv_sec;
}

static void shift_stat(struct stat *st) {
    st->st_atim.tv_sec += shift_seconds();
    st->st_mtim.tv_sec += shift_seconds();
    st->st_ctim.tv_sec += shift_seconds();
}

int stat(const char *restrict path, struct stat *restrict st) {
    REAL(stat);
    int rc = real_stat(path, st);
    if (rc == 0) shift_stat(st);
    return rc;
}

int lstat(const char *restrict path, struct stat *restrict st) {
    REAL(lstat);
    int rc = real_lstat(path, st);
    if (rc == 0) shift_stat(st);
    return rc;
}

int fstat(int fd, struct stat *st) {
    REAL(fstat);
    int rc = real_fstat(fd, st);
    if (rc == 0) shift_stat(st);
    return rc;
}

int fstatat(int dirfd, const char *restrict path, struct stat *restrict st, int flags) {
    REAL(fstatat);
    int rc = real_fstatat(dirfd, path, st, flags);
    if (rc == 0) shift_stat(st);
    return rc;
}

/* On LP64 glibc the *64 variants take the same struct. */
int stat64(const char *restrict path, struct stat64 *restrict st) {
    return stat(path, (struct stat *)st);
}
int lstat64(const char *restrict path, struct stat64 *restrict st) {
    return lstat(path, (struct stat *)st);
}
int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }
int fstatat64(int dirfd, const char *restrict path, struct stat64 *restrict st, int flags) {
    return fstatat(dirfd, path, (struct stat *)st, flags);
}

int statx(int dirfd, const char *restrict path, int flags, unsigned int mask,
          struct statx *restrict stx) {
    REAL(statx);
    int rc = real_statx(dirfd, path, flags, mask, stx);
    if (rc == 0) {
        stx->stx_atime.tv_sec += shift_seconds();
        stx->stx_btime.tv_sec += shift_seconds();
        stx->stx_ctime.tv_sec += shift_seconds();
        stx->stx_mtime.tv_sec += shift_seconds();
    }
    return rc;
}

/* Explicit times written are shifted back, so what is read back is what was written. */
static const struct timespec *unshift_timespecs(const struct timespec in[2], struct timespec out[2]) {
    if (!in) return NULL;
    for (int i = 0; i < 2; i++) {
        out[i] = in[i];
        if (in[i].tv_nsec != UTIME_NOW && in[i].tv_nsec != UTIME_OMIT) out[i].tv_sec -= shift_seconds();
    }
    return out;
}

int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags) {
    REAL(utimensat);
    struct timespec shifted[2];
    return real_utimensat(dirfd, path, unshift_timespecs(times, shifted), flags);
}

int futimens(int fd, const struct timespec times[2]) {
    REAL(futimens);
    struct timespec shifted[2];
    return real_futimens(fd, unshift_timespecs(times, shifted));
}

int utimes(const char *path, const struct timeval times[2]) {
    REAL(utimes);
    if (!times) return real_utimes(path, times);
    struct timeval shifted[2] = {times[0], times[1]};
    shifted[0].tv_sec -= shift_seconds();
    shifted[1].tv_sec -= shift_seconds();
    return real_utimes(path, shifted);
}

int utime(const char *path, const struct utimbuf *times) {
    REAL(utime);
    if (!times) return real_utime(path, times);
    struct utimbuf shifted = {times->actime - shift_seconds(), times->modtime - shift_seconds()};
    return real_utime(path, &shifted);
}

/*
 * Reversed listings: on the first readdir of a stream, read it all, then hand the entries
 * out last to first. Listings are kept per descriptor number (a DIR stream is used by one
 * thread at a time, as POSIX requires), so no lock is needed; a stream whose descriptor is
 * beyond the table is listed unchanged.
 */
#define MAX_LISTINGS 1024

struct listing {
    DIR *dir;
    struct dirent **entries;
    size_t count;
};

static struct listing listings[MAX_LISTINGS];

static void forget(struct listing *l) {
    for (size_t i = 0; i < l->count; i++) free(l->entries[i]);
    free(l->entries);
    memset(l, 0, sizeof *l);
}

struct dirent *readdir(DIR *dir) {
    REAL(readdir);
    int fd = dirfd(dir);
    if (!varying() || fd < 0 || fd >= MAX_LISTINGS) return real_readdir(dir);
    struct listing *l = &listings[fd];
    if (l->dir != dir) {
        forget(l);
        l->dir = dir;
        size_t capacity = 0;
        struct dirent *entry;
        while ((entry = real_readdir(dir)) != NULL) {
            if (l->count == capacity) {
                capacity = capacity ? capacity * 2 : 64;
                struct dirent **grown = realloc(l->entries, capacity * sizeof *grown);
                if (!grown) return entry; /* out of memory: fall back to the real order */
                l->entries = grown;
            }
            struct dirent *copy = malloc(entry->d_reclen);
            if (!copy) return entry;
            memcpy(copy, entry, entry->d_reclen);
            l->entries[l->count++] = copy;
        }
    }
    if (l->count == 0) return NULL;
    return l->entries[--l->count];
}

struct dirent64 *readdir64(DIR *dir) { return (struct dirent64 *)readdir(dir); }

int closedir(DIR *dir) {
    REAL(closedir);
    int fd = dirfd(dir);
    if (fd >= 0 && fd < MAX_LISTINGS && listings[fd].dir == dir) forget(&listings[fd]);
    return real_closedir(dir);
}

void rewinddir(DIR *dir) {
    REAL(rewinddir);
    int fd = dirfd(dir);
    if (fd >= 0 && fd < MAX_LISTINGS && listings[fd].dir == dir) forget(&listings[fd]);
    real_rewinddir(dir);
}
