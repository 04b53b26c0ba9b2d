/* Two libraries with reload_fn at the same offset and its call site at
 * the same address, but different unwind rules there. */
        .section .note.GNU-stack, "", @progbits
        .text
        .balign 64
        .globl reload_fn
        .type reload_fn, @function
reload_fn:
        .cfi_startproc
#ifndef VARIANT_B
        /* A: a frame-pointer frame of 4 KiB: CFA = RBP + 16 */
        push %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset %rbp, -16
        mov %rsp, %rbp
        .cfi_def_cfa_register %rbp
        sub $4096, %rsp
        call *%rdi
        leave
        .cfi_def_cfa %rsp, 8
        ret
#else
        /* B: no frame pointer: CFA = RSP + 32 */
        sub $24, %rsp
        .cfi_def_cfa_offset 32
        .skip 11 - (. - reload_fn), 0x90
        call *%rdi
        add $24, %rsp
        .cfi_def_cfa_offset 8
        ret
#endif
        .cfi_endproc
        .skip 64 - (. - reload_fn), 0xcc
        .size reload_fn, . - reload_fn
