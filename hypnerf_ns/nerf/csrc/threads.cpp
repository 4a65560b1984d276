// Settings of torch's CPU worker threads that torch itself applies to the calling thread only.
#include <torch/extension.h>
#include <ATen/Parallel.h>

// Flush denormal floats to zero (FTZ/DAZ) in the calling thread and in every thread of torch's
// intra-op pool (torch.set_flush_denormal sets the calling thread only): a parallel_for over as
// many items as threads hands each thread exactly one. Returns whether the CPU supports it.
bool set_flush_denormal_all_threads(bool on) {
  const bool supported = at::globalContext().setFlushDenormal(on);
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) { at::globalContext().setFlushDenormal(on); });
  return supported;
}
