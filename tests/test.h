/* test.h — a minimal C test harness for ragd's CTest executables.
 * Each check that fails prints file:line and the values; main returns the failure count (capped). */
#ifndef RAGD_TEST_H
#define RAGD_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int t_failed, t_passed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) t_passed++;                                                          \
        else { t_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                             \
    do {                                                                               \
        long long _a = (long long)(a), _b = (long long)(b);                            \
        if (_a == _b) t_passed++;                                                      \
        else { t_failed++; fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, _a, _b); } \
    } while (0)

#define CHECK_STR(a, b)                                                                \
    do {                                                                               \
        const char *_a = (a), *_b = (b);                                               \
        if (_a && _b && !strcmp(_a, _b)) t_passed++;                                   \
        else { t_failed++; fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" vs \"%s\"\n", __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); } \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                          \
    do {                                                                               \
        double _a = (double)(a), _b = (double)(b);                                     \
        if (fabs(_a - _b) <= (tol)) t_passed++;                                        \
        else { t_failed++; fprintf(stderr, "%s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", __FILE__, __LINE__, #a, #b, (double)(tol), _a, _b); } \
    } while (0)

#define TEST_DONE()                                                                    \
    do {                                                                               \
        printf("%d passed, %d failed\n", t_passed, t_failed);                          \
        return t_failed ? 1 : 0;                                                       \
    } while (0)

#endif
