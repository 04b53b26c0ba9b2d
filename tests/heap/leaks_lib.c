/* A library dlopen'ed by leaks_target: its global is the only pointer to
 * the block lib_keep allocates, so that block is no leak. */
#include <stdlib.h>

void *volatile lib_global;

__attribute__((noipa)) void *lib_block(void) { return malloc(600); }

void lib_keep(void) { lib_global = lib_block(); }
