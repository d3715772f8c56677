/* Nordic nRF51/nRF52 UART (BBC micro:bit). */
#if defined(TD_UART_NRF)
#include <stdint.h>
#include "td_board.h"

#define UART_REG(offset) (*(volatile uint32_t *)(TD_UART_BASE + (offset)))
#define UART_STARTTX UART_REG(0x008u)
#define UART_TXDRDY UART_REG(0x11Cu)
#define UART_ENABLE UART_REG(0x500u)
#define UART_TXD UART_REG(0x51Cu)

void td_uart_init(void)
{
    UART_ENABLE = 4u;
    UART_STARTTX = 1u;
}

void td_putc(char c)
{
    UART_TXDRDY = 0u;
    UART_TXD = (uint8_t)c;
    while (UART_TXDRDY == 0u) {        /* wait until the byte has left */
    }
}
#endif
