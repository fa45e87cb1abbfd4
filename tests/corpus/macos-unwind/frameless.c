/* Built without frame pointers: frameless compact unwind encodings (stack size immediate,
 * x86_64's indirect size for a big frame, saved registers in permutation order). */
extern int sink;
int poke(int *p, int v);

__attribute__((noinline)) int frameless_leaf(int *p, int v) {
    volatile int local[8];
    local[v & 7] = v;
    *p = local[v & 7];
    return local[1];
}

__attribute__((noinline)) int frameless_big(int *p, int n) {
    volatile char buf[40000];
    buf[n] = (char)n;
    return poke(p, buf[n]) + buf[n + 1];
}

__attribute__((noinline)) int frameless_saves(int *p, int a, int b, int c, int d, int e, int f) {
    int r = poke(&sink, a);
    r += poke(&sink, b) * a;
    r += poke(&sink, c) * b;
    r += poke(&sink, d) * c;
    r += poke(p, e) * d;
    return r + a + b + c + d + e + f;
}
