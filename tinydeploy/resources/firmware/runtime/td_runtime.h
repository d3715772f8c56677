/* tinydeploy test runner: runs baked-in vectors through a model and reports
 * the outputs and tick counts over the console (QEMU or a serial port) in the
 * versioned line protocol of td_protocol.h, which the host parses.
 */
#ifndef TD_RUNTIME_H
#define TD_RUNTIME_H

#include <stdint.h>

typedef int (*td_invoke_fn)(const int8_t *in, int8_t *out);

int td_run_vectors(const char *model, td_invoke_fn invoke, const int8_t *vectors, uint32_t count,
                   uint32_t in_size, int8_t *out, uint32_t out_size, const char *fingerprint,
                   uint32_t arena_used);

#endif /* TD_RUNTIME_H */
