/* Xtensa LX106 core support (the ESP8266's core, CALL0 ABI) in QEMU's sim machine:
 * the reset vector, exception vectors, start-up, CCOUNT ticks as exact instruction
 * counts, the spin loop. The emulator loads every section at its address: nothing
 * is copied at start-up. */
#if defined(TD_CORE_XTENSA)
#include <stdint.h>
#include <string.h>
#include "td_board.h"

#define FAULT_STATUS 3                  /* exit status of any exception, as on Cortex-M */

/* QEMU models the LX106's CCOUNT at 40 MHz (25 ns a tick) and, under -icount, takes
 * 2^TD_ICOUNT_SHIFT ns per instruction: CCOUNT = floor(instructions * 2^shift / 25).
 * Over one tick per instruction (shift >= 5) that count is the least n with
 * floor(n * 2^shift / 25) == CCOUNT, so td_ticks() returns instructions, and TD CAL
 * reports one tick per instruction. */
#define CCOUNT_NS_PER_TICK 25u
#if !defined(TD_ICOUNT_SHIFT) || TD_ICOUNT_SHIFT < 5
#error "TD_ICOUNT_SHIFT (the board's emulator.qemu.icount_shift) must be at least 5: one CCOUNT tick per instruction or more"
#endif
#define NS_PER_INSTRUCTION (1u << TD_ICOUNT_SHIFT)

extern char _sbss[], _ebss[], td_exception_vectors[];
extern int main(void);

/* The reset vector (the linker script puts it at the core's reset address): stack
 * pointer, then C. l32r reads literals only below itself, so they sit after a jump. */
__asm(".section .reset_vector, \"ax\"\n"
      "    .global _start\n"
      "_start:\n"
      "    j 1f\n"
      "    .align 4\n"
      ".Lstack_top: .word _estack\n"
      ".Lc_start: .word td_xtensa_start\n"
      "1:  l32r a1, .Lstack_top\n"
      "    l32r a0, .Lc_start\n"
      "    jx a0\n"
      "    .previous\n");

/* Exception vectors at VECBASE + the core's offsets (XCHAL_*_VECOFS): kernel, user and
 * double exceptions (an unaligned load or store, an illegal instruction, a bad address)
 * all end the run with FAULT_STATUS through td_board_exit. */
#define TD_STRINGIFY(x) #x
#define TD_TEXT(x) TD_STRINGIFY(x)
#define TD_FAULT_VECTOR(offset)                       \
    "    .org td_exception_vectors + " #offset "\n"             \
    "    j 1f\n"                                      \
    "    .align 4\n"                                  \
    "2:  .word td_board_exit\n"                       \
    "1:  movi a2, " TD_TEXT(FAULT_STATUS) "\n"        \
    "    l32r a0, 2b\n"                               \
    "    jx a0\n"

__asm(".section .text.vectors, \"ax\"\n"
      "    .align 1024\n"                /* VECBASE, the vectors' base, is 1 KB aligned */
      "    .global td_exception_vectors\n"
      "td_exception_vectors:\n"
      TD_FAULT_VECTOR(0x30)               /* kernel exception */
      TD_FAULT_VECTOR(0x50)               /* user exception */
      TD_FAULT_VECTOR(0x70)               /* double exception (PS.EXCM is set, as it is from reset) */
      "    .previous\n");

__attribute__((used)) void td_xtensa_start(void)
{
    memset(_sbss, 0, (size_t)(_ebss - _sbss));
    __asm volatile("wsr.vecbase %0\n\trsync" : : "a"(td_exception_vectors));
    td_board_exit(main());
}

void td_board_init(void)
{
    td_uart_init();
}

/* The 32-bit CCOUNT wraps every 2^32 ticks (1.6 G instructions at shift 6): read it at least
 * that often (the runner reads it around every inference). */
static uint32_t last_ccount;
static uint64_t ccount_wraps;           /* 2^32 times the wraps seen so far */

uint64_t td_ticks(void)
{
    uint32_t now;
    __asm volatile("rsr.ccount %0" : "=a"(now));
    if (now < last_ccount) {
        ccount_wraps += (uint64_t)1 << 32;
    }
    last_ccount = now;
    const uint64_t ccount = ccount_wraps | now;
    return (ccount * CCOUNT_NS_PER_TICK + NS_PER_INSTRUCTION - 1u) >> TD_ICOUNT_SHIFT;
}

void td_spin(uint32_t iterations)
{
    __asm volatile("1:\n\taddi.n %0, %0, -1\n\tbnez %0, 1b" : "+a"(iterations));
}
#endif
