/* Arm PrimeCell PL011 UART (Stellaris LM3S, and many others). */
#if defined(TD_UART_PL011)
#include <stdint.h>
#include "td_board.h"

#define UART_DR (*(volatile uint32_t *)(TD_UART_BASE + 0x000u))
#define UART_FR (*(volatile uint32_t *)(TD_UART_BASE + 0x018u))
#define UART_IBRD (*(volatile uint32_t *)(TD_UART_BASE + 0x024u))
#define UART_FBRD (*(volatile uint32_t *)(TD_UART_BASE + 0x028u))
#define UART_LCRH (*(volatile uint32_t *)(TD_UART_BASE + 0x02Cu))
#define UART_CR (*(volatile uint32_t *)(TD_UART_BASE + 0x030u))

void td_uart_init(void)
{
    UART_CR = 0u;
    UART_IBRD = 1u;
    UART_FBRD = 0u;
    UART_LCRH = 0x60u;                 /* 8 data bits, FIFO off */
    UART_CR = 0x301u;                  /* UART, TX, RX enable */
}

void td_putc(char c)
{
    while (UART_FR & (1u << 5)) {      /* TX FIFO full */
    }
    UART_DR = (uint8_t)c;
}
#endif
