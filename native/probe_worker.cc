// The dedicated worker thread of one probe; see probe_worker.h.
#include "probe_worker.h"

#include <exception>
#include <thread>

namespace gpu_layers {

std::shared_ptr<ProbeWorker> ProbeWorker::Start(Completion on_done) {
  std::shared_ptr<ProbeWorker> worker(new ProbeWorker(std::move(on_done)));
  // The thread owns a reference, so the worker outlives every JavaScript object that posted to
  // it. Detached on purpose: nobody may ever wait for a thread that can be stuck in the driver.
  std::thread([worker] { worker->Run(); }).detach();
  return worker;
}

void ProbeWorker::Post(std::unique_ptr<ProbeJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ProbeWorker::Run() {
  for (;;) {
    std::unique_ptr<ProbeJob> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty(); });
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const bool last = job->kind == ProbeJob::Kind::kClose;
    try {
      switch (job->kind) {
        case ProbeJob::Kind::kOpen:
          session_.Open(job->config, &job->open);
          break;
        case ProbeJob::Kind::kSample:
          session_.Sample(&job->sample);
          break;
        case ProbeJob::Kind::kClose:
          session_.Close();
          break;
      }
    } catch (const std::exception& e) {
      job->failure = e.what();
    }
    on_done_(std::move(job));
    if (last) return;
  }
}

}  // namespace gpu_layers
