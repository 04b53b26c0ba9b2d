/*
 * The heap profile (heap_profile.c): Go's "heap" and "allocs" kinds, with
 * Go's four sample types built from the sampler's buckets.  Everything it
 * offers goes through the profile registry (profiles/registry.h) and the
 * public API; its init is in profiles/hooks.h.
 */
#ifndef MPROF_PROFILES_HEAP_PROFILE_H
#define MPROF_PROFILES_HEAP_PROFILE_H

#include "encode/pprof.h"

#endif /* MPROF_PROFILES_HEAP_PROFILE_H */
