/* Packed 16-bit arithmetic for the inner loops: the Armv7E-M DSP instructions
 * (Cortex-M4/M7/M33/M55) when the compiler targets them, otherwise portable C
 * with the same results. The kernels are written once against these helpers,
 * so the host build exercises exactly the code paths the firmware runs.
 *
 * A "pair" is two int16 lanes in one uint32_t: bits 0-15 and bits 16-31. */
#ifndef TD_SIMD_H
#define TD_SIMD_H

#include <stdint.h>
#include <string.h>
#include "td_fixedpoint.h"
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
#endif

/* Inlined even where -O2 would not: kernels pass compile-time flags through it. */
#if defined(__GNUC__)
#define TD_ALWAYS_INLINE inline __attribute__((always_inline))
#define TD_NOINLINE __attribute__((noinline))
#else
#define TD_ALWAYS_INLINE inline
#define TD_NOINLINE
#endif

/* Pins four accumulators in registers at this point, so the compiler finishes one
 * step of a multiply-accumulate chain before starting the next instead of
 * interleaving long chains and running out of registers. */
#if defined(__GNUC__)
#define TD_STEP_BARRIER(a, b, c, d) __asm__("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d))
#else
#define TD_STEP_BARRIER(a, b, c, d) ((void)0)
#endif

/* Four bytes from any address (LDR handles unaligned addresses on v7-M). */
static inline uint32_t td_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The first n (0-3) bytes at p, zero-extended to a word. */
static inline uint32_t td_load_tail(const int8_t *p, int32_t n)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < n; ++i) {
        v |= (uint32_t)(uint8_t)p[i] << (8 * i);
    }
    return v;
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TD_DSP 1

/* Bytes 0 and 2, sign-extended to a pair. */
static inline uint32_t td_sxtb16(uint32_t x) { return __sxtb16(x); }
/* Bytes 1 and 3, sign-extended to a pair. */
static inline uint32_t td_sxtb16_odd(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* Bytes 0 and 2 sign-extended and added to the lanes of `pair`. */
static inline uint32_t td_sxtab16(uint32_t pair, uint32_t x) { return __sxtab16(pair, x); }
static inline uint32_t td_sxtab16_odd(uint32_t pair, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(pair), "r"(x));
    return r;
}
/* acc + lo(a) * lo(b) + hi(a) * hi(b). */
static inline int32_t td_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad(a, b, acc); }
/* acc + lo(a) * lo(b), and acc + hi(a) * hi(b). */
static inline int32_t td_smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t td_smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt(a, b, acc); }
/* (a * b + 2^31) >> 32: the high word of the product, rounded. */
static inline int32_t td_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#else
#define TD_DSP 0

static inline int32_t td_lane_lo(uint32_t p) { return (int16_t)(p & 0xFFFFu); }
static inline int32_t td_lane_hi(uint32_t p) { return (int16_t)(p >> 16); }
static inline uint32_t td_pair(int32_t lo, int32_t hi) { return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16); }

static inline uint32_t td_sxtb16(uint32_t x) { return td_pair((int8_t)x, (int8_t)(x >> 16)); }
static inline uint32_t td_sxtb16_odd(uint32_t x) { return td_pair((int8_t)(x >> 8), (int8_t)(x >> 24)); }
static inline uint32_t td_sxtab16(uint32_t pair, uint32_t x)
{
    return td_pair(td_lane_lo(pair) + (int8_t)x, td_lane_hi(pair) + (int8_t)(x >> 16));
}
static inline uint32_t td_sxtab16_odd(uint32_t pair, uint32_t x)
{
    return td_pair(td_lane_lo(pair) + (int8_t)(x >> 8), td_lane_hi(pair) + (int8_t)(x >> 24));
}
static inline int32_t td_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(td_lane_lo(a) * td_lane_lo(b)) + (uint32_t)(td_lane_hi(a) * td_lane_hi(b)));
}
static inline int32_t td_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(td_lane_lo(a) * td_lane_lo(b)));
}
static inline int32_t td_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(td_lane_hi(a) * td_lane_hi(b)));
}
static inline int32_t td_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}
#endif

/* x clamped to [-128, 127] (SSAT where the core has it). */
static inline int32_t td_saturate8(int32_t x)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
    return __ssat(x, 8);
#else
    return td_clamp(x, -128, 127);
#endif
}

/* The same 16-bit value in both lanes, and back. */
static inline uint32_t td_dup16(int32_t v) { return ((uint32_t)v & 0xFFFFu) * 0x10001u; }
static inline int32_t td_lane_of(uint32_t dup) { return (int16_t)(dup & 0xFFFFu); }

/* A rescale by multiplier * 2^shift (-31 <= shift <= 0) prepared for td_rescale_short:
 * exact for |x| < 2^30 (the ADD kernel proves it). */
typedef struct {
    int32_t multiplier;
    int32_t right;
    int32_t round;
    uint32_t negative_fix;        /* 1 when right > 0: halves round away from zero */
} td_short_rescale;

static inline td_short_rescale td_short_rescale_of(int32_t multiplier, int32_t shift)
{
    const td_short_rescale r = {multiplier, -shift, (int32_t)((1u << -shift) >> 1), shift < 0 ? 1u : 0u};
    return r;
}

static inline int32_t td_rescale_short(int32_t x, const td_short_rescale *r)
{
    const int32_t hi = td_smmulr(x * 2, r->multiplier);
    return (hi + r->round - (int32_t)(((uint32_t)hi >> 31) & r->negative_fix)) >> r->right;
}

#endif /* TD_SIMD_H */
