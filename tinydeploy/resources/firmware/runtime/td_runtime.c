/* The on-target side of `tinydeploy run`: the lines it prints are in td_protocol.h. */
#include "td_runtime.h"
#include "td_protocol.h"
#include "td_board.h"

#define CALIBRATION_ITERATIONS 50000u

/* The line being printed: its number in the run and the CRC of its payload so far (td_protocol.h). */
static uint32_t line_seq;
static uint16_t line_crc;

static void put_raw(const char *s)            /* not part of any line's payload */
{
    while (*s) {
        td_putc(*s++);
    }
}

static void emit(char c)                      /* one payload character, into the line's CRC */
{
    uint32_t crc = line_crc ^ ((uint32_t)(uint8_t)c << 8);
    for (int bit = 0; bit < 8; ++bit) {
        crc = (crc & 0x8000u) ? (crc << 1) ^ TD_CRC_POLY : crc << 1;
    }
    line_crc = (uint16_t)crc;
    td_putc(c);
}

static void put_str(const char *s)
{
    while (*s) {
        emit(*s++);
    }
}

static void put_u64(uint64_t v)
{
    char digits[21];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    while (n) {
        emit(digits[--n]);
    }
}

static void put_hex(const int8_t *data, uint32_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    for (uint32_t i = 0; i < bytes; ++i) {
        const uint8_t b = (uint8_t)data[i];
        emit(hex[b >> 4]);
        emit(hex[b & 15u]);
    }
}

/* "<head> <seq>": the start of a line. */
static void line_start(const char *head)
{
    line_crc = TD_CRC_INIT;
    put_str(head);
    emit(' ');
    put_u64(line_seq);
}

/* " *<crc>" and the line ending. */
static void line_finish(void)
{
    static const char hex[] = "0123456789abcdef";
    const uint16_t crc = line_crc;
    put_raw(TD_CHECKSUM_MARK);
    for (int shift = 12; shift >= 0; shift -= 4) {
        td_putc(hex[(crc >> shift) & 15u]);
    }
    put_raw(TD_LINE_ENDING);
    ++line_seq;
}

/* Ticks spent in a loop of known length: the host turns ticks into
 * instructions (emulator) or reports them as cycles (real board). */
static void calibrate(void)
{
    uint64_t t0 = td_ticks();
    td_spin(CALIBRATION_ITERATIONS);
    uint64_t t1 = td_ticks();
    td_spin(2u * CALIBRATION_ITERATIONS);
    uint64_t t2 = td_ticks();
    line_start(TD_LINE_CAL);
    emit(' ');
    put_u64((t2 - t1) - (t1 - t0));
    emit(' ');
    put_u64(2u * CALIBRATION_ITERATIONS);
    line_finish();
}

/* Profiling (builds with -DTD_PROFILE): ticks spent in each operator. */
#define TD_PROFILE_MAX_OPS 256
static uint32_t layer_ticks[TD_PROFILE_MAX_OPS];
static int layer_count;
static uint64_t layer_mark;
static uint64_t tick_overhead;                /* cost of one td_ticks() call, in ticks */

void td_profile_begin(void)
{
    layer_count = 0;
    layer_mark = td_ticks();
}

void td_profile_mark(int op_index)
{
    const uint64_t now = td_ticks();
    const uint64_t spent = now - layer_mark;
    if (op_index >= 0 && op_index < TD_PROFILE_MAX_OPS) {
        layer_ticks[op_index] = (uint32_t)(spent > tick_overhead ? spent - tick_overhead : 0u);
        layer_count = op_index + 1 > layer_count ? op_index + 1 : layer_count;
    }
    layer_mark = td_ticks();
}

static void put_layers(uint32_t vector)
{
    if (layer_count == 0) {
        return;
    }
    line_start(TD_LINE_LAYERS);
    emit(' ');
    put_u64(vector);
    for (int i = 0; i < layer_count; ++i) {
        emit(' ');
        put_u64(layer_ticks[i]);
    }
    line_finish();
}

int td_run_vectors(const char *model, td_invoke_fn invoke, const int8_t *vectors, uint32_t count,
                   uint32_t in_size, int8_t *out, uint32_t out_size, const char *fingerprint,
                   uint32_t arena_used)
{
    /* Under QEMU -icount the tick counter advances a fraction of a tick per instruction, so how a
     * count rounds depends on how many instructions ran before it: printing this line in fewer,
     * longer strings keeps its cost, and the reported counts, stable. */
    put_raw(TD_LINE_ENDING);                   /* a fresh line, whatever the boot code printed */
    line_seq = 0;
    line_start(TD_LINE_BEGIN);
    emit(' ');
    put_str(model);
    put_str(" " TD_FIELD_VERSION TD_PROTOCOL_VERSION_TEXT " " TD_FIELD_VECTORS);
    put_u64(count);
    put_str(" " TD_FIELD_IN);
    put_u64(in_size);
    put_str(" " TD_FIELD_OUT);
    put_u64(out_size);
    put_str(" " TD_FIELD_ID);
    put_str(fingerprint);
    line_finish();
    calibrate();
    uint64_t t0 = td_ticks();
    const uint64_t overhead = td_ticks() - t0;      /* cost of reading the counter */
    tick_overhead = overhead;
    int status = 0;
    for (uint32_t i = 0; i < count; ++i) {
        t0 = td_ticks();
        status |= invoke(vectors + (uint64_t)i * in_size, out);
        uint64_t elapsed = td_ticks() - t0;
        line_start(TD_LINE_OUT);
        emit(' ');
        put_u64(i);
        emit(' ');
        put_u64(elapsed > overhead ? elapsed - overhead : 0u);
        emit(' ');
        put_hex(out, out_size);
        line_finish();
        put_layers(i);
    }
    line_start(TD_LINE_END);
    emit(' ');
    put_u64((uint64_t)status);
    put_str(" " TD_FIELD_ARENA);
    put_u64(arena_used);
    line_finish();
    return status;
}
