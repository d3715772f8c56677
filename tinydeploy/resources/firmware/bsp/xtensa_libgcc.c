/* The integer helpers GCC calls on the LX106 that Debian's lx106 libgcc.a lacks: the core has
 * MUL16 and MUL32 (low word) but no MUL32_HIGH and no divide instructions, so 64-bit products
 * and every division are library calls. Written with 32-bit multiplies, shifts and compares
 * only, so none of them calls itself. Dividing by zero raises an exception, as a core with a
 * divide instruction would (xtensa_core.c's vectors end the run). */
#if defined(TD_CORE_XTENSA)
#include <stdint.h>

uint32_t __udivsi3(uint32_t n, uint32_t d);
uint32_t __umodsi3(uint32_t n, uint32_t d);
int32_t __divsi3(int32_t n, int32_t d);
int32_t __modsi3(int32_t n, int32_t d);
uint64_t __muldi3(uint64_t a, uint64_t b);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t n, int64_t d);
int64_t __moddi3(int64_t n, int64_t d);

/* An illegal instruction: GCC's __builtin_trap is a debug break, which the core ignores while
 * interrupts at the debug level are masked (as from reset). */
static void divide_by_zero(void)
{
    __asm volatile("ill");
}

/* ---- products ---- */

/* The full 64-bit product of two 32-bit words, from four 16 x 16 -> 32-bit products. */
static uint64_t multiply_32x32(uint32_t a, uint32_t b)
{
    const uint32_t a_lo = a & 0xFFFFu, a_hi = a >> 16, b_lo = b & 0xFFFFu, b_hi = b >> 16;
    const uint32_t lo_lo = a_lo * b_lo, lo_hi = a_lo * b_hi, hi_lo = a_hi * b_lo, hi_hi = a_hi * b_hi;
    const uint32_t middle = (lo_lo >> 16) + (lo_hi & 0xFFFFu) + (hi_lo & 0xFFFFu);   /* < 3 * 2^16 */
    const uint32_t low = (lo_lo & 0xFFFFu) | (middle << 16);
    const uint32_t high = hi_hi + (lo_hi >> 16) + (hi_lo >> 16) + (middle >> 16);
    return ((uint64_t)high << 32) | low;
}

/* a * b modulo 2^64 (signed or not: the same bits). */
uint64_t __muldi3(uint64_t a, uint64_t b)
{
    const uint32_t a_lo = (uint32_t)a, a_hi = (uint32_t)(a >> 32);
    const uint32_t b_lo = (uint32_t)b, b_hi = (uint32_t)(b >> 32);
    const uint32_t cross = a_lo * b_hi + a_hi * b_lo;          /* only its low word reaches the result */
    return multiply_32x32(a_lo, b_lo) + ((uint64_t)cross << 32);
}

/* ---- quotients and remainders: long division, one quotient bit per step ---- */

static uint32_t divide_32(uint32_t n, uint32_t d, uint32_t *remainder)
{
    if (d == 0u) {
        divide_by_zero();
    }
    uint32_t quotient = 0u, rest = 0u;
    for (int bit = n ? 31 - __builtin_clz(n) : -1; bit >= 0; --bit) {   /* from n's highest set bit */
        const uint32_t carry = rest >> 31;                 /* the shift below drops it: rest >= d then */
        rest = (rest << 1) | ((n >> bit) & 1u);
        if (carry || rest >= d) {
            rest -= d;
            quotient |= 1u << bit;
        }
    }
    *remainder = rest;
    return quotient;
}

static uint64_t divide_64(uint64_t n, uint64_t d, uint64_t *remainder)
{
    if ((n >> 32) == 0u && (d >> 32) == 0u) {
        uint32_t rest;
        const uint32_t quotient = divide_32((uint32_t)n, (uint32_t)d, &rest);
        *remainder = rest;
        return quotient;
    }
    if (d == 0u) {
        divide_by_zero();
    }
    uint64_t quotient = 0u, rest = 0u;
    for (int step = 0; step < 64; ++step) {                  /* n's bits leave at the top, highest first */
        const uint64_t carry = rest >> 63;
        rest = (rest << 1) | (n >> 63);
        n <<= 1;
        quotient <<= 1;
        if (carry || rest >= d) {
            rest -= d;
            quotient |= 1u;
        }
    }
    *remainder = rest;
    return quotient;
}

/* |x| as an unsigned number (exact for the most negative value too). */
static uint32_t magnitude_32(int32_t x) { return x < 0 ? 0u - (uint32_t)x : (uint32_t)x; }
static uint64_t magnitude_64(int64_t x) { return x < 0 ? 0u - (uint64_t)x : (uint64_t)x; }

/* The four helpers of one width (GCC's mode letter: si 32-bit, di 64-bit). C's signed division
 * truncates toward zero: the quotient is negative when the signs differ, the remainder has the
 * dividend's sign. */
#define DIVISION_HELPERS(bits, mode)                                                              \
    uint##bits##_t __udiv##mode##3(uint##bits##_t n, uint##bits##_t d)                            \
    {                                                                                             \
        uint##bits##_t rest;                                                                      \
        return divide_##bits(n, d, &rest);                                                        \
    }                                                                                             \
    uint##bits##_t __umod##mode##3(uint##bits##_t n, uint##bits##_t d)                            \
    {                                                                                             \
        uint##bits##_t rest;                                                                      \
        divide_##bits(n, d, &rest);                                                               \
        return rest;                                                                              \
    }                                                                                             \
    int##bits##_t __div##mode##3(int##bits##_t n, int##bits##_t d)                                \
    {                                                                                             \
        uint##bits##_t rest;                                                                      \
        const uint##bits##_t quotient = divide_##bits(magnitude_##bits(n), magnitude_##bits(d), &rest); \
        return (int##bits##_t)((n < 0) != (d < 0) ? 0u - quotient : quotient);                    \
    }                                                                                             \
    int##bits##_t __mod##mode##3(int##bits##_t n, int##bits##_t d)                                \
    {                                                                                             \
        uint##bits##_t rest;                                                                      \
        divide_##bits(magnitude_##bits(n), magnitude_##bits(d), &rest);                           \
        return (int##bits##_t)(n < 0 ? 0u - rest : rest);                                         \
    }

DIVISION_HELPERS(32, si)
DIVISION_HELPERS(64, di)
#endif
