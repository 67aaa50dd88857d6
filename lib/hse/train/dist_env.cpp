#include "hse/train/dist_env.h"

#include <cstdlib>

#include "hse/cli/cli.h"

namespace hse::train {
namespace {
int to_int(const std::string& name, const std::string& v, int lo) {
  try {
    std::size_t p = 0;
    const int x = std::stoi(v, &p);
    if (p == v.size() && x >= lo) return x;
  } catch (const std::exception&) {
  }
  cli::fail_usage("environment variable {}='{}' is not an integer >= {}", name, v, lo);
}
}  // namespace

std::string slurm_first_host(const std::string& nodelist) {
  // First top-level item (commas inside brackets do not separate hosts).
  std::string item;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    item += c;
  }
  // Replace each bracket group by its first element.
  std::string host;
  for (std::size_t i = 0; i < item.size(); ++i) {
    if (item[i] != '[') {
      host += item[i];
      continue;
    }
    const std::size_t close = item.find(']', i);
    if (close == std::string::npos) cli::fail_usage("SLURM_NODELIST '{}' has an unclosed '['", nodelist);
    const std::string group = item.substr(i + 1, close - i - 1);
    host += group.substr(0, group.find_first_of(",-"));
    i = close;
  }
  if (host.empty()) cli::fail_usage("SLURM_NODELIST '{}' names no host", nodelist);
  return host;
}

DistEnv dist_env_from(const std::function<std::optional<std::string>(const std::string&)>& get) {
  DistEnv e;
  if (auto r = get("RANK"), w = get("WORLD_SIZE"); r && w) {
    e.source = "torchrun";
    e.rank = to_int("RANK", *r, 0);
    e.world_size = to_int("WORLD_SIZE", *w, 1);
    if (auto l = get("LOCAL_RANK")) e.local_rank = to_int("LOCAL_RANK", *l, 0);
  } else if (auto p = get("SLURM_PROCID"), n = get("SLURM_NTASKS"); p && n) {
    e.source = "slurm";
    e.rank = to_int("SLURM_PROCID", *p, 0);
    e.world_size = to_int("SLURM_NTASKS", *n, 1);
    if (auto l = get("SLURM_LOCALID")) e.local_rank = to_int("SLURM_LOCALID", *l, 0);
    if (auto nl = get("SLURM_NODELIST")) e.master_addr = slurm_first_host(*nl);
  }
  if (auto a = get("MASTER_ADDR"); a && !a->empty()) e.master_addr = *a;
  if (auto port = get("MASTER_PORT")) e.master_port = to_int("MASTER_PORT", *port, 1);
  if (e.master_port > 65535) cli::fail_usage("MASTER_PORT {} is not a port number", e.master_port);
  if (e.rank >= e.world_size) cli::fail_usage("rank {} is not below the world size {}", e.rank, e.world_size);
  return e;
}

DistEnv dist_env() {
  return dist_env_from([](const std::string& k) -> std::optional<std::string> {
    const char* v = std::getenv(k.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace hse::train
