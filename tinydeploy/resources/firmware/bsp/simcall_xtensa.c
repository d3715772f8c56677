/* Console and exit through Xtensa semihosting (the simcall instruction, QEMU's sim
 * machine with -semihosting): a2 holds the request, a3-a5 its arguments. */
#if defined(TD_UART_SIMCALL) || defined(TD_EXIT_SIMCALL)
#include <stdint.h>
#include "td_board.h"

#define SIMCALL_EXIT 1
#define SIMCALL_WRITE 4
#define STDOUT_FD 1

static int32_t simcall(int32_t request, int32_t a, int32_t b, int32_t c)
{
    register int32_t a2 __asm("a2") = request;
    register int32_t a3 __asm("a3") = a;
    register int32_t a4 __asm("a4") = b;
    register int32_t a5 __asm("a5") = c;
    __asm volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
    return a2;
}

#if defined(TD_UART_SIMCALL)
void td_uart_init(void)
{
}

void td_putc(char c)
{
    simcall(SIMCALL_WRITE, STDOUT_FD, (int32_t)(uintptr_t)&c, 1);
}
#endif

#if defined(TD_EXIT_SIMCALL)
void td_board_exit(int status)
{
    simcall(SIMCALL_EXIT, status, 0, 0);
    for (;;) {
    }
}
#endif
#endif
