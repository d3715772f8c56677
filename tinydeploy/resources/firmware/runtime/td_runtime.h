/* tinydeploy test runner: runs baked-in vectors through a model and reports
 * over the console in a line protocol the host parses (QEMU or a serial port):
 *
 *   TD BEGIN <model> vectors=<n> in=<bytes> out=<bytes> id=<fingerprint>
 *   (inputs and outputs are raw bytes: int8 values, or little-endian float32)
 *   TD CAL <ticks> <instructions>     ticks for a loop of known instruction count
 *   TD OUT <index> <ticks> <hex output bytes>
 *   TD LAYERS <index> <ticks of operator 0> <ticks of operator 1> ...   (profiling builds only)
 *   TD END <status>
 */
#ifndef TD_RUNTIME_H
#define TD_RUNTIME_H

#include <stdint.h>

typedef int (*td_invoke_fn)(const int8_t *in, int8_t *out);

int td_run_vectors(const char *model, td_invoke_fn invoke, const int8_t *vectors, uint32_t count,
                   uint32_t in_size, int8_t *out, uint32_t out_size, const char *fingerprint);

#endif /* TD_RUNTIME_H */
