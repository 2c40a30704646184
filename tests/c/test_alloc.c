/* test_alloc.c - the cache of large blocks behind nn_alloc_floats
 * (runtime/tensor.c): reuse across requests of mixed sizes, and the bound
 * on cached memory.  Faults are counted with getrusage and mapped memory is
 * read from /proc/self/statm; under AddressSanitizer (no cache) the tests
 * only check that allocation works. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "../../runtime/tensor.h"
#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#define CACHED 0
#else
#define CACHED 1
#endif

/* Floats in a 64x3x64x64 batch (3 MiB) and in 2 threads' scratch of the
 * augmentation pipeline (288 KiB): the sizes of the cached image bench. */
#define BATCH ((int64_t)64 * 3 * 64 * 64)
#define SCRATCH ((int64_t)2 * 3 * 3 * 64 * 64)

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* Mapped memory of the process in bytes, or -1 when unknown. */
static long long mapped_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long long pages = -1;
  if (!f) return -1;
  if (fscanf(f, "%lld", &pages) != 1) pages = -1;
  fclose(f);
  return pages < 0 ? -1 : pages * 4096;
}

/* Writes every page of a block, as a producer of a tensor would. */
static void touch(float *p, int64_t n) { memset(p, 1, (size_t)n * sizeof *p); }

/* store:batch then aug:batch in a loop, as Lua runs it on 2 threads: the
 * batch x, then (the collector having just freed the previous iteration's
 * tensors) the augmented batch y and the pipeline's scratch block, freed at
 * once.  Once warm, every block comes from the cache, so writing them
 * faults nothing in.  (Before the fix each miss returned as many cached
 * bytes as it requested: the scratch request evicted the cached 3 MiB block
 * the next x needed, whose miss evicted the cached scratch block, and every
 * iteration faulted in a fresh 3 MiB block and scratch, ~840 faults.) */
static void test_mixed_sizes_reuse_blocks(void) {
  float *px = NULL, *py = NULL;
  long before = 0;
  for (int it = 0; it < 200; it++) {
    if (it == 100) before = minor_faults();
    float *x = nn_alloc_floats(BATCH, NULL);
    nn_free_floats(px);
    nn_free_floats(py);
    float *y = nn_alloc_floats(BATCH, NULL);
    float *s = nn_alloc_floats(SCRATCH, NULL);
    CHECK(x && y && s);
    if (!x || !y || !s) return;
    touch(x, BATCH);
    touch(s, SCRATCH);
    touch(y, BATCH);
    nn_free_floats(s);
    px = x;
    py = y;
  }
  long faults = minor_faults() - before;
  nn_free_floats(px);
  nn_free_floats(py);
  if (CACHED) {
    if (faults >= 200)
      fprintf(stderr, "  %ld faults in 100 iterations\n", faults);
    CHECK(faults < 200);
  }
}

/* One block at a time of ever larger sizes: the cache must not keep them
 * all (their sum is 820 MiB); mapped memory stays within the largest live
 * set plus one block, plus what the rest of the process maps. */
static void test_cached_memory_is_bounded(void) {
  long long m0 = mapped_bytes();
  long long most = 0;
  for (int mib = 1; mib <= 40; mib++) {
    int64_t n = (int64_t)mib << 18; /* mib MiB of floats */
    float *p = nn_alloc_floats(n, NULL);
    CHECK(p != NULL);
    if (!p) return;
    touch(p, n);
    long long m = mapped_bytes();
    if (m > most) most = m;
    nn_free_floats(p);
  }
  if (CACHED && m0 > 0) {
    long long grown = (most - m0) >> 20;
    if (grown > 100) fprintf(stderr, "  mapped memory grew by %lld MiB\n", grown);
    CHECK(grown <= 100);
  }
}

int main(void) {
  RUN(test_mixed_sizes_reuse_blocks);
  RUN(test_cached_memory_is_bounded);
  return check_report("alloc");
}
