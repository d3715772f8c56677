/* The board interface the runtime needs: a console, a tick counter, an exit.
 * Each board selects its implementation with -D flags from boards/<board>.yaml:
 * TD_UART_CMSDK or TD_UART_PL011 (+ TD_UART_BASE), TD_CORE_CORTEXM, TD_EXIT_SEMIHOSTING. */
#ifndef TD_BOARD_H
#define TD_BOARD_H

#include <stdint.h>

void td_board_init(void);
void td_putc(char c);
/* Free-running 64-bit tick count (SysTick on Cortex-M: core clock ticks;
 * under QEMU -icount they count instructions, see td_runtime.c). */
uint64_t td_ticks(void);
/* Busy loop of exactly 2 instructions per iteration, for calibration. */
void td_spin(uint32_t iterations);
void td_board_exit(int status);

#endif /* TD_BOARD_H */
