/* Exit the emulator with a status code through Arm semihosting
 * (SYS_EXIT_EXTENDED). On a real board without a debugger, spin instead. */
#if defined(TD_EXIT_SEMIHOSTING)
#include <stdint.h>
#include "td_board.h"

void td_board_exit(int status)
{
    volatile uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)status};
    register uint32_t r0 __asm("r0") = 0x20u;  /* SYS_EXIT_EXTENDED */
    register volatile uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}
#elif defined(TD_EXIT_SPIN)
#include "td_board.h"

void td_board_exit(int status)
{
    (void)status;
    for (;;) {
    }
}
#endif
