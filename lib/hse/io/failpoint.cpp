#include "hse/io/failpoint.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

namespace hse::io {
namespace {
struct Points {
  std::map<std::string, long> at;    // name -> the hit that kills
  std::map<std::string, long> hits;  // name -> hits so far
  std::mutex mu;
};

Points* parse() {
  const char* env = std::getenv("HSE_FAILPOINT");
  if (!env || !*env) return nullptr;
  auto* p = new Points;  // lives as long as the process
  std::string spec(env);
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    const std::size_t end = std::min(spec.find(',', pos), spec.size());
    const std::string item = spec.substr(pos, end - pos);
    const std::size_t colon = item.rfind(':');
    char* stop = nullptr;
    const long n = colon == std::string::npos ? 1 : std::strtol(item.c_str() + colon + 1, &stop, 10);
    if (item.empty() || n < 1 || (stop && *stop)) {
      std::fprintf(stderr, "hse: error: HSE_FAILPOINT: '%s' is not NAME or NAME:N (N >= 1)\n", item.c_str());
      std::_Exit(2);
    }
    p->at[item.substr(0, colon)] = n;
    pos = end + 1;
  }
  return p;
}

Points* points() {
  static Points* p = parse();
  return p;
}
}  // namespace

void failpoint(const char* name) {
  Points* p = points();
  if (!p) return;
  std::lock_guard<std::mutex> lk(p->mu);
  const auto it = p->at.find(name);
  if (it == p->at.end()) return;
  const long hit = ++p->hits[name];
  if (hit != it->second) return;
  std::fprintf(stderr, "hse: fail point %s (hit %ld): SIGKILL\n", name, hit);
  std::fflush(stderr);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace hse::io
