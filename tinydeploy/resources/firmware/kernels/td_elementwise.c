/* td_elementwise.h: ADD and MUL (with broadcasting), as TFLite Micro's
 * reference kernels compute them. */
#include "td_elementwise.h"
#include "td_fixedpoint.h"
#include "td_simd.h"

/* The per-element arithmetic of ADD or MUL with every constant in registers.
 * ADD's shifted inputs stay below 2^28 and MUL's products below 2^16, so the
 * short rescale is exact whenever the shifts are <= 0 (ADD: always, the code
 * generator refuses the rest). */
typedef struct {
    int32_t offset1, offset2, output_offset, lo, hi, left_shift;
    td_short_rescale in1, in2, out;
    const int32_t *table1, *table2;   /* ADD_TABLES: rescaled inputs, indexed -128..127; else NULL */
} binary_stage;

/* ADD computing each input's rescale, ADD looking both up, MUL. */
enum { ADD_DIRECT, ADD_TABLES, MUL };

/* ADD_TABLES' scratch, the one definition of td_add_scratch_bytes: input 1's rescaled
 * values for the 256 int8 codes, then input 2's. */
enum { TABLE_CODES = 256 };

int32_t td_add_scratch_bytes(const td_binary_params *p)
{
    const int32_t elements = p->shape[0] * p->shape[1] * p->shape[2] * p->shape[3];
    return elements >= TD_ADD_TABLE_MIN_ELEMENTS ? 2 * TABLE_CODES * (int32_t)sizeof(int32_t) : 0;
}

/* (x + offset) * 2^left_shift, |x + offset| <= 255 and left_shift 20: the shift is done
 * on uint32 (a negative int32 must not be shifted left), the product fits in int32. */
static inline int32_t add_input(const binary_stage *b, int32_t x, int32_t offset, const td_short_rescale *r)
{
    return td_rescale_short((int32_t)((uint32_t)(x + offset) << b->left_shift), r);
}

static TD_ALWAYS_INLINE int8_t binary_one(const binary_stage *b, int32_t x, int32_t y, int kind)
{
    int32_t v;
    if (kind == ADD_TABLES) {
        v = td_rescale_short(b->table1[x] + b->table2[y], &b->out);
    } else if (kind == ADD_DIRECT) {
        v = td_rescale_short(add_input(b, x, b->offset1, &b->in1) + add_input(b, y, b->offset2, &b->in2), &b->out);
    } else {
        v = td_rescale_short((x + b->offset1) * (y + b->offset2), &b->out);
    }
    return (int8_t)td_clamp(v + b->output_offset, b->lo, b->hi);
}

static TD_ALWAYS_INLINE void binary(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                                    int kind, int32_t *tables)
{
    binary_stage b = {p->input1_offset, p->input2_offset, p->output_offset, p->act_min, p->act_max,
                      p->left_shift, td_short_rescale_of(p->input1_multiplier, p->input1_shift),
                      td_short_rescale_of(p->input2_multiplier, p->input2_shift),
                      td_short_rescale_of(p->output_multiplier, p->output_shift),
                      kind == ADD_TABLES ? tables + 128 : 0, kind == ADD_TABLES ? tables + TABLE_CODES + 128 : 0};
    if (kind == ADD_TABLES) {
        for (int32_t v = -128; v < 128; ++v) {
            tables[v + 128] = add_input(&b, v, b.offset1, &b.in1);
            tables[v + TABLE_CODES + 128] = add_input(&b, v, b.offset2, &b.in2);
        }
    }
    const int32_t *n = p->shape, *s1 = p->stride1, *s2 = p->stride2;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int8_t *x = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *y = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                if (s1[3] == 1 && s2[3] == 1) {              /* the common case: both contiguous */
                    for (int32_t i3 = n[3]; i3 > 0; --i3) {
                        *out++ = binary_one(&b, *x++, *y++, kind);
                    }
                } else {
                    for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                        *out++ = binary_one(&b, x[i3 * s1[3]], y[i3 * s2[3]], kind);
                    }
                }
            }
        }
    }
}

void td_add_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int8_t *scratch)
{
    if (scratch) {
        binary(p, in1, in2, out, ADD_TABLES, (int32_t *)(void *)scratch);
    } else {
        binary(p, in1, in2, out, ADD_DIRECT, (int32_t *)0);
    }
}

/* MUL with a rescale above 1 (shift > 0) takes the general path. */
static int32_t mul_general(const td_binary_params *p, int32_t x, int32_t y)
{
    const int32_t v = td_requantize((x + p->input1_offset) * (y + p->input2_offset), p->output_multiplier,
                                    p->output_shift);
    return td_clamp(v + p->output_offset, p->act_min, p->act_max);
}

void td_mul_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    if (p->output_shift <= 0) {
        binary(p, in1, in2, out, MUL, (int32_t *)0);
        return;
    }
    const int32_t *n = p->shape, *s1 = p->stride1, *s2 = p->stride2;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                    const int32_t a = i0 * s1[0] + i1 * s1[1] + i2 * s1[2] + i3 * s1[3];
                    const int32_t b = i0 * s2[0] + i1 * s2[1] + i2 * s2[2] + i3 * s2[3];
                    *out++ = (int8_t)mul_general(p, in1[a], in2[b]);
                }
            }
        }
    }
}
