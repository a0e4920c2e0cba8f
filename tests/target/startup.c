/* Vector table and fault handlers for the core self-test on an emulated Cortex-M4
 * (qemu-system-arm -M mps2-an386). The reset vector is newlib's _start (rdimon crt0):
 * it zeroes .bss, opens the semihosting console, runs constructors, calls main and
 * passes main's return value to exit(), which semihosting turns into qemu's exit status.
 * .data needs no copy: qemu loads the ELF's RAM segment in place (see mps2-an386.ld). */
#include <stdint.h>

extern void _start(void);
extern uint32_t __stack; /* top of RAM, from the linker script */

/* Any fault ends the run with a failing status instead of hanging until the timeout. */
static void semihost_fail(const char* what) {
    register int op __asm__("r0") = 0x04; /* SYS_WRITE0 */
    register const char* arg __asm__("r1") = what;
    __asm__ volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
    register int op2 __asm__("r0") = 0x18;                    /* SYS_EXIT */
    register uintptr_t reason __asm__("r1") = 0x20023;        /* ADP_Stopped_RunTimeErrorUnknown */
    __asm__ volatile("bkpt 0xab" : "+r"(op2) : "r"(reason) : "memory");
    for (;;) {
    }
}

static void nmi_handler(void) { semihost_fail("FAIL target: NMI\n"); }
static void hardfault_handler(void) { semihost_fail("FAIL target: HardFault\n"); }
static void memmanage_handler(void) { semihost_fail("FAIL target: MemManage fault\n"); }
static void busfault_handler(void) { semihost_fail("FAIL target: BusFault\n"); }
static void usagefault_handler(void) { semihost_fail("FAIL target: UsageFault\n"); }
static void other_handler(void) { semihost_fail("FAIL target: unexpected exception\n"); }

typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) const vector_t ew_vectors[16] = {
    (vector_t)(uintptr_t)&__stack, /* initial main stack pointer */
    _start,                        /* reset */
    nmi_handler,
    hardfault_handler,
    memmanage_handler,
    busfault_handler,
    usagefault_handler,
    0, 0, 0, 0,    /* reserved */
    other_handler, /* SVCall */
    other_handler, /* DebugMonitor */
    0,             /* reserved */
    other_handler, /* PendSV */
    other_handler, /* SysTick */
};
