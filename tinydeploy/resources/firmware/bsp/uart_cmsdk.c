/* Arm CMSDK APB UART (MPS2/MPS3 boards). TX must be enabled and BAUDDIV >= 16,
 * or QEMU drops characters. */
#if defined(TD_UART_CMSDK)
#include <stdint.h>
#include "td_board.h"

#define UART_DATA (*(volatile uint32_t *)(TD_UART_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(TD_UART_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(TD_UART_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(TD_UART_BASE + 0x10u))

void td_uart_init(void)
{
    UART_BAUDDIV = 16u;
    UART_CTRL = 1u;                    /* TX enable */
}

void td_putc(char c)
{
    while (UART_STATE & 1u) {          /* TX buffer full */
    }
    UART_DATA = (uint8_t)c;
}
#endif
