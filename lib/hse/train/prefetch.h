// Prefetch: the data side of training run ahead of the step on worker threads (HF Trainer's
// DataLoader workers). Jobs are handed out in order by `next_job` (called under a lock, so it may
// keep a cursor), `produce(job)` runs on a worker, and next() returns the results in job order, so
// what the consumer sees does not depend on the number of workers as long as produce is a pure
// function of its job. At most `depth` results wait ahead of the consumer (bounded memory). An
// exception thrown by produce is rethrown by the next() that reaches its job; the destructor stops
// the workers after their current job and joins them (no deadlock on errors or SIGTERM).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace hse::train {

// The number of data workers for a --data-workers value: itself when given (>= 0), otherwise half
// the cores, 1 to 4.
inline int data_workers(int requested) {
  if (requested >= 0) return requested;
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 2, 1, 4);
}

// Jobs for a Prefetcher over n items in spans of `step`: the start of each span, in order.
struct Spans {
  std::size_t n, step, next = 0;
  bool operator()(std::size_t& first) {
    if (next >= n) return false;
    first = next;
    next += step;
    return true;
  }
};

template <typename Job, typename T>
class Prefetcher {
 public:
  // workers 0: produce runs inside next(), on the caller's thread.
  Prefetcher(std::function<bool(Job&)> next_job, std::function<T(const Job&)> produce, int workers, int depth)
      : next_job_(std::move(next_job)), produce_(std::move(produce)), depth_(depth < 1 ? 1 : depth) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next result in job order; nullopt when next_job has no more jobs.
  std::optional<T> next() {
    if (threads_.empty()) {
      Job job;
      if (!next_job_(job)) return std::nullopt;
      return produce_(job);
    }
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return done_.count(consumed_) || (exhausted_ && issued_ == consumed_); });
    auto it = done_.find(consumed_);
    if (it == done_.end()) return std::nullopt;
    Result r = std::move(it->second);
    done_.erase(it);
    ++consumed_;
    l.unlock();
    cv_.notify_all();
    if (r.error) std::rethrow_exception(r.error);
    return std::move(r.value);
  }

 private:
  struct Result {
    std::optional<T> value;
    std::exception_ptr error;
  };
  void work() {
    for (;;) {
      Job job;
      long seq;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || (!exhausted_ && issued_ < consumed_ + depth_); });
        if (stop_) return;
        if (!next_job_(job)) {
          exhausted_ = true;
          cv_.notify_all();
          return;
        }
        seq = issued_++;
      }
      Result r;
      try {
        r.value.emplace(produce_(job));
      } catch (...) {
        r.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        done_.emplace(seq, std::move(r));
      }
      cv_.notify_all();
    }
  }

  std::function<bool(Job&)> next_job_;
  std::function<T(const Job&)> produce_;
  const long depth_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<long, Result> done_;
  long issued_ = 0, consumed_ = 0;
  bool exhausted_ = false, stop_ = false;
};

}  // namespace hse::train
