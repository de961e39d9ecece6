/*
 * The JavaScript face of one probe: open(config), sample() and close() each post a job to the
 * probe's worker thread and return a Promise. Results come back through a uv_async_t owned here
 * (not a ThreadSafeFunction: at environment teardown Node frees those while a wedged worker
 * could still be about to call one). The worker only touches the mailbox under its mutex and
 * only while it is alive; teardown marks it dead under the same mutex before closing the handle.
 *
 * At most one open or sample is in flight; a second is rejected with code PROBE_BUSY (the
 * TypeScript layer never sends one). close() is always accepted and queues behind a stuck call.
 *
 * The handle is ref'd while a job is pending, so a process waits for its own open, sample or
 * close. unref() says the caller gave up on the jobs pending now (a deadline passed): from then
 * until every one of them has returned, no job keeps the process alive, including a close()
 * posted afterwards: it queues behind the stuck call, so waiting for it would mean waiting for
 * the driver, possibly forever.
 */
#include "native_probe.h"

#include <uv.h>

#include <deque>
#include <memory>
#include <mutex>
#include <utility>

#include "probe_worker.h"
#include "readings_to_js.h"

namespace gpu_layers {

class NativeProbe;

namespace {

// The uv handle results arrive on, with what its close callback needs after the probe is gone.
struct AsyncHandle {
  uv_async_t handle;  // first member: uv hands back a uv_async_t* / uv_handle_t* to this struct
  NativeProbe* probe = nullptr;
  napi_async_cleanup_hook_handle cleanup_hook = nullptr;  // set while teardown waits for the close
};

// Shared by the JavaScript object and the worker's completion callback.
struct Mailbox {
  std::mutex mutex;
  bool alive = true;
  AsyncHandle* async = nullptr;
  std::deque<std::unique_ptr<ProbeJob>> done;
};

uv_handle_t* AsUvHandle(AsyncHandle* async) { return reinterpret_cast<uv_handle_t*>(&async->handle); }

}  // namespace

class NativeProbe : public Napi::ObjectWrap<NativeProbe> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NativeProbe(const Napi::CallbackInfo& info);
  ~NativeProbe() override;

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Post(Napi::Env env, std::unique_ptr<ProbeJob> job);
  static void OnAsync(uv_async_t* handle);
  static void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg);
  void Deliver();
  void Detach();

  std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>();
  std::shared_ptr<ProbeWorker> worker_;
  std::deque<Napi::Promise::Deferred> pending_;  // one per posted job, in posting order
  Napi::AsyncContext async_context_;
  bool busy_ = false;     // an open or sample is in flight
  bool closing_ = false;  // close() was called
  bool detached_ = false;
  bool abandoned_ = false;  // unref() while jobs were pending: nothing refs the handle until they return
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
};

Napi::Function NativeProbe::Define(Napi::Env env) {
  return DefineClass(env, "NativeProbe",
                     {InstanceMethod<&NativeProbe::Open>("open"), InstanceMethod<&NativeProbe::Sample>("sample"),
                      InstanceMethod<&NativeProbe::Close>("close"), InstanceMethod<&NativeProbe::Unref>("unref")});
}

NativeProbe::NativeProbe(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NativeProbe>(info), async_context_(info.Env(), "gpu-layers:probe") {
  Napi::Env env = info.Env();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "gpu-layers: no event loop for this environment");
  }
  mailbox_->async = new AsyncHandle;
  mailbox_->async->probe = this;
  uv_async_init(loop, &mailbox_->async->handle, &NativeProbe::OnAsync);
  // Idle probes must not keep the process alive; Post() refs the handle while a job runs.
  uv_unref(AsUvHandle(mailbox_->async));

  std::shared_ptr<Mailbox> mailbox = mailbox_;
  worker_ = ProbeWorker::Start([mailbox](std::unique_ptr<ProbeJob> job) {
    std::lock_guard<std::mutex> lock(mailbox->mutex);
    if (!mailbox->alive) return;  // nobody is listening any more: drop the result
    mailbox->done.push_back(std::move(job));
    uv_async_send(&mailbox->async->handle);
  });
  // An async cleanup hook: at environment teardown (worker_threads) Node waits for the handle's
  // close callback before it closes the loop.
  napi_add_async_cleanup_hook(env, &NativeProbe::OnEnvCleanup, this, &cleanup_hook_);
}

NativeProbe::~NativeProbe() { Detach(); }

Napi::Value NativeProbe::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "open(config): config must be an object");
  Napi::Object config = info[0].As<Napi::Object>();
  auto job = std::make_unique<ProbeJob>();
  job->kind = ProbeJob::Kind::kOpen;
  Napi::Value nvml = config.Get("nvmlLibrary");
  Napi::Value cuda = config.Get("cudaLibrary");
  if (!nvml.IsString()) throw Napi::TypeError::New(env, "open(config): nvmlLibrary must be a string");
  job->config.nvml_library = nvml.As<Napi::String>();
  if (cuda.IsString()) job->config.cuda_library = cuda.As<Napi::String>();
  return Post(env, std::move(job));
}

Napi::Value NativeProbe::Sample(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<ProbeJob>();
  job->kind = ProbeJob::Kind::kSample;
  return Post(info.Env(), std::move(job));
}

Napi::Value NativeProbe::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_ || detached_) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  closing_ = true;
  auto job = std::make_unique<ProbeJob>();
  job->kind = ProbeJob::Kind::kClose;
  return Post(env, std::move(job));
}

// The caller gave up waiting (deadline): let the process exit even if the call never returns.
Napi::Value NativeProbe::Unref(const Napi::CallbackInfo& info) {
  if (!detached_) {
    uv_unref(AsUvHandle(mailbox_->async));
    if (!pending_.empty()) abandoned_ = true;
  }
  return info.Env().Undefined();
}

Napi::Value NativeProbe::Post(Napi::Env env, std::unique_ptr<ProbeJob> job) {
  auto deferred = Napi::Promise::Deferred::New(env);
  const bool is_close = job->kind == ProbeJob::Kind::kClose;
  if (detached_ || (closing_ && !is_close)) {
    Napi::Error error = Napi::Error::New(env, "the probe is closed");
    error.Set("code", "PROBE_CLOSED");
    deferred.Reject(error.Value());
    return deferred.Promise();
  }
  if (busy_ && !is_close) {
    Napi::Error error = Napi::Error::New(env, "a native call of this probe is still in flight");
    error.Set("code", "PROBE_BUSY");
    deferred.Reject(error.Value());
    return deferred.Promise();
  }
  if (!is_close) busy_ = true;
  pending_.push_back(deferred);
  if (!abandoned_) uv_ref(AsUvHandle(mailbox_->async));
  worker_->Post(std::move(job));
  return deferred.Promise();
}

void NativeProbe::OnAsync(uv_async_t* handle) { reinterpret_cast<AsyncHandle*>(handle)->probe->Deliver(); }

void NativeProbe::Deliver() {
  std::deque<std::unique_ptr<ProbeJob>> done;
  {
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    done.swap(mailbox_->done);
  }
  Napi::Env env = Env();
  bool closed = false;
  for (auto& job : done) {
    if (pending_.empty()) break;
    Napi::HandleScope scope(env);
    // A callback scope, so promise reactions run right after this uv callback.
    Napi::CallbackScope callback_scope(env, async_context_);
    Napi::Promise::Deferred deferred = pending_.front();
    pending_.pop_front();
    if (!job->failure.empty()) {
      Napi::Error error = Napi::Error::New(env, "native probe failure: " + job->failure);
      error.Set("code", "NATIVE_FAILURE");
      deferred.Reject(error.Value());
    } else if (job->kind == ProbeJob::Kind::kOpen) {
      deferred.Resolve(OpenReadingToJs(env, job->open));
    } else if (job->kind == ProbeJob::Kind::kSample) {
      deferred.Resolve(SampleReadingToJs(env, job->sample));
    } else {
      deferred.Resolve(env.Undefined());
      closed = true;
    }
    if (job->kind != ProbeJob::Kind::kClose) busy_ = false;
  }
  if (pending_.empty()) {
    abandoned_ = false;
    if (!detached_) uv_unref(AsUvHandle(mailbox_->async));
  }
  if (closed) Detach();
}

void NativeProbe::OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  NativeProbe* probe = static_cast<NativeProbe*>(arg);
  probe->cleanup_hook_ = nullptr;
  // The hook stays registered until the close callback removes it, so Node keeps the loop open.
  probe->mailbox_->async->cleanup_hook = hook;
  probe->Detach();
}

// Stops listening: the worker's later results are dropped, the handle is closed, and (unless
// close() already did) NVML is shut down by a final job on the worker. Never waits for the
// worker: it may be stuck in the driver.
void NativeProbe::Detach() {
  if (detached_) return;
  detached_ = true;
  {
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    mailbox_->alive = false;
    mailbox_->done.clear();
  }
  if (cleanup_hook_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_hook_);
    cleanup_hook_ = nullptr;
  }
  mailbox_->async->probe = nullptr;
  uv_close(AsUvHandle(mailbox_->async), [](uv_handle_t* handle) {
    AsyncHandle* async = reinterpret_cast<AsyncHandle*>(handle);
    if (async->cleanup_hook != nullptr) napi_remove_async_cleanup_hook(async->cleanup_hook);
    delete async;
  });
  if (!closing_) {
    closing_ = true;
    auto job = std::make_unique<ProbeJob>();
    job->kind = ProbeJob::Kind::kClose;
    worker_->Post(std::move(job));
  }
  pending_.clear();
}

Napi::Function DefineNativeProbe(Napi::Env env) { return NativeProbe::Define(env); }

}  // namespace gpu_layers
