/* NS16550A-compatible UART (QEMU riscv virt, many SoCs). */
#if defined(TD_UART_NS16550)
#include <stdint.h>
#include "td_board.h"

#define UART_THR (*(volatile uint8_t *)(TD_UART_BASE + 0x0u))
#define UART_IER (*(volatile uint8_t *)(TD_UART_BASE + 0x1u))
#define UART_FCR (*(volatile uint8_t *)(TD_UART_BASE + 0x2u))
#define UART_LCR (*(volatile uint8_t *)(TD_UART_BASE + 0x3u))
#define UART_LSR (*(volatile uint8_t *)(TD_UART_BASE + 0x5u))

void td_uart_init(void)
{
    UART_IER = 0u;
    UART_LCR = 0x03u;                  /* 8N1 */
    UART_FCR = 0x01u;                  /* FIFO on */
}

void td_putc(char c)
{
    while ((UART_LSR & 0x20u) == 0u) { /* THR empty */
    }
    UART_THR = (uint8_t)c;
}
#endif
