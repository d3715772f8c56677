/* The tinydeploy line protocol, firmware side: its version and its line keywords.
 *
 * The runner (td_runtime.c) reports over the console (QEMU's UART or a board's
 * serial port), one line per record, fields separated by one space, each line
 * ended by "\r\n". The host reads it in tinydeploy/verify/protocol.py, whose
 * module docstring is the one full description; the lines are:
 *
 * Every line is framed as "TD <KIND> <seq> <fields> *<crc>":
 *
 *   TD BEGIN <seq> <model> v=<TD_PROTOCOL_VERSION> vectors=<n> in=<bytes> out=<bytes> id=<fingerprint> *<crc>
 *   TD CAL <seq> <ticks> <instructions>        ticks spent in a loop of known instruction count
 *   TD OUT <seq> <index> <ticks> <hex>         one vector: ticks for invoke(), the output's raw bytes in hex
 *                                              (int8 values, or little-endian float32)
 *   TD LAYERS <seq> <index> <ticks> ...        ticks per operator (profiling builds, -DTD_PROFILE)
 *   TD END <seq> <status> arena=<bytes>        OR of every invoke()'s return value; the arena bytes
 *                                              the runtime used (AOT: all of its static arena)
 *
 * <seq> counts the run's lines from 0 (TD BEGIN); <crc> is the CRC-16/CCITT-FALSE
 * (polynomial 0x1021, initial 0xffff) of the line from "TD" up to the space before
 * '*', as 4 lower-case hex digits. With them the host tells a reset (a second
 * BEGIN), a dropped, repeated or garbled line from a good run.
 *
 * Change a line's layout, or add a required field, and TD_PROTOCOL_VERSION
 * goes up here and PROTOCOL_VERSION in protocol.py with it: the host refuses a
 * firmware that speaks another version and says to rebuild it.
 */
#ifndef TD_PROTOCOL_H
#define TD_PROTOCOL_H

#define TD_PROTOCOL_VERSION 2

/* The version as text, for TD BEGIN's v= field (printed as part of one string). */
#define TD_PROTOCOL_STR_(x) #x
#define TD_PROTOCOL_STR(x) TD_PROTOCOL_STR_(x)
#define TD_PROTOCOL_VERSION_TEXT TD_PROTOCOL_STR(TD_PROTOCOL_VERSION)

/* Line heads, each followed by a space and its fields. */
#define TD_LINE_BEGIN "TD BEGIN"
#define TD_LINE_CAL "TD CAL"
#define TD_LINE_OUT "TD OUT"
#define TD_LINE_LAYERS "TD LAYERS"
#define TD_LINE_END "TD END"

/* The key=value fields of TD BEGIN, in the order they are printed (after the model name). */
#define TD_FIELD_VERSION "v="
#define TD_FIELD_VECTORS "vectors="
#define TD_FIELD_IN "in="
#define TD_FIELD_OUT "out="
#define TD_FIELD_ID "id="
#define TD_FIELD_ARENA "arena="    /* TD END: arena bytes the model's runtime used */

#define TD_LINE_ENDING "\r\n"

/* Between a line's payload and its checksum. */
#define TD_CHECKSUM_MARK " *"
#define TD_CRC_INIT 0xffffu
#define TD_CRC_POLY 0x1021u

#endif /* TD_PROTOCOL_H */
