// Sub-checks that need data or packages a machine may lack: skipped with a message on a developer
// machine, a failure under CI=true or HSE_REQUIRE_ALL=1 (see tests/require_all.sh).
#pragma once

#include <cstdlib>
#include <string>

namespace hse_test {

inline bool require_all() {
  const char* ci = std::getenv("CI");
  const char* all = std::getenv("HSE_REQUIRE_ALL");
  return (ci && std::string(ci) == "true") || (all && std::string(all) == "1");
}

}  // namespace hse_test

// Skips the rest of the test case (a message), or fails it under CI / HSE_REQUIRE_ALL=1.
#define HSE_SKIP_OR_FAIL(what)                                                          \
  do {                                                                                  \
    if (hse_test::require_all()) {                                                      \
      FAIL("required under CI=true / HSE_REQUIRE_ALL=1 but missing: " << what);        \
    }                                                                                   \
    MESSAGE("skip: " << what);                                                          \
    return;                                                                             \
  } while (0)
