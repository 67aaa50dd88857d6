// Rendezvous settings for multi-process training, from torchrun's variables
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or Slurm's
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, first host of SLURM_NODELIST).
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace hse::train {

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single";  // "torchrun", "slurm" or "single"
};

// Reads the environment through `get` (std::getenv by default). torchrun's
// variables win over Slurm's; MASTER_ADDR/MASTER_PORT also apply under Slurm.
// Throws cli::Error (usage, exit 2) on malformed or inconsistent values.
DistEnv dist_env_from(const std::function<std::optional<std::string>(const std::string&)>& get);
DistEnv dist_env();

// The first host of a Slurm node list: "node[01-04,07],gpu1" -> "node01",
// "rack[1-2]-n[3-4]" -> "rack1-n3".
std::string slurm_first_host(const std::string& nodelist);

}  // namespace hse::train
