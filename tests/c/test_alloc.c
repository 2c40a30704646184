/* test_alloc.c - the arena of large blocks behind nn_alloc_floats
 * (runtime/tensor.c): blocks never overlap, freed memory is reused by
 * requests of other sizes, and resident memory stays bounded.  Faults are
 * counted with getrusage and resident memory is read from /proc/self/statm;
 * under AddressSanitizer (plain malloc) the tests only check that
 * allocation works. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Resident memory of the process in bytes, or -1 when unknown. */
static long long resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long long size, pages = -1;
  if (!f) return -1;
  if (fscanf(f, "%lld %lld", &size, &pages) != 2) pages = -1;
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

/* One block at a time of ever larger sizes: the arena must not keep them
 * all (their sum is 820 MiB); resident memory stays within the largest live
 * set plus the slack, plus what the rest of the process uses. */
static void test_cached_memory_is_bounded(void) {
  long long m0 = resident_bytes();
  long long most = 0;
  for (int mib = 1; mib <= 40; mib++) {
    int64_t n = (int64_t)mib << 18; /* mib MiB of floats */
    float *p = nn_alloc_floats(n, NULL);
    CHECK(p != NULL);
    if (!p) return;
    touch(p, n);
    long long m = resident_bytes();
    if (m > most) most = m;
    nn_free_floats(p);
  }
  if (CACHED && m0 > 0) {
    long long grown = (most - m0) >> 20;
    if (grown > 60) fprintf(stderr, "  resident memory grew by %lld MiB\n", grown);
    CHECK(grown <= 60);
  }
}

/* A training step's pattern: activations of decreasing sizes made in
 * forward and freed in reverse, with gradients of the same sizes made in
 * between (the Fashion-MNIST CNN's: 6.1, 6.1, 1.5, 3.1, 0.8 MiB...).  Free
 * memory of any size is reused, so once warm a step faults nothing in.
 * (A cache of whole blocks reused only by requests of about their size,
 * bounded near the largest live set, faulted in 13 MiB on every step.) */
static void test_step_pattern_reuses_memory(void) {
  static const int64_t kib[] = {6272, 6272, 1568, 3136, 3136, 784, 392, 1024};
  enum { K = sizeof kib / sizeof kib[0] };
  long before = 0;
  for (int it = 0; it < 60; it++) {
    if (it == 30) before = minor_faults();
    float *act[K], *grad[K];
    for (int i = 0; i < K; i++) {
      act[i] = nn_alloc_floats(kib[i] * 256, NULL);
      CHECK(act[i] != NULL);
      if (!act[i]) return;
      touch(act[i], kib[i] * 256);
    }
    float *g = NULL;
    for (int i = K - 1; i >= 0; i--) {
      grad[i] = nn_alloc_floats(kib[i] * 256, NULL);
      CHECK(grad[i] != NULL);
      if (!grad[i]) return;
      touch(grad[i], kib[i] * 256);
      nn_free_floats(g);
      nn_free_floats(act[i]);
      g = grad[i];
    }
    nn_free_floats(g);
  }
  long faults = minor_faults() - before;
  if (CACHED) {
    if (faults >= 300) fprintf(stderr, "  %ld faults in 30 steps\n", faults);
    CHECK(faults < 300);
  }
}

/* Blocks of random sizes (256 KiB to 9 MiB, and small ones) allocated and
 * freed in random order: each keeps the pattern written into it, so no two
 * live blocks overlap, whatever merging and splitting of free ranges the
 * order causes. */
static void test_blocks_never_overlap(void) {
  enum { SLOTS = 48 };
  float *p[SLOTS] = {0};
  int64_t n[SLOTS] = {0};
  unsigned seed = 12345;
  int bad = 0;
  for (int it = 0; it < 3000 && !bad; it++) {
    seed = seed * 1103515245u + 12345u;
    int i = (int)((seed >> 8) % SLOTS);
    if (p[i]) {
      for (int64_t k = 0; k < n[i]; k += 997)
        if (p[i][k] != (float)(i * 1000 + (k % 1000))) bad = 1;
      if (p[i][n[i] - 1] != (float)(i * 1000 + ((n[i] - 1) % 1000))) bad = 1;
      nn_free_floats(p[i]);
      p[i] = NULL;
    } else {
      seed = seed * 1103515245u + 12345u;
      n[i] = (seed >> 16) % 4 == 0 ? 1 + (int64_t)((seed >> 8) % 5000)
                                   : 65536 + (int64_t)((seed >> 4) % (9 << 18));
      p[i] = nn_alloc_floats(n[i], NULL);
      CHECK(p[i] != NULL);
      if (!p[i]) return;
      CHECK(((uintptr_t)p[i] & 63) == 0);
      for (int64_t k = 0; k < n[i]; k += 997) p[i][k] = (float)(i * 1000 + (k % 1000));
      p[i][n[i] - 1] = (float)(i * 1000 + ((n[i] - 1) % 1000));
    }
  }
  CHECK(!bad);
  for (int i = 0; i < SLOTS; i++) nn_free_floats(p[i]);
}

int main(void) {
  RUN(test_mixed_sizes_reuse_blocks);
  RUN(test_step_pattern_reuses_memory);
  RUN(test_blocks_never_overlap);
  RUN(test_cached_memory_is_bounded);
  return check_report("alloc");
}
