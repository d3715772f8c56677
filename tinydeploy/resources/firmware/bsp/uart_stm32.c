/* STM32F2/F4 USART (Netduino Plus 2). */
#if defined(TD_UART_STM32)
#include <stdint.h>
#include "td_board.h"

#define USART_SR (*(volatile uint32_t *)(TD_UART_BASE + 0x00u))
#define USART_DR (*(volatile uint32_t *)(TD_UART_BASE + 0x04u))
#define USART_BRR (*(volatile uint32_t *)(TD_UART_BASE + 0x08u))
#define USART_CR1 (*(volatile uint32_t *)(TD_UART_BASE + 0x0Cu))

void td_uart_init(void)
{
    USART_BRR = TD_BOARD_CLOCK_HZ / 115200u;
    USART_CR1 = (1u << 13) | (1u << 3);        /* UE, TE */
}

void td_putc(char c)
{
    while ((USART_SR & (1u << 7)) == 0u) {     /* TXE */
    }
    USART_DR = (uint8_t)c;
}
#endif
