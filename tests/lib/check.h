/*
 * CHECK for the unit tests of one program each (HTTP, CPU ring and thread
 * hooks): a failed condition is printed with its place and counted in
 * `failures`, and the test goes on, so that one run shows every failure.
 */
#ifndef MPROF_TESTS_UNIT_CHECK_H
#define MPROF_TESTS_UNIT_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

#endif
