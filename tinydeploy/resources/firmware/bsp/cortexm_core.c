/* Cortex-M core support: vector table, reset, FPU enable, SysTick ticks. */
#if defined(TD_CORE_CORTEXM)
#include <stdint.h>
#include <string.h>
#include "td_board.h"

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYSTICK_MAX 0x00FFFFFFu

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

static volatile uint32_t systick_wraps;

void Reset_Handler(void);
static void SysTick_Handler(void) { systick_wraps++; }
static void Fault_Handler(void) { td_board_exit(3); }

__attribute__((used, section(".isr_vector")))
const void *const td_vector_table[16] = {
    &_estack, (const void *)Reset_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler,
    (const void *)Fault_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler, 0, 0, 0, 0,
    (const void *)Fault_Handler, (const void *)Fault_Handler, 0, (const void *)Fault_Handler,
    (const void *)SysTick_Handler,
};

void Reset_Handler(void)
{
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20;          /* full access to CP10/CP11 */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    td_board_exit(main());
}

void td_board_init(void)
{
    td_uart_init();
    SYST_RVR = SYSTICK_MAX;
    SYST_CVR = 0;
    SYST_CSR = 7u;                     /* core clock, interrupt on wrap, enable */
}

uint64_t td_ticks(void)
{
    uint32_t wraps, value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return ((uint64_t)wraps << 24) + (SYSTICK_MAX - value);
}

void td_spin(uint32_t iterations)
{
    __asm volatile(".syntax unified\n1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+l"(iterations) : : "cc");
}
#endif
