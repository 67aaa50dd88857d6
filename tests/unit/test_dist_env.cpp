#include <doctest/doctest.h>

#include <map>

#include "hse/cli/cli.h"
#include "hse/train/dist_env.h"

using namespace hse;

namespace {
train::DistEnv from(const std::map<std::string, std::string>& env) {
  return train::dist_env_from([&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}
}  // namespace

TEST_CASE("Slurm node lists: first host") {
  CHECK(train::slurm_first_host("node01") == "node01");
  CHECK(train::slurm_first_host("node[01-04,07]") == "node01");
  CHECK(train::slurm_first_host("node[07,01-04],gpu[1-2]") == "node07");
  CHECK(train::slurm_first_host("a1,b2") == "a1");
  CHECK(train::slurm_first_host("rack[1-2]-n[3-4]") == "rack1-n3");
  CHECK_THROWS_AS(train::slurm_first_host("node[01-04"), cli::Error);
}

TEST_CASE("torchrun, Slurm and single-process environments") {
  auto s = from({});
  CHECK(s.source == "single");
  CHECK(s.world_size == 1);
  auto t = from({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "h0"}, {"MASTER_PORT", "1234"}});
  CHECK(t.source == "torchrun");
  CHECK(t.rank == 3);
  CHECK(t.local_rank == 1);
  CHECK(t.master_addr == "h0");
  CHECK(t.master_port == 1234);
  auto sl = from({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"}, {"SLURM_NODELIST", "gpu[003-006]"}});
  CHECK(sl.source == "slurm");
  CHECK(sl.rank == 5);
  CHECK(sl.world_size == 16);
  CHECK(sl.master_addr == "gpu003");
  CHECK(sl.master_port == 29500);
  // torchrun's variables win when both are present (torchrun launched inside an allocation).
  auto both = from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "7"}, {"SLURM_NTASKS", "9"}});
  CHECK(both.source == "torchrun");
  CHECK(both.world_size == 2);
  CHECK_THROWS_AS(from({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), cli::Error);
  CHECK_THROWS_AS(from({{"RANK", "x"}, {"WORLD_SIZE", "2"}}), cli::Error);
  CHECK_THROWS_AS(from({{"MASTER_PORT", "70000"}}), cli::Error);
}
