/* Built with frame pointers and -mbranch-protection=pac-ret: frame-chained prologues whose return
   address is signed (pacibsp: packed CR=2 or the pac_sign_lr unwind code). */
volatile int chained_sink;
void leaf_crash(int v);

__attribute__((noinline, target("branch-protection=pac-ret+b-key"))) void chained_leaf_caller(int v) {
    leaf_crash(v);
    chained_sink = v;
}

__attribute__((noinline, target("branch-protection=pac-ret+b-key"))) void chained_entry(int depth) {
    volatile char locals[600];
    locals[depth] = (char)depth;
    if (depth == 0)
        chained_leaf_caller(locals[depth]);
    else
        chained_entry(depth - 1);
    chained_sink = locals[depth];
}
