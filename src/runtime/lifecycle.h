/*
 * runtime: the library's start, exit and fork, in one place (lifecycle.c).
 * May include every folder; nothing in src/ includes it but lifecycle.c
 * (unit tests include it for every subsystem's hooks at once).
 */
#ifndef MPROF_RUNTIME_LIFECYCLE_H
#define MPROF_RUNTIME_LIFECYCLE_H

#include "core/core.h"
#include "core/options.h"
#include "unwind/unwind.h"
#include "heap/header_records.h"
#include "heap/sampler.h"
#include "symbolize/symbolize.h"
#include "profiles/heap_profile.h"
#include "profiles/hooks.h"
#include "http/http.h"

#endif /* MPROF_RUNTIME_LIFECYCLE_H */
