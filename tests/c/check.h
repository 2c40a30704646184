/*
 * check.h - a minimal harness for the C unit tests of the runtime.
 *
 *   static void test_foo(void) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-5); }
 *   int main(void) { RUN(test_foo); return check_report("tensor"); }
 *
 * A test passes when none of its checks failed.  check_report prints
 * "<suite>: N passed, N failed" and returns the exit status.
 */
#ifndef NN_CHECK_H
#define NN_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures_in_test, check_tests_passed, check_tests_failed;
static const char *check_current;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      check_failures_in_test++;                                            \
      fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, \
              check_current, #cond);                                       \
    }                                                                      \
  } while (0)

/* |a - b| <= tol * max(1, |b|): relative for large values. */
#define CHECK_NEAR(a, b, tol)                                                \
  do {                                                                       \
    double a_ = (a), b_ = (b);                                               \
    double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                             \
    if (!(fabs(a_ - b_) <= (tol) * s_)) {                                    \
      check_failures_in_test++;                                              \
      fprintf(stderr, "%s:%d: %s: %s = %.9g, expected %s = %.9g (tol %g)\n", \
              __FILE__, __LINE__, check_current, #a, a_, #b, b_,             \
              (double)(tol));                                                \
    }                                                                        \
  } while (0)

#define RUN(fn)                               \
  do {                                        \
    check_current = #fn;                      \
    check_failures_in_test = 0;               \
    fn();                                     \
    if (check_failures_in_test)               \
      check_tests_failed++;                   \
    else                                      \
      check_tests_passed++;                   \
  } while (0)

static inline int check_report(const char *suite) {
  printf("%s: %d passed, %d failed\n", suite, check_tests_passed,
         check_tests_failed);
  return check_tests_failed ? 1 : 0;
}

#endif
