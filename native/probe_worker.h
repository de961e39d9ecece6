/*
 * The probe's own worker thread. NVML calls can block for seconds (GPU initialisation with
 * persistence off) or forever (a wedged driver), so they run on one dedicated, detached thread
 * per probe instead of libuv's small shared pool: a stuck call then holds only this thread, never
 * a pool slot the host application needs, and never keeps process exit waiting on a join.
 * Jobs run one at a time, in order; results go to a completion callback on this thread.
 */
#ifndef GPU_LAYERS_PROBE_WORKER_H_
#define GPU_LAYERS_PROBE_WORKER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "probe_session.h"
#include "readings.h"

namespace gpu_layers {

struct ProbeJob {
  enum class Kind { kOpen, kSample, kClose };
  Kind kind = Kind::kSample;
  ProbeConfig config;   // kOpen only
  OpenReading open;     // result of kOpen
  SampleReading sample; // result of kSample
  std::string failure;  // set when the job threw (out of memory, ...)
};

class ProbeWorker {
 public:
  using Completion = std::function<void(std::unique_ptr<ProbeJob>)>;

  // Starts the thread. It stops after it has run a kClose job.
  static std::shared_ptr<ProbeWorker> Start(Completion on_done);
  void Post(std::unique_ptr<ProbeJob> job);

 private:
  explicit ProbeWorker(Completion on_done) : on_done_(std::move(on_done)) {}
  void Run();

  Completion on_done_;
  ProbeSession session_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<ProbeJob>> queue_;
};

}  // namespace gpu_layers

#endif  // GPU_LAYERS_PROBE_WORKER_H_
