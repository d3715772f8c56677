/* Per-operator profiling hooks for generated model code. Built with
 * -DTD_PROFILE, run() calls td_profile_begin() first and td_profile_mark(k)
 * after operator k; the application defines both (the tinydeploy test runner
 * does, and reports ticks per operator). Without TD_PROFILE nothing changes. */
#ifndef TD_PROFILE_H
#define TD_PROFILE_H

#ifdef TD_PROFILE
void td_profile_begin(void);
void td_profile_mark(int op_index);
#define TD_RUN_BEGIN() td_profile_begin()
#define TD_TRACE(op_index, data, bytes) td_profile_mark(op_index)
#endif

#endif /* TD_PROFILE_H */
