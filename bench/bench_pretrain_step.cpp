// bench_pretrain_step: times hse's stage-1 CLIP training step (forward of both towers, symmetric
// InfoNCE, backward, global-norm gradient clipping, AdamW), the step hse-pretrain runs
// (lib/hse/app/pretrain_torch.cpp, through train/loop) without its data loading, distributed calls or logging.
// bench/bench_pretrain_step.py drives it against the same step in PyTorch-Python.
//
//   bench_pretrain_step --model CLIP_DIR --data batch.safetensors [--warmup 1] [--steps 3] [--threads 2]
//                       [--gradient-checkpointing]
//
// --data holds volumes F32 [B,1,D,H,W], input_ids I64 [B,L], attention_mask I64 [B,L]; the same
// batch is used for every step. With --lockstep each step waits for a line on stdin, so that a
// driver can alternate it with another process step by step. Prints one line per step (warm-up steps marked) and the peak RSS:
//   step <i> warmup <0|1> loss <l> grad_norm <g> forward_s <f> backward_s <b> optimizer_s <o> total_s <t> cpu_s <c>
// (cpu_s: the process's CPU time over the step, all threads)
//   peak_rss_kib <kib> loaded_rss_kib <kib>
#include <sys/resource.h>
#include <time.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "hse/io/safetensors.h"
#include "hse/model/clip.h"
#include "hse/model/losses.h"
#include "hse/train/optim.h"

namespace {

torch::Tensor load(const hse::io::SafeTensors& st, const std::string& name, hse::io::Dtype want, torch::Dtype dt) {
  const auto& info = st.info(name);
  if (info.dtype != want) throw std::runtime_error(name + ": unexpected dtype");
  auto t = torch::empty(info.shape, dt);
  if (static_cast<std::size_t>(t.nbytes()) != info.nbytes()) throw std::runtime_error(name + ": size mismatch");
  std::memcpy(t.data_ptr(), info.bytes, info.nbytes());
  return t;
}

long rss_kib(int who) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_maxrss;
}

double cpu_seconds() {  // this process's CPU time, all threads (user + system)
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"time hse's stage-1 CLIP training step"};
  std::string model_dir, data;
  int warmup = 1, steps = 3, threads = 2;
  double lr = 1e-4, wd = 0.1, max_norm = 1.0;
  bool lockstep = false, checkpointing = false;
  app.add_option("--model", model_dir, "CLIP checkpoint directory (config.json + model.safetensors)")->required();
  app.add_option("--data", data, "safetensors: volumes, input_ids, attention_mask")->required();
  app.add_option("--warmup", warmup, "untimed steps first")->default_val(1);
  app.add_option("--steps", steps, "timed steps")->default_val(3);
  app.add_option("--threads", threads, "intra-op threads (at::set_num_threads)")->default_val(2);
  app.add_option("--lr", lr, "AdamW learning rate (constant)")->default_val(1e-4);
  app.add_option("--weight-decay", wd, "AdamW weight decay")->default_val(0.1);
  app.add_option("--max-grad-norm", max_norm, "gradient clipping (global L2 norm)")->default_val(1.0);
  app.add_flag("--lockstep", lockstep, "wait for a line on stdin before each step (stop at end of input)");
  app.add_flag("--gradient-checkpointing", checkpointing, "recompute ViT blocks and BERT layers in backward");
  CLI11_PARSE(app, argc, argv);

  at::set_num_threads(threads);
  hse::model::Clip m = hse::model::load_clip(model_dir);
  m->train();
  m->vision_encoder->gradient_checkpointing = checkpointing;
  m->language_encoder->gradient_checkpointing = checkpointing;
  const hse::io::SafeTensors st(data);
  const auto vols = load(st, "volumes", hse::io::Dtype::F32, torch::kFloat32);
  const auto ids = load(st, "input_ids", hse::io::Dtype::I64, torch::kInt64);
  const auto mask = load(st, "attention_mask", hse::io::Dtype::I64, torch::kInt64);

  std::vector<std::string> nd;
  const auto trainable = m->trainable();
  for (const auto& [name, p] : trainable)
    if (hse::train::no_weight_decay(name)) nd.push_back(name);
  hse::train::AdamW opt(trainable, hse::train::AdamWOptions{lr, 0.9, 0.999, 1e-8, wd}, nd);
  const std::vector<torch::Tensor> params = opt.tensors();
  std::printf("threads %d batch %lld text_len %lld params %zu (no decay %zu)\n", at::get_num_threads(),
              static_cast<long long>(vols.size(0)), static_cast<long long>(ids.size(1)), params.size(), nd.size());
  const long loaded = rss_kib(RUSAGE_SELF);

  for (int s = 0; s < warmup + steps; ++s) {
    std::string go;
    if (lockstep && !std::getline(std::cin, go)) break;
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    opt.zero_grad();
    const auto img = m->encode_image(vols);
    const auto txt = m->encode_text(ids, mask);
    const auto loss = hse::model::clip_loss(hse::model::clip_logits(img, txt, m->logit_scale, m->config.logit_scale_form));
    const double l = loss.item<double>();
    const double f = since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    loss.backward();
    const double b = since(t1);
    const auto t2 = std::chrono::steady_clock::now();
    const double gn = hse::train::clip_grad_norm(params, max_norm);
    opt.step(lr);
    const double o = since(t2);
    const double total = since(t0), cpu = cpu_seconds() - c0;
    std::printf("step %d warmup %d loss %.8f grad_norm %.6g forward_s %.4f backward_s %.4f optimizer_s %.4f total_s %.4f "
                "cpu_s %.4f\n",
                s, s < warmup ? 1 : 0, l, gn, f, b, o, total, cpu);
    std::fflush(stdout);
  }
  std::printf("peak_rss_kib %ld loaded_rss_kib %ld\n", rss_kib(RUSAGE_SELF), loaded);
  return 0;
}
