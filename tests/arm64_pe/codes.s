// Hand-written Windows ARM64 functions whose unwind data holds every unwind code (llvm-mc's
// .seh_* directives, and one fragment whose .pdata/.xdata are written out here to hold end_c).
// Each calls the callback in x0 with w1, after loading known values into the registers it saved.

    .text

// The stack probe that MSVC's ABI calls in the prologue of a function with a large frame, before
// it moves SP: x15 = bytes / 16.  It touches each page below SP, as Windows' own does, and may
// clobber only x16 and x17.  A leaf without unwind data.
    .globl __chkstk
    .p2align 2
    .def __chkstk; .scl 2; .type 32; .endef
__chkstk:
    lsl x16, x15, #4
    mov x17, #-4096
1:  cmn x16, x17
    b.mi 2f
    ldr xzr, [sp, x17]
    sub x17, x17, #4096
    b 1b
2:  ret

    .globl every_int_code
    .p2align 2
    .def every_int_code; .scl 2; .type 32; .endef
    .seh_proc every_int_code
every_int_code:
    pacibsp
    .seh_pac_sign_lr
    stp x19, x20, [sp, #-112]!
    .seh_save_r19r20_x 112
    stp x21, x22, [sp, #16]
    .seh_save_next
    stp x25, x26, [sp, #48]
    .seh_save_regp x25, 48
    stp x23, x24, [sp, #-16]!
    .seh_save_regp_x x23, 16
    str x27, [sp, #-16]!
    .seh_save_reg_x x27, 16
    str x28, [sp, #8]
    .seh_save_reg x28, 8
    stp x29, x30, [sp, #-32]!
    .seh_save_fplr_x 32
    add x29, sp, #16
    .seh_add_fp 16
    nop
    .seh_nop
    sub sp, sp, #48
    .seh_stackalloc 48
    stp x29, x30, [sp, #0]
    .seh_save_fplr 0
    .seh_endprologue
    mov x19, #0x1919
    mov x20, #0x2020
    mov x21, #0x2121
    mov x22, #0x2222
    mov x23, #0x2323
    mov x24, #0x2424
    mov x25, #0x2525
    mov x26, #0x2626
    mov x27, #0x2727
    mov x28, #0x2828
    mov x9, x0
    mov w0, w1
    blr x9
    .seh_startepilogue
    ldp x29, x30, [sp, #0]
    .seh_save_fplr 0
    add sp, sp, #48
    .seh_stackalloc 48
    nop
    .seh_nop
    sub sp, x29, #16
    .seh_add_fp 16
    ldp x29, x30, [sp], #32
    .seh_save_fplr_x 32
    ldr x28, [sp, #8]
    .seh_save_reg x28, 8
    ldr x27, [sp], #16
    .seh_save_reg_x x27, 16
    ldp x23, x24, [sp], #16
    .seh_save_regp_x x23, 16
    ldp x25, x26, [sp, #48]
    .seh_save_regp x25, 48
    ldp x21, x22, [sp, #16]
    .seh_save_next
    ldp x19, x20, [sp], #112
    .seh_save_r19r20_x 112
    autibsp
    .seh_pac_sign_lr
    .seh_endepilogue
    ret
    .seh_endfunclet
    .seh_endproc

    .globl every_fp_code
    .p2align 2
    .def every_fp_code; .scl 2; .type 32; .endef
    .seh_proc every_fp_code
every_fp_code:
    stp d8, d9, [sp, #-80]!
    .seh_save_fregp_x d8, 80
    stp d10, d11, [sp, #16]
    .seh_save_next
    str d12, [sp, #32]
    .seh_save_freg d12, 32
    stp d14, d15, [sp, #48]
    .seh_save_fregp d14, 48
    str d13, [sp, #40]
    .seh_save_freg d13, 40
    str d8, [sp, #-16]!
    .seh_save_freg_x d8, 16
    sub sp, sp, #16
    .seh_stackalloc 16
    stp x21, x30, [sp]
    .seh_save_lrpair x21, 0
    stp x29, x30, [sp, #-16]!
    .seh_save_fplr_x 16
    mov x29, sp
    .seh_set_fp
    sub sp, sp, #4000
    .seh_stackalloc 4000
    sub sp, sp, #16, lsl #12
    .seh_stackalloc 65536
    .seh_endprologue
    fmov d8, #1.0
    fmov d9, #2.0
    fmov d10, #3.0
    fmov d11, #4.0
    fmov d12, #5.0
    fmov d13, #6.0
    fmov d14, #7.0
    fmov d15, #8.0
    mov x21, #0x2121
    mov x9, x0
    mov w0, w1
    blr x9
    .seh_startepilogue
    mov sp, x29
    .seh_set_fp
    ldp x29, x30, [sp], #16
    .seh_save_fplr_x 16
    ldp x21, x30, [sp]
    .seh_save_lrpair x21, 0
    add sp, sp, #16
    .seh_stackalloc 16
    ldr d8, [sp], #16
    .seh_save_freg_x d8, 16
    ldr d13, [sp, #40]
    .seh_save_freg d13, 40
    ldp d14, d15, [sp, #48]
    .seh_save_fregp d14, 48
    ldr d12, [sp, #32]
    .seh_save_freg d12, 32
    ldp d10, d11, [sp, #16]
    .seh_save_next
    ldp d8, d9, [sp], #80
    .seh_save_fregp_x d8, 80
    .seh_endepilogue
    ret
    .seh_endfunclet
    .seh_endproc

// A function split in two: chain_parent's prologue builds the frame, then branches to
// chain_fragment, which saves one more pair (its own one-instruction prologue) and holds the
// epilogue.  The fragment's codes: its prologue, end_c, the parent's ("phantom") prologue, end;
// then its epilogue's codes.
    .globl chain_parent
    .p2align 2
    .def chain_parent; .scl 2; .type 32; .endef
    .seh_proc chain_parent
chain_parent:
    stp x29, x30, [sp, #-48]!
    .seh_save_fplr_x 48
    stp x19, x20, [sp, #16]
    .seh_save_regp x19, 16
    mov x29, sp
    .seh_set_fp
    .seh_endprologue
    mov x19, #0x1919
    mov x20, #0x2020
    b chain_fragment
    .seh_endproc

    .globl chain_fragment
    .p2align 2
    .def chain_fragment; .scl 2; .type 32; .endef
chain_fragment:
    stp x21, x22, [sp, #32]
    mov x21, #0x2121
    mov x22, #0x2222
    mov x9, x0
    mov w0, w1
    blr x9
chain_fragment_epilog:
    ldp x21, x22, [sp, #32]
    ldp x19, x20, [sp, #16]
    ldp x29, x30, [sp], #48
    ret
chain_fragment_end:

    .section .xdata,"dr"
    .p2align 2
chain_fragment_xdata:
    // FunctionLength/4 | E=0 | EpilogCount=1 << 22 | CodeWords=4 << 27
    .long ((chain_fragment_end - chain_fragment) / 4) | (1 << 22) | (4 << 27)
    // EpilogStartOffset/4 | EpilogStartIndex=8 << 22
    .long ((chain_fragment_epilog - chain_fragment) / 4) | (8 << 22)
    // 0: save_regp x21, 32   2: end_c   3: set_fp   4: save_regp x19, 16   6: save_fplr_x 48   7: end
    .byte 0xc8, 0x84, 0xe5, 0xe1, 0xc8, 0x02, 0x85, 0xe4
    // 8: the epilogue: save_regp x21, 32; save_regp x19, 16; save_fplr_x 48; end (then padding)
    .byte 0xc8, 0x84, 0xc8, 0x02, 0x85, 0xe4, 0xe4, 0xe4

    .section .pdata,"dr"
    .p2align 2
    .rva chain_fragment
    .rva chain_fragment_xdata
