/* The board interface the runtime needs: a console, a tick counter, an exit.
 * Each board selects its implementation with -D flags from boards/<board>.yaml:
 *   core:  TD_CORE_CORTEXM (SysTick) or TD_CORE_RISCV (mcycle)
 *   uart:  TD_UART_CMSDK, TD_UART_PL011, TD_UART_NRF, TD_UART_STM32 or TD_UART_NS16550, at TD_UART_BASE
 *   exit:  TD_EXIT_SEMIHOSTING, TD_EXIT_SIFIVE_TEST (at TD_EXIT_BASE) or TD_EXIT_SPIN */
#ifndef TD_BOARD_H
#define TD_BOARD_H

#include <stdint.h>

void td_board_init(void);            /* the core file: console, then tick counter */
void td_uart_init(void);             /* the UART driver */
void td_putc(char c);
/* Free-running 64-bit tick count (SysTick on Cortex-M: core clock ticks;
 * under QEMU -icount they count instructions, see td_runtime.c). */
uint64_t td_ticks(void);
/* Busy loop of exactly 2 instructions per iteration, for calibration. */
void td_spin(uint32_t iterations);
void td_board_exit(int status);

#endif /* TD_BOARD_H */
