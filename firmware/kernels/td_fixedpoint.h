/* Integer fixed-point helpers shared by the tinydeploy kernels.
 *
 * These reproduce the rounding of TFLite Micro's reference kernels exactly
 * (gemmlowp's SaturatingRoundingDoublingHighMul and RoundingDivideByPOT, the
 * "double rounding" requantization), so int8 outputs are byte-identical.
 */
#ifndef TD_FIXEDPOINT_H
#define TD_FIXEDPOINT_H

#include <stdint.h>

/* (a * b * 2) >> 32 with round-to-nearest; saturates the one overflow case. */
static inline int32_t td_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
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
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* TD_FIXEDPOINT_H */
