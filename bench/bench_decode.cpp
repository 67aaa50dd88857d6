// bench_decode: times greedy decoding with hse::decode::generate (lib/hse/decode/decode.h) on a
// Phi-3 checkpoint (load_phi3: an HF directory written by save_pretrained). bench/bench_decode.py
// drives it against transformers' generate on the same weights and prompts.
//
//   bench_decode --model DIR --prompts prompts.json [--new-tokens 64] [--dtype fp32|bf16|fp16]
//                [--device cpu|cuda] [--threads N] [--warmup 1] [--runs 3] [--lockstep]
//                [--tokens-out tokens.json]
//
// prompts.json: a JSON list of token id lists (the batch; left-padded by generate when lengths
// differ). Decoding never stops early (no stop ids), so every sequence gets --new-tokens tokens.
//
// Output: one JSON object per line.
//   {"event":"loaded", "load_s", "params", "weight_bytes", "dtype", "device", "threads", "batch", ...}
//   {"event":"run", "run", "warmup", "prefill_s", "decode_s", "decode_steps", "decode_tok_s",
//    "decode_seq_tok_s", "total_s", "total_tok_s"}
//   {"event":"summary", "runs", "prefill_s_median", "decode_tok_s_median", "total_s_median"}
// prefill_s: from the call to generate until the first new token is known (prompt forward + argmax);
// decode_s: from there until the last token is known (new_tokens - 1 one-token steps through the
// KV cache); decode_tok_s = batch * decode_steps / decode_s (tokens of all sequences per second);
// decode_seq_tok_s = decode_steps / decode_s (per sequence). The step callback copies each step's
// tokens to the host, so CUDA timings include the synchronisation.
//
// With --lockstep, no runs are made up front: each line read from stdin ("run") makes one timed run
// and prints its line, so a driver can alternate it with another implementation; EOF or "quit"
// ends. --tokens-out writes the tokens of the last run (JSON list of lists).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "hse/decode/decode.h"
#include "hse/model/phi3.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct RunResult {
  double prefill_s = 0, decode_s = 0, total_s = 0;
  std::int64_t steps = 0;
  std::vector<std::vector<std::int64_t>> tokens;
};

RunResult run_once(hse::model::Phi3ForCausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts,
                   const hse::decode::GenerateOptions& opt, bool cuda) {
  RunResult r;
  if (cuda) torch::cuda::synchronize();
  Clock::time_point first{}, last{};
  std::int64_t nsteps = 0;
  const auto t0 = Clock::now();
  r.tokens = hse::decode::generate(model, prompts, opt, [&](const hse::decode::GenerateStep& s) {
    const auto now = Clock::now();
    if (s.step == 0) first = now;
    last = now;
    ++nsteps;
    return true;
  });
  if (cuda) torch::cuda::synchronize();
  const auto t1 = Clock::now();
  r.prefill_s = seconds(t0, first);
  r.decode_s = seconds(first, last);
  r.total_s = seconds(t0, t1);
  r.steps = nsteps - 1;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"time greedy decoding with hse::decode::generate"};
  std::string model_dir, prompts_path, dtype_name = "fp32", device_name = "cpu", tokens_out;
  int threads = 0, warmup = 1, runs = 3;
  std::int64_t new_tokens = 64;
  bool lockstep = false;
  app.add_option("--model", model_dir, "HF Phi-3 directory (config.json + model.safetensors)")->required();
  app.add_option("--prompts", prompts_path, "JSON list of token id lists (the batch)")->required();
  app.add_option("--new-tokens", new_tokens, "tokens generated per sequence");
  app.add_option("--dtype", dtype_name, "fp32, bf16 or fp16")->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--device", device_name, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--threads", threads, "intra-op threads (torch::set_num_threads); 0: LibTorch's default");
  app.add_option("--warmup", warmup, "untimed runs first (not with --lockstep)");
  app.add_option("--runs", runs, "timed runs (not with --lockstep)");
  app.add_flag("--lockstep", lockstep, "one run per stdin line");
  app.add_option("--tokens-out", tokens_out, "write the last run's tokens here (JSON)");
  CLI11_PARSE(app, argc, argv);

  try {
    if (threads > 0) torch::set_num_threads(threads);
    const bool cuda = device_name == "cuda";
    if (cuda && !torch::cuda::is_available()) throw std::runtime_error("--device cuda: no CUDA device");
    nlohmann::json pj;
    {
      std::ifstream in(prompts_path);
      if (!in) throw std::runtime_error("cannot read " + prompts_path);
      in >> pj;
    }
    const auto prompts = pj.get<std::vector<std::vector<std::int64_t>>>();
    if (prompts.empty()) throw std::runtime_error("no prompts");

    hse::model::Phi3LoadOptions lo;
    lo.dtype = dtype_name == "bf16" ? torch::kBFloat16 : dtype_name == "fp16" ? torch::kFloat16 : torch::kFloat32;
    lo.device = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    torch::NoGradGuard no_grad;
    const auto tl0 = Clock::now();
    auto model = hse::model::load_phi3(model_dir, lo);
    if (cuda) torch::cuda::synchronize();
    const double load_s = seconds(tl0, Clock::now());
    std::int64_t params = 0, bytes = 0;
    for (const auto& p : model->parameters()) {
      params += p.numel();
      bytes += static_cast<std::int64_t>(p.nbytes());
    }

    hse::decode::GenerateOptions opt;
    opt.max_new_tokens = new_tokens;
    opt.eos_token_ids = std::vector<std::int64_t>{};  // never stop early

    std::int64_t maxlen = 0;
    for (const auto& p : prompts) maxlen = std::max<std::int64_t>(maxlen, static_cast<std::int64_t>(p.size()));
    const auto batch = static_cast<std::int64_t>(prompts.size());
    std::cout << nlohmann::json{{"event", "loaded"}, {"load_s", load_s}, {"params", params}, {"weight_bytes", bytes},
                                {"dtype", dtype_name}, {"device", device_name},
                                {"threads", torch::get_num_threads()}, {"batch", batch}, {"prompt_len", maxlen},
                                {"new_tokens", new_tokens}}
                     .dump()
              << std::endl;

    std::vector<double> pre, dec, tot;
    RunResult lastr;
    auto report = [&](int i, bool is_warmup, const RunResult& r) {
      const double tok_s = r.decode_s > 0 ? static_cast<double>(batch * r.steps) / r.decode_s : 0.0;
      std::cout << nlohmann::json{{"event", "run"}, {"run", i}, {"warmup", is_warmup}, {"prefill_s", r.prefill_s},
                                  {"decode_s", r.decode_s}, {"decode_steps", r.steps}, {"decode_tok_s", tok_s},
                                  {"decode_seq_tok_s", r.decode_s > 0 ? r.steps / r.decode_s : 0.0},
                                  {"total_s", r.total_s},
                                  {"total_tok_s", static_cast<double>(batch * new_tokens) / r.total_s}}
                       .dump()
                << std::endl;
      if (!is_warmup) {
        pre.push_back(r.prefill_s);
        dec.push_back(tok_s);
        tot.push_back(r.total_s);
      }
    };
    if (lockstep) {
      std::string line;
      int i = 0;
      while (std::getline(std::cin, line)) {
        if (line == "quit") break;
        lastr = run_once(model, prompts, opt, cuda);
        report(i++, false, lastr);
      }
    } else {
      for (int i = 0; i < warmup + runs; ++i) {
        lastr = run_once(model, prompts, opt, cuda);
        report(i, i < warmup, lastr);
      }
    }
    if (!tokens_out.empty()) {
      std::ofstream out(tokens_out);
      out << nlohmann::json(lastr.tokens).dump() << "\n";
    }
    std::cout << nlohmann::json{{"event", "summary"}, {"runs", dec.size()}, {"prefill_s_median", median(pre)},
                                {"decode_tok_s_median", median(dec)}, {"total_s_median", median(tot)}}
                     .dump()
              << std::endl;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
