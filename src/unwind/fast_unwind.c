/*
 * A caching DWARF CFI unwinder for x86-64, for the allocation hot path.
 *
 * libgcc's _Unwind_Backtrace is correct everywhere but re-parses the CIE
 * and FDE of every frame on every walk: about 150 ns a frame, which made
 * stack capture the largest cost of the heap profiler (15% of the churn
 * benchmark at the default rate, most of the 8x budget at rate 1).  Yet a
 * program has few distinct return addresses, and on x86-64 the unwind rule
 * that matters at one of them nearly always has the same small shape:
 *
 *     CFA = RSP + k   or   CFA = RBP + k
 *     return address at CFA - 8
 *     caller's RBP unchanged, or saved at CFA - 8n
 *
 * So this unwinder computes that rule once per address from .eh_frame (found
 * through _dl_find_object, lock-free and allocation-free), packs it into one
 * 64-bit word with the address as tag, and keeps it in a direct-mapped
 * cache that threads read and fill without locks.  A walk is then a few
 * loads per frame.  Any rule outside that shape (a CFA given by a DWARF
 * expression, stack realignment through another register, a signal
 * trampoline) makes the walk report failure, and the caller falls back to
 * libgcc for that stack: rare frames cost what they cost before, common
 * frames almost nothing.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "shared/hash.h"
#include "unwind/unwind.h"
#include "unwind/fast_unwind.h"

/* DWARF register numbers on x86-64. */
enum { REG_RBP = 6, REG_RSP = 7, REG_RA = 16 };

/* A rule as computed from the CFI. */
struct frame_rule {
    int cfa_reg;     /* REG_RSP or REG_RBP; anything else is unsupported */
    int64_t cfa_off;
    int rbp_saved;   /* 1 if the caller's RBP is stored at CFA + rbp_off */
    int64_t rbp_off;
    int ra_off_ok;   /* return address saved at CFA - 8 */
    int ra_undefined;/* outermost frame (_start, clone): end of stack */
    int unsupported;
};

/* ---------------------------------------------------------- the cache */

/*
 * Entry layout (64 bits): pc tag in bits 63..17 (user addresses on x86-64
 * fit in 47 bits), then
 *   bit 16      CFA register is RBP (else RSP)
 *   bits 15..6  CFA offset / 8 (1..1023); 0 marks the special rules below
 *   bits 5..1   slot n of the saved RBP at CFA - 8n (0: RBP unchanged)
 *   bit 0       entry valid
 * Special rules with offset field 0: RBP bit clear = end of stack, RBP bit
 * set = unsupported (fall back).
 */
#define CACHE_BITS 13
static _Atomic uint64_t rule_cache[1u << CACHE_BITS];

_Atomic unsigned mprof_code_generation;

void mprof_unwind_forget(void)
{
    /* Entries for code still loaded are computed again on their next
     * miss; a walker reading an entry as it is cleared gets the old rule
     * or a miss, both right for code that is still there (no thread can
     * be running in the code just unloaded). */
    for (size_t i = 0; i < (1u << CACHE_BITS); i++)
        atomic_store_explicit(&rule_cache[i], 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&mprof_code_generation, 1, memory_order_release);
}

static inline size_t cache_index(uintptr_t pc)
{
    return (size_t)(mprof_hash_pointer(pc) >> (64 - CACHE_BITS));
}

static int pack_rule(uintptr_t pc, const struct frame_rule *r, uint64_t *out)
{
    uint64_t tag = (uint64_t)pc << 17;
    if ((pc >> 47) != 0)
        return 0;
    if (r->ra_undefined) {
        *out = tag | 1;
        return 1;
    }
    if (r->unsupported || !r->ra_off_ok || (r->cfa_reg != REG_RSP && r->cfa_reg != REG_RBP)) {
        *out = tag | (1u << 16) | 1;
        return 1;
    }
    if (r->cfa_off <= 0 || (r->cfa_off & 7) != 0 || r->cfa_off / 8 > 1023)
        return 0;
    uint64_t slot = 0;
    if (r->rbp_saved) {
        if (r->rbp_off >= 0 || ((-r->rbp_off) & 7) != 0 || -r->rbp_off / 8 > 31)
            return 0;
        slot = (uint64_t)(-r->rbp_off / 8);
    }
    *out = tag | ((uint64_t)(r->cfa_reg == REG_RBP) << 16) | ((uint64_t)(r->cfa_off / 8) << 6) |
           (slot << 1) | 1;
    return 1;
}

/* ---------------------------------------------------------- CFI parsing */

struct reader {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t read_uleb(struct reader *r)
{
    uint64_t v = 0;
    int shift = 0;
    while (r->p < r->end) {
        uint8_t b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t read_sleb(struct reader *r)
{
    int64_t v = 0;
    int shift = 0;
    uint8_t b = 0;
    while (r->p < r->end) {
        b = *r->p++;
        if (shift < 64)
            v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= -((int64_t)1 << shift);
            return v;
        }
    }
    r->bad = 1;
    return 0;
}

static uint64_t read_fixed(struct reader *r, int n)
{
    if (r->end - r->p < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, (size_t)n); /* little-endian */
    r->p += n;
    return v;
}

/* DW_EH_PE pointer encodings. */
#define PE_OMIT 0xff
static uintptr_t read_encoded(struct reader *r, uint8_t enc, uintptr_t datarel_base)
{
    if (enc == PE_OMIT)
        return 0;
    const uint8_t *field = r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = read_fixed(r, 8); break;                        /* absptr */
    case 0x01: v = read_uleb(r); break;
    case 0x02: v = read_fixed(r, 2); break;
    case 0x03: v = read_fixed(r, 4); break;
    case 0x04: v = read_fixed(r, 8); break;
    case 0x09: v = (uint64_t)read_sleb(r); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)read_fixed(r, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)read_fixed(r, 4); break;
    case 0x0c: v = read_fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += (uintptr_t)field; break;   /* pcrel */
    case 0x30: v += datarel_base; break;       /* datarel */
    default: r->bad = 1; return 0;
    }
    if (enc & 0x80) /* indirect: never used for pc_begin; refuse */
        r->bad = 1;
    return (uintptr_t)v;
}

struct cie_info {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int signal_frame;
    const uint8_t *insns, *insns_end;
};

static int parse_cie(const uint8_t *cie, struct cie_info *ci)
{
    struct reader r = {cie, cie + 4, 0};
    uint64_t len = read_fixed(&r, 4);
    if (len == 0xffffffffu || len == 0)
        return -1;
    r.end = cie + 4 + len;
    if (read_fixed(&r, 4) != 0) /* CIE id */
        return -1;
    uint8_t version = (uint8_t)read_fixed(&r, 1);
    const char *aug = (const char *)r.p;
    size_t auglen = strnlen(aug, (size_t)(r.end - r.p));
    r.p += auglen + 1;
    if (aug[0] == 'e' && aug[1] == 'h')
        return -1; /* ancient GCC format; not worth supporting */
    ci->code_align = read_uleb(&r);
    ci->data_align = read_sleb(&r);
    ci->ra_reg = version == 1 ? read_fixed(&r, 1) : read_uleb(&r);
    ci->fde_enc = 0;
    ci->signal_frame = 0;
    if (aug[0] == 'z') {
        uint64_t alen = read_uleb(&r);
        const uint8_t *aend = r.p + alen;
        for (const char *a = aug + 1; *a && !r.bad; a++) {
            if (*a == 'R')
                ci->fde_enc = (uint8_t)read_fixed(&r, 1);
            else if (*a == 'L')
                (void)read_fixed(&r, 1);
            else if (*a == 'P') {
                uint8_t penc = (uint8_t)read_fixed(&r, 1);
                (void)read_encoded(&r, penc & 0x7f, 0);
            } else if (*a == 'S')
                ci->signal_frame = 1;
            else if (*a == 'B')
                ;
            else
                break; /* unknown: the length tells where the rest starts */
        }
        r.p = aend;
    }
    if (r.bad || r.p > r.end)
        return -1;
    ci->insns = r.p;
    ci->insns_end = r.end;
    return 0;
}

struct cfa_state {
    int cfa_reg;
    int64_t cfa_off;
    int cfa_expr;
    int rbp_how;     /* 0 same, 1 offset, 2 other (unsupported) */
    int64_t rbp_off;
    int ra_how;      /* 0 unset, 1 offset, 2 undefined, 3 other */
    int64_t ra_off;
};

/* A rule for RBP or the return address that the fast path does not model
 * (another register, an expression, a value rule): frames under it fall
 * back to libgcc. */
static void mark_unmodelled(struct cfa_state *st, uint64_t reg)
{
    if (reg == REG_RBP)
        st->rbp_how = 2;
    else if (reg == REG_RA)
        st->ra_how = 3;
}

/* Runs CFA instructions until the location passes target.  Returns 0, or -1
 * on an instruction we do not model. */
static int run_cfa(const uint8_t *p, const uint8_t *end, const struct cie_info *ci,
                   uintptr_t loc, uintptr_t target, struct cfa_state *st,
                   const struct cfa_state *initial)
{
    struct cfa_state stack[8];
    int depth = 0;
    struct reader r = {p, end, 0};
    while (r.p < r.end && !r.bad) {
        uint8_t op = *r.p++;
        uint8_t hi = op & 0xc0, lo = op & 0x3f;
        uint64_t reg;
        int64_t off;
        if (hi == 0x40) { /* advance_loc */
            loc += lo * ci->code_align;
            if (loc > target)
                return 0;
            continue;
        }
        if (hi == 0x80) { /* offset */
            reg = lo;
            off = (int64_t)read_uleb(&r) * ci->data_align;
            goto set_offset;
        }
        if (hi == 0xc0) { /* restore */
            reg = lo;
            goto restore;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x01: return -1; /* set_loc: not emitted by GCC/clang for x86-64 */
        case 0x02: loc += read_fixed(&r, 1) * ci->code_align; if (loc > target) return 0; break;
        case 0x03: loc += read_fixed(&r, 2) * ci->code_align; if (loc > target) return 0; break;
        case 0x04: loc += read_fixed(&r, 4) * ci->code_align; if (loc > target) return 0; break;
        case 0x05: /* offset_extended */
            reg = read_uleb(&r);
            off = (int64_t)read_uleb(&r) * ci->data_align;
            goto set_offset;
        case 0x06: /* restore_extended */
            reg = read_uleb(&r);
            goto restore;
        case 0x07: /* undefined */
            reg = read_uleb(&r);
            if (reg == REG_RA)
                st->ra_how = 2;
            else if (reg == REG_RBP)
                st->rbp_how = 2;
            break;
        case 0x08: /* same_value */
            reg = read_uleb(&r);
            if (reg == REG_RBP)
                st->rbp_how = 0;
            else if (reg == REG_RA)
                st->ra_how = 3;
            break;
        case 0x09: /* register */
            reg = read_uleb(&r);
            (void)read_uleb(&r);
            mark_unmodelled(st, reg);
            break;
        case 0x0a: /* remember_state */
            if (depth == 8)
                return -1;
            stack[depth++] = *st;
            break;
        case 0x0b: /* restore_state: the CFA is not part of the saved state
                    * in the DWARF spec, but GCC's unwinder (and every
                    * producer's expectation) restores it too. */
            if (depth == 0)
                return -1;
            *st = stack[--depth];
            break;
        case 0x0c: /* def_cfa */
            st->cfa_reg = (int)read_uleb(&r);
            st->cfa_off = (int64_t)read_uleb(&r);
            st->cfa_expr = 0;
            break;
        case 0x0d: st->cfa_reg = (int)read_uleb(&r); st->cfa_expr = 0; break;
        case 0x0e: st->cfa_off = (int64_t)read_uleb(&r); break;
        case 0x0f: /* def_cfa_expression */
            st->cfa_expr = 1;
            r.p += read_uleb(&r);
            break;
        case 0x10: /* expression */
            reg = read_uleb(&r);
            r.p += read_uleb(&r);
            mark_unmodelled(st, reg);
            break;
        case 0x11: /* offset_extended_sf */
            reg = read_uleb(&r);
            off = read_sleb(&r) * ci->data_align;
            goto set_offset;
        case 0x12: /* def_cfa_sf */
            st->cfa_reg = (int)read_uleb(&r);
            st->cfa_off = read_sleb(&r) * ci->data_align;
            st->cfa_expr = 0;
            break;
        case 0x13: st->cfa_off = read_sleb(&r) * ci->data_align; break;
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
            reg = read_uleb(&r);
            if (op == 0x14)
                (void)read_uleb(&r);
            else
                (void)read_sleb(&r);
            mark_unmodelled(st, reg);
            break;
        case 0x16: /* val_expression */
            reg = read_uleb(&r);
            r.p += read_uleb(&r);
            mark_unmodelled(st, reg);
            break;
        case 0x2e: (void)read_uleb(&r); break; /* GNU_args_size */
        case 0x2f: /* GNU_negative_offset_extended */
            reg = read_uleb(&r);
            off = -(int64_t)read_uleb(&r) * ci->data_align;
            goto set_offset;
        default:
            return -1;
        }
        continue;
    set_offset:
        if (reg == REG_RBP) {
            st->rbp_how = 1;
            st->rbp_off = off;
        } else if (reg == REG_RA) {
            st->ra_how = 1;
            st->ra_off = off;
        }
        continue;
    restore:
        if (initial == NULL)
            return -1; /* restore inside the CIE's own instructions */
        if (reg == REG_RBP) {
            st->rbp_how = initial->rbp_how;
            st->rbp_off = initial->rbp_off;
        } else if (reg == REG_RA) {
            st->ra_how = initial->ra_how;
            st->ra_off = initial->ra_off;
        }
        continue;
    }
    return r.bad ? -1 : 0;
}

/* Binary search of .eh_frame_hdr's sorted table for the FDE covering pc. */
static const uint8_t *find_fde(const uint8_t *hdr, uintptr_t pc)
{
    if (hdr == NULL || hdr[0] != 1)
        return NULL;
    uint8_t eh_frame_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    struct reader r = {hdr + 4, hdr + 4 + 16, 0};
    (void)read_encoded(&r, eh_frame_enc, (uintptr_t)hdr);
    uint64_t count = read_encoded(&r, count_enc, (uintptr_t)hdr);
    /* The sorted table is always datarel sdata4 in practice (GNU ld, gold,
     * lld); anything else takes the slow path. */
    if (r.bad || table_enc != 0x3b || count == 0)
        return NULL;
    const int32_t *table = (const int32_t *)r.p;
    uint64_t lo = 0, hi = count;
    while (hi - lo > 1) {
        uint64_t mid = (lo + hi) / 2;
        if ((uintptr_t)hdr + (intptr_t)table[2 * mid] <= pc)
            lo = mid;
        else
            hi = mid;
    }
    if ((uintptr_t)hdr + (intptr_t)table[2 * lo] > pc)
        return NULL;
    return hdr + table[2 * lo + 1];
}

static void compute_rule(uintptr_t pc, struct frame_rule *out)
{
    memset(out, 0, sizeof *out);
    out->unsupported = 1;
    struct dl_find_object dlfo;
    if (_dl_find_object((void *)pc, &dlfo) != 0 || dlfo.dlfo_eh_frame == NULL)
        return;
    const uint8_t *fde = find_fde(dlfo.dlfo_eh_frame, pc);
    if (fde == NULL)
        return;
    struct reader r = {fde, fde + 8, 0};
    uint64_t len = read_fixed(&r, 4);
    if (len == 0 || len == 0xffffffffu)
        return;
    r.end = fde + 4 + len;
    const uint8_t *cie_ptr_field = r.p;
    uint32_t cie_off = (uint32_t)read_fixed(&r, 4);
    if (cie_off == 0)
        return;
    struct cie_info ci;
    if (parse_cie(cie_ptr_field - cie_off, &ci) != 0 || ci.ra_reg != REG_RA || ci.signal_frame)
        return;
    uintptr_t pc_begin = read_encoded(&r, ci.fde_enc, 0);
    uintptr_t pc_range = read_encoded(&r, ci.fde_enc & 0x0f, 0);
    if (r.bad || pc < pc_begin || pc >= pc_begin + pc_range)
        return;
    r.p += read_uleb(&r); /* augmentation data ('z' is always present here) */
    if (r.bad || r.p > r.end)
        return;

    struct cfa_state st = {0}, initial;
    if (run_cfa(ci.insns, ci.insns_end, &ci, pc_begin, UINTPTR_MAX, &st, NULL) != 0)
        return;
    initial = st;
    if (run_cfa(r.p, r.end, &ci, pc_begin, pc, &st, &initial) != 0)
        return;
    out->unsupported = 0;
    if (st.ra_how == 2) {
        out->ra_undefined = 1;
        return;
    }
    if (st.cfa_expr || st.rbp_how == 2 || st.ra_how != 1 || st.ra_off != -8 ||
        (st.cfa_reg != REG_RSP && st.cfa_reg != REG_RBP)) {
        out->unsupported = 1;
        return;
    }
    out->cfa_reg = st.cfa_reg;
    out->cfa_off = st.cfa_off;
    out->rbp_saved = st.rbp_how == 1;
    out->rbp_off = st.rbp_off;
    out->ra_off_ok = 1;
}

/*
 * A rule as the walk uses it, in two words returned in registers: `how` is
 * the CFA offset from RSP (or from RBP when bit 0 is set), and 0 means end
 * of stack, 1 a rule the fast path does not model; `rbp_back` is where the
 * caller's RBP is saved below the CFA (0: RBP unchanged).  Decoding a cache
 * entry into it takes four instructions.
 */
#define STEP_END 0
#define STEP_UNSUPPORTED 1
struct step {
    uintptr_t how;
    uintptr_t rbp_back;
};

static inline struct step step_of_entry(uint64_t e)
{
    struct step st = {((e >> 3) & (1023u << 3)) | ((e >> 16) & 1), (e << 2) & (31u << 3)};
    return st;
}

/* Cache miss: compute the rule from the CFI, cache it if it packs (a rule
 * that does not, a frame over 8 KiB say, is computed again every time). */
static struct step __attribute__((noinline)) step_slow(uintptr_t pc, size_t index)
{
    struct frame_rule rule;
    compute_rule(pc, &rule);
    uint64_t packed;
    if (pack_rule(pc, &rule, &packed)) {
        atomic_store_explicit(&rule_cache[index], packed, memory_order_relaxed);
        return step_of_entry(packed);
    }
    struct step st = {STEP_UNSUPPORTED, 0};
    if (rule.ra_undefined) {
        st.how = STEP_END;
    } else if (!rule.unsupported && rule.ra_off_ok && rule.cfa_off > 0 && (rule.cfa_off & 7) == 0 &&
               (rule.cfa_reg == REG_RSP || rule.cfa_reg == REG_RBP) &&
               !(rule.rbp_saved && rule.rbp_off >= 0)) {
        st.how = (uintptr_t)rule.cfa_off | (rule.cfa_reg == REG_RBP);
        st.rbp_back = rule.rbp_saved ? (uintptr_t)-rule.rbp_off : 0;
    }
    return st;
}

/* The largest frame we believe in; a CFA further away than this from the
 * stack pointer means the CFI or the registers are not what we think, and
 * reading there could fault. */
#define MAX_FRAME_BYTES ((uintptr_t)1 << 24)

/* One frame up from regs; 0, or -1 at the end of the stack or when the
 * rule is not one the fast path models (*unsupported says which). */
static inline void note_read(struct mprof_walk_reads *reads, uintptr_t addr, uintptr_t value)
{
    if (reads->n < 0)
        return;
    if (reads->n >= MPROF_WALK_MAX_READS) {
        reads->n = -1;
        return;
    }
    reads->read[reads->n].addr = addr;
    reads->read[reads->n++].value = value;
}

/* A CFA is being computed from RBP: the value it came from matters. */
static inline void note_bp_used(struct mprof_walk_reads *reads)
{
    if (!reads->bp_restored)
        reads->uses_start_bp = 1;
    reads->pending_bp = -1;
}

/* RBP is restored from the stack: the previous value, if nothing used it,
 * did not matter. */
static inline void note_bp_read(struct mprof_walk_reads *reads, uintptr_t addr, uintptr_t value)
{
    if (reads->pending_bp >= 0)
        reads->read[reads->pending_bp].addr = 0;
    reads->bp_restored = 1;
    note_read(reads, addr, value);
    reads->pending_bp = reads->n - 1;
}

static inline __attribute__((always_inline)) int step_up(struct mprof_unwind_regs *regs,
                                                         uintptr_t lookup, int *unsupported,
                                                         struct mprof_walk_reads *reads)
{
    size_t index = cache_index(lookup);
    uint64_t e = atomic_load_explicit(&rule_cache[index], memory_order_relaxed);
    struct step st;
    if (MPROF_LIKELY((e & 1) && (e >> 17) == (uint64_t)lookup))
        st = step_of_entry(e);
    else
        st = step_slow(lookup, index);
    if (MPROF_UNLIKELY(st.how <= STEP_UNSUPPORTED)) {
        *unsupported = st.how == STEP_UNSUPPORTED;
        return -1;
    }
    if ((st.how & 1) && reads != NULL)
        note_bp_used(reads);
    uintptr_t cfa = ((st.how & 1) ? regs->bp : regs->sp) + (st.how & ~(uintptr_t)1);
    /* One unsigned compare for sp < cfa <= sp + MAX_FRAME_BYTES. */
    if (MPROF_UNLIKELY(cfa - regs->sp - 1 >= MAX_FRAME_BYTES || (cfa & 7) != 0)) {
        *unsupported = 1;
        return -1;
    }
    regs->pc = *(const uintptr_t *)(cfa - 8);
    if (reads != NULL)
        note_read(reads, cfa - 8, regs->pc);
    if (st.rbp_back != 0) {
        regs->bp = *(const uintptr_t *)(cfa - st.rbp_back);
        if (reads != NULL)
            note_bp_read(reads, cfa - st.rbp_back, regs->bp);
    }
    regs->sp = cfa;
    return 0;
}

/*
 * The walk.  Per frame, on a cache hit: a multiply for the index, one load
 * of the entry, one of the return address and at most one of the saved
 * RBP, and a few shifts.  That is all the allocation path pays per frame.
 */
int MPROF_ENTRY_TEXT mprof_unwind_fast(const struct mprof_unwind_regs *from, int first_is_exact,
                                       uintptr_t skip_lo, uintptr_t skip_hi, uintptr_t *pcs,
                                       int max, struct mprof_walk_reads *reads)
{
    struct mprof_unwind_regs regs = *from;
    if (reads != NULL) {
        reads->n = 0;
        reads->pending_bp = -1;
        reads->bp_restored = 0;
        reads->uses_start_bp = 0;
    }
    int n = 0, depth = 0, unsupported = 0;
    uintptr_t lookup = first_is_exact ? regs.pc : regs.pc - 1;
    /* Leading frames in [skip_lo, skip_hi): walked, not stored.  Unsigned:
     * an empty range [0, 0) skips nothing. */
    while (regs.pc != 0 && lookup - skip_lo < skip_hi - skip_lo) {
        if (step_up(&regs, lookup, &unsupported, reads) != 0 || ++depth >= 256)
            goto done;
        lookup = regs.pc - 1;
    }
    while (regs.pc != 0 && n < max) {
        pcs[n++] = lookup;
        if (n >= max || step_up(&regs, lookup, &unsupported, reads) != 0 || ++depth >= 256)
            break;
        lookup = regs.pc - 1;
    }
done:
    if (reads != NULL && reads->n >= 0 && reads->pending_bp >= 0)
        reads->read[reads->pending_bp].addr = 0;
    return unsupported ? -1 : n;
}
