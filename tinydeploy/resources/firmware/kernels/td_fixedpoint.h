/* Integer fixed-point helpers shared by the tinydeploy kernels.
 *
 * These reproduce the rounding of TFLite Micro's reference kernels exactly
 * (gemmlowp's SaturatingRoundingDoublingHighMul and RoundingDivideByPOT, the
 * "double rounding" requantization), so int8 outputs are byte-identical.
 */
#ifndef TD_FIXEDPOINT_H
#define TD_FIXEDPOINT_H

#include <stdint.h>

/* (a * b * 2) >> 32 with round-to-nearest; saturates the one overflow case.
 * gemmlowp adds a sign-dependent nudge and divides toward zero; that equals
 * floor((a * b + 2^30) / 2^31) for every input, which compiles to SMLAL and
 * two shifts. */
static inline int32_t td_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t td_rounding_div_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent, saturating to the int32 range (exponent > 0). */
static inline int32_t td_saturating_shl(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* Wrapping int32 addition/subtraction without undefined behaviour. */
static inline int32_t td_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t td_wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* TFLite's MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31). */
static inline int32_t td_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return td_rounding_div_pot(td_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t td_clamp(int32_t x, int32_t lo, int32_t hi)
{
    x = x < lo ? lo : x;               /* two conditional moves, no branch */
    return x > hi ? hi : x;
}

/* gemmlowp's transcendental functions on raw 32-bit fixed-point values.
 * "Qm" below means m integer bits and 31 - m fractional bits. */

/* exp(a) for a in [-1/4, 0), Q0 in and out (Taylor series around -1/8). */
static inline int32_t td_exp_quarter_interval(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = td_wrap_add(a, 1 << 28);
    const int32_t x2 = td_srdhm(x, x);
    const int32_t x3 = td_srdhm(x2, x);
    const int32_t x4 = td_srdhm(x2, x2);
    const int32_t x4_over_4 = td_rounding_div_pot(x4, 2);
    const int32_t poly = td_rounding_div_pot(
        td_wrap_add(td_srdhm(td_wrap_add(x4_over_4, x3), one_third), x2), 1);
    return td_wrap_add(exp_minus_one_eighth, td_srdhm(exp_minus_one_eighth, td_wrap_add(x, poly)));
}

/* exp(a) for a <= 0: a in Q`integer_bits` (1..5), result in Q0. */
static inline int32_t td_exp_on_negative(int32_t a, int integer_bits)
{
    static const int32_t exp_of_minus_pot[7] = {      /* exp(-2^k), k = -2 .. 4, Q0 */
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    };
    const int fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_quarter = td_wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result = td_exp_quarter_interval(td_saturating_shl(a_mod_quarter_minus_quarter, integer_bits));
    const int32_t remainder = td_wrap_sub(a_mod_quarter_minus_quarter, a);
    for (int k = -2; k <= 4 && k < integer_bits; ++k) {
        if (remainder & ((int32_t)1 << (fractional_bits + k))) {
            result = td_srdhm(result, exp_of_minus_pot[k + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* Newton-Raphson for 1 / (1 + a), a in [0, 1) in Q0; returns x in Q2. */
static inline int32_t td_reciprocal_one_plus_q2(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = td_wrap_add(1515870810, td_srdhm(half_denominator, -1010580540));   /* 48/17 - 32/17 d */
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = td_wrap_sub(1 << 29, td_srdhm(half_denominator, x));
        x = td_wrap_add(x, td_saturating_shl(td_srdhm(x, one_minus), 2));
    }
    return x;
}

/* 1 / (1 + a) for a in [0, 1): Q0 in and out. */
static inline int32_t td_one_over_one_plus(int32_t a)
{
    return td_saturating_shl(td_reciprocal_one_plus_q2(a), 1);
}

/* (1 - a) / (1 + a) for a in [0, 1): Q0 in and out. */
static inline int32_t td_one_minus_over_one_plus(int32_t a)
{
    return td_saturating_shl(td_wrap_sub(td_reciprocal_one_plus_q2(a), 1 << 29), 2);
}

/* logistic(a), a in Q4, result in Q0. */
static inline int32_t td_logistic_q4(int32_t a)
{
    if (a == 0) {
        return 1 << 30;
    }
    const int32_t positive = td_one_over_one_plus(td_exp_on_negative(a > 0 ? -a : a, 4));
    return a > 0 ? positive : td_wrap_sub(INT32_MAX, positive);
}

/* tanh(a), a in Q4, result in Q0 (exp(2a) reads the same raw value as Q5). */
static inline int32_t td_tanh_q4(int32_t a)
{
    if (a == 0) {
        return 0;
    }
    const int32_t t = td_one_minus_over_one_plus(td_exp_on_negative(a < 0 ? a : -a, 5));
    return a < 0 ? -t : t;
}

#endif /* TD_FIXEDPOINT_H */
