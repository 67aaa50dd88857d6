// Ordered parallel map: items are processed by a pool of workers while the
// calling thread consumes results strictly in input order (HDF5 writes stay on
// one thread and outputs keep the input order). At most 2*workers results are
// held at once, which bounds memory on large volumes.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace hse::cli {

// work(i, inner_threads) -> R runs on a worker; sink(i, R&&) or fail(i, exception_ptr)
// runs on the calling thread in index order. An exception thrown by sink or
// fail stops the pool and is rethrown.
template <typename R>
void ordered_map(std::size_t n, int workers, int inner_threads, const std::function<R(std::size_t, int)>& work,
                 const std::function<void(std::size_t, R&&)>& sink,
                 const std::function<void(std::size_t, std::exception_ptr)>& fail) {
  if (n == 0) return;
  if (workers < 1) workers = 1;
  if (static_cast<std::size_t>(workers) > n) workers = static_cast<int>(n);
  struct Slot {
    std::optional<R> value;
    std::exception_ptr error;
  };
  std::mutex m;
  std::condition_variable cv;
  std::map<std::size_t, Slot> done;
  std::size_t next_claim = 0, next_consume = 0;
  bool stop = false;
  const std::size_t window = static_cast<std::size_t>(2 * workers);
  auto worker = [&] {
    for (;;) {
      std::size_t i;
      {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return stop || next_claim >= n || next_claim < next_consume + window; });
        if (stop || next_claim >= n) return;
        i = next_claim++;
      }
      Slot s;
      try {
        s.value.emplace(work(i, inner_threads));
      } catch (...) {
        s.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lk(m);
        done.emplace(i, std::move(s));
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) pool.emplace_back(worker);
  std::exception_ptr fatal;
  while (next_consume < n) {
    Slot s;
    {
      std::unique_lock<std::mutex> lk(m);
      cv.wait(lk, [&] { return done.count(next_consume) > 0; });
      s = std::move(done[next_consume]);
      done.erase(next_consume);
    }
    try {
      if (s.error) fail(next_consume, s.error);
      else sink(next_consume, std::move(*s.value));
    } catch (...) {
      fatal = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(m);
      ++next_consume;
      if (fatal) stop = true;
    }
    cv.notify_all();
    if (fatal) break;
  }
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);
}

}  // namespace hse::cli
