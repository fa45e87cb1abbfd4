/* Crash programs for the macOS unwinder tests: no libc, no OS.  The emulator
 * (tests/macos_emulation.py) writes the scenario number into `scenario` and runs
 * `start` until the fault.  Built twice per CPU: frames.c with frame pointers,
 * frameless.c without (frameless compact unwind encodings). */
volatile int scenario;
int sink;

int frameless_leaf(int *p, int v);
int frameless_big(int *p, int n);
int frameless_saves(int *p, int a, int b, int c, int d, int e, int f);

__attribute__((noinline)) int poke(int *p, int v) { *p = v; return v; }

__attribute__((noinline)) int recurse(int *p, int n) {
    volatile int depth = n;  /* a frame of its own: no loop, no tail call */
    if (n == 0) return poke(p, n);
    return recurse(p, n - 1) + depth;
}

__attribute__((noinline)) int large_frame(int *p, int n) {
    volatile char buf[70000];
    buf[n] = (char)n;
    return poke(p, buf[n]) + buf[n + 1];
}

/* Values live across calls: the compiler keeps them in x19..x28 / rbx, r12..r15. */
__attribute__((noinline)) long many_pairs(int *p, long a, long b, long c, long d, long e, long f, long g, long h) {
    long r = poke(p == 0 ? &sink : p, 1);
    r += a * poke(&sink, 2) + b;
    r += c * poke(&sink, 3) + d;
    r += e * poke(&sink, 4) + f;
    r += g * poke(&sink, 5) + h;
    r += poke(p, (int)(a + b + c + d + e + f + g + h));
    return r + a + b + c + d + e + f + g + h;
}

/* Floating-point values live across calls: d8..d15 on arm64. */
__attribute__((noinline)) double fp_regs(int *p, double a, double b, double c, double d) {
    double x = a * b, y = c * d, z = a + d, w = b - c, u = a / d, v = b * c, s = a - b, t = c + d;
    sink = poke(&sink, 1);
    x += y * z;
    sink = poke(&sink, 2);
    y += w * u;
    sink = poke(p, (int)(x + y + z + w + u + v + s + t));
    return x + y + z + w + u + v + s + t;
}

static inline __attribute__((always_inline)) int inlined_inner(int *p, int v) {
    sink = v;
    return poke(p, v * 3) + 1;
}

static inline __attribute__((always_inline)) int inlined_outer(int *p, int v) {
    return inlined_inner(p, v + 1) * 2;
}

__attribute__((noinline)) int has_inlined(int *p, int v) {
    return inlined_outer(p, v) + sink;
}

typedef int (*callback)(int *, int);
__attribute__((noinline)) int via_pointer(callback cb, int *p, int v) { return cb(p, v) + 1; }

__attribute__((noinline)) int bad_pc(int *p) {
    callback volatile cb = 0;
    return cb(p, 1) + 1;
}

/* Unbounded recursion: the stack runs out, and the fault may be in a prologue (the push of the
 * frame pointer or the store of the frame record) or in a body, wherever the guard is hit. */
__attribute__((noinline)) int overflow(int *p, int n) {
    volatile char buf[3000];
    buf[n % 3000] = (char)n;
    return overflow(p, n + 1) + buf[(n + 1) % 3000];
}

__attribute__((noinline)) int dispatch(int *p) {
    switch (scenario) {
    case 1: return recurse(p, 40);
    case 2: return large_frame(p, 5);
    case 3: return (int)many_pairs(p, 1, 2, 3, 4, 5, 6, 7, 8);
    case 4: return (int)fp_regs(p, 1.5, 2.5, 3.5, 4.5);
    case 5: return frameless_leaf(p, 7);
    case 6: return has_inlined(p, 4);
    case 7: return via_pointer(poke, p, 9);
    case 8: return bad_pc(p);
    case 9: return frameless_big(p, 3);
    case 10: return frameless_saves(p, 1, 2, 3, 4, 5, 6);
    case 11: return overflow(p, 0);
    }
    return 0;
}

int start(void) {
    return dispatch(0) + 1;
}
