/* A library dlopen'ed by leaks_target: its global is the only pointer to
 * the block lib_keep allocates, so that block is no leak. */
#include <stdlib.h>

void *volatile lib_global;

__attribute__((noipa)) void *lib_block(void) { return malloc(600); }

void lib_keep(void) { lib_global = lib_block(); }

/* Dynamic TLS: a dlopen'ed library's __thread block is allocated by the
 * dynamic linker (malloc'd, reached through the thread's DTV); the only
 * pointer to lib_tls_block's block is in it. */
static __thread void *volatile lib_tls;

__attribute__((noipa)) void *lib_tls_block(void) { return malloc(800); }

void lib_keep_tls(void) { lib_tls = lib_tls_block(); }
