// The data workers' queue (train/prefetch.h): results in job order whatever the worker count,
// at most `depth` results ahead of the consumer, errors rethrown at their job, and no deadlock
// when the consumer stops early or a worker throws. `make test-tsan` runs this file under
// ThreadSanitizer.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "hse/train/prefetch.h"

using hse::train::Prefetcher;

namespace {
// Jobs 0..n-1 in order; produce squares them after a delay that varies by job, so that workers
// finish out of order.
struct Counter {
  int n, next = 0;
  bool operator()(int& job) {
    if (next >= n) return false;
    job = next++;
    return true;
  }
};
long slow_square(int j) {
  std::this_thread::sleep_for(std::chrono::microseconds((j * 37) % 5 * 200));
  return static_cast<long>(j) * j;
}
}  // namespace

TEST_CASE("results come in job order for 0, 1, 2 and 4 workers") {
  for (int workers : {0, 1, 2, 4}) {
    CAPTURE(workers);
    Prefetcher<int, long> p(Counter{50}, slow_square, workers, 3);
    std::vector<long> got;
    while (auto v = p.next()) got.push_back(*v);
    REQUIRE(got.size() == 50);
    for (int j = 0; j < 50; ++j) CHECK(got[static_cast<std::size_t>(j)] == static_cast<long>(j) * j);
    CHECK_FALSE(p.next().has_value());  // stays exhausted
  }
}

TEST_CASE("no more than depth results wait ahead of the consumer") {
  std::atomic<int> produced{0};
  const int depth = 3;
  Prefetcher<int, int> p(Counter{40}, [&](const int& j) { ++produced; return j; }, 4, depth);
  int consumed = 0;
  while (auto v = p.next()) {
    ++consumed;
    // Give the workers time to run ahead as far as they may.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(produced.load() <= consumed + depth);
  }
  CHECK(consumed == 40);
}

TEST_CASE("a worker's exception is rethrown by the next() that reaches its job, in order") {
  for (int workers : {0, 1, 3}) {
    CAPTURE(workers);
    Prefetcher<int, int> p(
        Counter{20},
        [](const int& j) {
          if (j == 7) throw std::runtime_error("bad item 7");
          return j;
        },
        workers, 4);
    for (int j = 0; j < 7; ++j) CHECK(*p.next() == j);
    CHECK_THROWS_WITH(p.next(), "bad item 7");
    // The destructor joins the workers (no deadlock) when the consumer gives up here.
  }
}

TEST_CASE("stopping early joins the workers without draining the jobs") {
  std::atomic<int> produced{0};
  {
    Prefetcher<int, int> p(Counter{1000000}, [&](const int& j) { ++produced; return j; }, 4, 8);
    CHECK(*p.next() == 0);
    CHECK(*p.next() == 1);
  }
  CHECK(produced.load() <= 2 + 8 + 4);  // what was consumed, queued, and in flight
}

TEST_CASE("an empty job list ends at once") {
  for (int workers : {0, 2}) {
    Prefetcher<int, int> p(Counter{0}, [](const int& j) { return j; }, workers, 2);
    CHECK_FALSE(p.next().has_value());
  }
}
