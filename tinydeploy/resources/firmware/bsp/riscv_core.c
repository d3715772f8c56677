/* RISC-V (RV32, machine mode) core support: start-up, mcycle ticks, the spin loop.
 * The image runs from RAM; the linker script puts everything there. */
#if defined(TD_CORE_RISCV)
#include <stdint.h>
#include <string.h>
#include "td_board.h"

extern char _sbss[], _ebss[];
extern int main(void);

__attribute__((naked, section(".text.start"))) void _start(void)
{
    __asm volatile(
        ".option push\n\t.option norelax\n\t"
        "la gp, __global_pointer$\n\t"
        ".option pop\n\t"
        "la sp, _estack\n\t"
        "j td_riscv_start");
}

__attribute__((used)) void td_riscv_start(void)
{
    memset(_sbss, 0, (size_t)(_ebss - _sbss));
    td_board_exit(main());
}

void td_board_init(void)
{
    td_uart_init();
}

/* mcycle: under QEMU -icount it advances a fixed amount per instruction. */
uint64_t td_ticks(void)
{
    uint32_t hi, lo, hi2;
    do {
        __asm volatile("csrr %0, mcycleh" : "=r"(hi));
        __asm volatile("csrr %0, mcycle" : "=r"(lo));
        __asm volatile("csrr %0, mcycleh" : "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}

void td_spin(uint32_t iterations)
{
    __asm volatile("1:\n\taddi %0, %0, -1\n\tbnez %0, 1b" : "+r"(iterations));
}
#endif
