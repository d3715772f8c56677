/* td_conv.h's td_depthwise_conv_m1_s8: DEPTHWISE_CONV_2D with depth multiplier 1
 * through a ring of unpacked input rows.
 *
 * Each input row is unpacked once into `scratch`: 16-bit values with the
 * input offset already added, stored per group of four channels as the pairs
 * (c0, c2) (c1, c3) that SXTB16 produces, one slot per row, [group][column].
 * Padding rows and columns hold 0, so a padding tap adds nothing, exactly as
 * the reference skips it; every output pixel then runs the same loop, with
 * no border cases. The code generator lays the weights out the same way,
 * pre-unpacked: [group][tap][(c0, c2) (c1, c3)]. Channels are padded to a
 * multiple of four with zero weights; only real channels are stored.
 *
 * Scratch: `ring_rows` slots of `groups * span * 2` words (RING_SPAN and
 * RING_ROWS, the one definition of td_depthwise_conv_m1_scratch_bytes); filter_h <=
 * TD_DEPTHWISE_MAX_FILTER_H. */
#include "td_conv.h"
#include "td_fixedpoint.h"
#include "td_output.h"

typedef struct {
    int32_t a0, a1, a2, a3;       /* channels c0..c3 of one group */
} dw_acc;

/* The ring's geometry, the one definition of td_depthwise_conv_m1_scratch_bytes (macros,
 * not functions, so the kernel compiles exactly as with the expressions written out): a
 * slot per row holds every input column an output row reads (RING_SPAN, padding
 * included), two words per column and group of four channels; RING_ROWS slots. */
#define CHANNEL_GROUPS(channels) (((channels) + 3) >> 2)
#define RING_SPAN(w) (((w)->out_w - 1) * (w)->stride_w + ((w)->filter_w - 1) * (w)->dilation_w + 1)
#define RING_ROWS(w) (((w)->filter_h - 1) * (w)->dilation_h + 1)
#define SLOT_WORDS(groups, span) (2 * (groups) * (span))

int32_t td_depthwise_conv_m1_scratch_bytes(const td_depthwise_params *p)
{
    const td_window *w = &p->win;
    return RING_ROWS(w) * SLOT_WORDS(CHANNEL_GROUPS(w->in_c), RING_SPAN(w)) * (int32_t)sizeof(uint32_t);
}

/* acc += x * k for the four channels of one tap (x and k: two words each). */
static TD_ALWAYS_INLINE void dw_tap(const uint32_t *x, const uint32_t *k, dw_acc *a)
{
    a->a0 = td_smlabb(x[0], k[0], a->a0);
    a->a2 = td_smlatt(x[0], k[0], a->a2);
    a->a1 = td_smlabb(x[1], k[1], a->a1);
    a->a3 = td_smlatt(x[1], k[1], a->a3);
    TD_STEP_BARRIER(a->a0, a->a1, a->a2, a->a3);
}

/* Requantize and store the first `n` (1-4) channels of a group. */
static TD_ALWAYS_INLINE void dw_store(const td_depthwise_params *p, const td_rescale *r, const dw_acc *a, int32_t n,
                                      int8_t *out, int mode)
{
    const int32_t offset = p->output_offset, lo = p->act_min, hi = p->act_max;
    out[0] = td_output(r, a->a0, offset, lo, hi, mode);
    if (n == 4) {
        out[1] = td_output(r + 1, a->a1, offset, lo, hi, mode);
        out[2] = td_output(r + 2, a->a2, offset, lo, hi, mode);
        out[3] = td_output(r + 3, a->a3, offset, lo, hi, mode);
        return;
    }
    const int32_t rest[3] = {a->a1, a->a2, a->a3};
    for (int32_t c = 1; c < n; ++c) {
        out[c] = td_output(r + c, rest[c - 1], offset, lo, hi, mode);
    }
}

/* Input row `iy` (any index; outside the image: zeros) into one ring slot. */
static void unpack_row(const td_depthwise_params *p, const int8_t *image, int32_t iy, int32_t span, uint32_t *slot)
{
    const td_window *w = &p->win;
    const int32_t channels = w->in_c, groups = CHANNEL_GROUPS(channels), tail = channels & 3;
    const uint32_t offset = td_dup16(p->input_offset);
    const int inside = iy >= 0 && iy < w->in_h;
    const int32_t first = inside ? w->pad_w : span;             /* span covers the left padding */
    const int32_t last = inside && w->pad_w + w->in_w < span ? w->pad_w + w->in_w : span;
    for (int32_t g = 0; g < groups; ++g) {
        uint32_t *dst = slot + 2 * g * span;
        const int8_t *src = inside ? image + iy * w->in_w * channels + 4 * g : image;
        const int partial = tail && g == groups - 1;
        int32_t col = 0;
        for (; col < first; ++col, dst += 2) {
            dst[0] = 0, dst[1] = 0;
        }
        for (; col < last; ++col, dst += 2) {
            const int8_t *x = src + (col - first) * channels;    /* indexed: never past the image */
            const uint32_t v = partial ? td_load_tail(x, tail) : td_load4(x);
            dst[0] = td_sxtab16(offset, v);
            dst[1] = td_sxtab16_odd(offset, v);
        }
        for (; col < span; ++col, dst += 2) {
            dst[0] = 0, dst[1] = 0;
        }
    }
}

#if TD_DSP
/* One 3x3 tap in assembly: x (two words at [xr, #xo]) times k (two words at [k, #ko]). */
#define TD_DW_TAP3(xr, xo, ko)                                                                    \
    "ldrd    %[xl], %[xh], [%[" xr "], #" xo "]\n\t"                                            \
    "ldrd    %[kl], %[kh], [%[k], #" ko "]\n\t"                                                   \
    "smlabb  %[a0], %[xl], %[kl], %[a0]\n\t"                                                      \
    "smlatt  %[a2], %[xl], %[kl], %[a2]\n\t"                                                      \
    "smlabb  %[a1], %[xh], %[kh], %[a1]\n\t"                                                      \
    "smlatt  %[a3], %[xh], %[kh], %[a3]\n\t"
#endif

/* The nine taps of one output pixel and channel group: rows x0, x1, x2, weights k. On DSP
 * cores in assembly (two LDRD and four multiply-accumulates per tap, nothing spilled). */
static TD_ALWAYS_INLINE void dw_taps_3x3(const uint32_t *x0, const uint32_t *x1, const uint32_t *x2,
                                         const uint32_t *k, dw_acc *a)
{
#if TD_DSP
    uint32_t xl, xh, kl, kh;
    __asm__(TD_DW_TAP3("x0", "0", "0") TD_DW_TAP3("x0", "8", "8") TD_DW_TAP3("x0", "16", "16")
            TD_DW_TAP3("x1", "0", "24") TD_DW_TAP3("x1", "8", "32") TD_DW_TAP3("x1", "16", "40")
            TD_DW_TAP3("x2", "0", "48") TD_DW_TAP3("x2", "8", "56") TD_DW_TAP3("x2", "16", "64")
            : [a0] "+r"(a->a0), [a1] "+r"(a->a1), [a2] "+r"(a->a2), [a3] "+r"(a->a3),
              [xl] "=&r"(xl), [xh] "=&r"(xh), [kl] "=&r"(kl), [kh] "=&r"(kh)
            : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [k] "r"(k)
            : "memory");
#else
    dw_tap(x0, k, a), dw_tap(x0 + 2, k + 2, a), dw_tap(x0 + 4, k + 4, a);
    dw_tap(x1, k + 6, a), dw_tap(x1 + 2, k + 8, a), dw_tap(x1 + 4, k + 10, a);
    dw_tap(x2, k + 12, a), dw_tap(x2 + 2, k + 14, a), dw_tap(x2 + 4, k + 16, a);
#endif
}

/* One output row of one channel group for a 3x3 filter (dilation 1):
 * x0, x1, x2 point at the group's part of filter rows 0-2. This loop and dw_row's stop
 * at their last pixel and tap instead of stepping past them, so no pointer leaves the
 * ring or the output (and the loops are shorter); out_w and filter_w are >= 1. */
static TD_ALWAYS_INLINE void dw_row_3x3(const td_depthwise_params *p, const uint32_t *x0, const uint32_t *x1,
                                        const uint32_t *x2, const uint32_t *k, const int32_t *bias,
                                        const td_rescale *r, int32_t n, int8_t *out, int mode)
{
    const int32_t step = 2 * p->win.stride_w, channels = p->win.in_c;
    for (int8_t *const last = out + (p->win.out_w - 1) * channels;; x0 += step, x1 += step, x2 += step, out += channels) {
        dw_acc a = {bias[0], bias[1], bias[2], bias[3]};
        dw_taps_3x3(x0, x1, x2, k, &a);
        dw_store(p, r, &a, n, out, mode);
        if (out == last) {
            break;
        }
    }
}

/* One output row of one channel group, any filter: rows[fy] points at the group's part of filter row fy. */
static TD_ALWAYS_INLINE void dw_row(const td_depthwise_params *p, const uint32_t *const *rows, const uint32_t *k,
                                    const int32_t *bias, const td_rescale *r, int32_t n, int8_t *out, int mode)
{
    const td_window *w = &p->win;
    const int32_t step = 2 * w->stride_w, tap_step = 2 * w->dilation_w, channels = w->in_c;
    for (int32_t ox = 0;; ++ox, out += channels) {
        dw_acc a = {bias[0], bias[1], bias[2], bias[3]};
        const uint32_t *kt = k;
        for (int32_t fy = 0; fy < w->filter_h; ++fy) {
            const uint32_t *x = rows[fy] + ox * step;
            for (int32_t fx = 1;; ++fx, x += tap_step) {
                dw_tap(x, kt, &a);
                kt += 2;
                if (fx == w->filter_w) {
                    break;
                }
            }
        }
        dw_store(p, r, &a, n, out, mode);
        if (ox == w->out_w - 1) {
            break;
        }
    }
}

static TD_ALWAYS_INLINE void depthwise_rows(const td_depthwise_params *p, const int8_t *in, int8_t *out,
                                            int8_t *scratch, int mode)
{
    const td_window *w = &p->win;
    const int32_t channels = w->in_c, groups = CHANNEL_GROUPS(channels), taps = w->filter_h * w->filter_w;
    const int32_t span = RING_SPAN(w);
    const int32_t ring_rows = RING_ROWS(w), slot_words = SLOT_WORDS(groups, span);
    const int three = w->filter_h == 3 && w->filter_w == 3 && w->dilation_w == 1;
    uint32_t *ring = (uint32_t *)(void *)scratch;
    const uint32_t *rows[TD_DEPTHWISE_MAX_FILTER_H];
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = in + b * w->in_h * w->in_w * channels;
        int32_t next = -w->pad_h;                               /* the next input row to unpack */
        for (int32_t oy = 0; oy < w->out_h; ++oy, out += w->out_w * channels) {
            const int32_t top = oy * w->stride_h - w->pad_h;
            for (next = next > top ? next : top; next < top + ring_rows; ++next) {
                unpack_row(p, image, next, span, ring + ((next + w->pad_h) % ring_rows) * slot_words);
            }
            for (int32_t fy = 0; fy < w->filter_h; ++fy) {
                rows[fy] = ring + ((top + fy * w->dilation_h + w->pad_h) % ring_rows) * slot_words;
            }
            for (int32_t g = 0; g < groups; ++g) {
                const int32_t n = channels - 4 * g < 4 ? channels - 4 * g : 4;
                const uint32_t *k = p->weights + 2 * taps * g;
                const int32_t *bias = p->bias + 4 * g;
                const td_rescale *r = p->rescale + 4 * g;
                if (three && n == 4) {
                    dw_row_3x3(p, rows[0], rows[1], rows[2], k, bias, r, 4, out + 4 * g, mode);
                } else if (three) {
                    dw_row_3x3(p, rows[0], rows[1], rows[2], k, bias, r, n, out + 4 * g, mode);
                } else {
                    dw_row(p, rows, k, bias, r, n, out + 4 * g, mode);
                }
                for (int32_t fy = 0; fy < w->filter_h; ++fy) {
                    rows[fy] += 2 * span;
                }
            }
        }
    }
}

void td_depthwise_conv_m1_s8(const td_depthwise_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    const int mode = td_output_mode(p->fast, p->act_min, p->act_max);
    if (mode == TD_OUTPUT_SATURATE) {
        depthwise_rows(p, in, out, scratch, TD_OUTPUT_SATURATE);
    } else if (mode == TD_OUTPUT_FAST) {
        depthwise_rows(p, in, out, scratch, TD_OUTPUT_FAST);
    } else {
        depthwise_rows(p, in, out, scratch, TD_OUTPUT_EXACT);
    }
}
