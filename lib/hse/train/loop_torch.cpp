#include "hse/train/loop.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"

#include "hse/io/atomic.h"
#include "hse/model/device.h"
#include "hse/train/autocast.h"
#include "hse/train/dist_env.h"
#include "hse/train/distributed.h"
#include "hse/train/optim.h"
#include "hse/train/prefetch.h"
#include "hse/train/run_state.h"
#include "hse/train/trainer_state.h"

namespace fs = std::filesystem;

namespace hse::train {

namespace {
// default_val for a tool default, none for one the tool resolves per task (< 0).
template <typename T>
CLI::Option* with_default(CLI::Option* opt, T value) {
  if (value >= 0) opt->default_val(value);
  return opt;
}
}  // namespace

void add_loop_options(CLI::App& app, LoopOptions& o, const LoopHelp& d) {
  with_default(app.add_option("--epochs", o.epochs, d.epochs), o.epochs);
  app.add_option("--max-steps", o.max_steps, "stop after this many optimiser steps (overrides --epochs)");
  with_default(cli::flags::batch_size(app, o.batch_size, d.batch_size), o.batch_size);
  app.add_option("--grad-accum", o.grad_accum, "gradient accumulation steps")->default_val(1);
  with_default(app.add_option("--lr", o.lr, d.lr), o.lr);
  with_default(app.add_option("--weight-decay", o.weight_decay, d.weight_decay), o.weight_decay);
  app.add_option("--warmup-ratio", o.warmup_ratio, "linear warm-up share of the steps, then cosine")->default_val(0.03);
  app.add_option("--max-grad-norm", o.max_grad_norm, "gradient clipping (global L2 norm)")->default_val(1.0);
  app.add_flag("--no-augment", o.no_augment, d.no_augment);
  with_default(app.add_option("--save-steps", o.save_steps, "checkpoint every N steps (and at the end)"), o.save_steps);
  app.add_option("--save-total-limit", o.save_total_limit, "checkpoints kept")->default_val(1);
  app.add_option("--log-steps", o.log_steps, "a status line every N steps")->default_val(10);
  app.add_option("--metrics", o.metrics, "append step metrics here (TSV: " + d.metrics_columns + ")");
  app.add_flag("--resume", o.resume, "continue from the newest checkpoint-N in the output directory");
  cli::flags::data_workers(app, o.data_workers,
                          "threads that read, augment and tokenize the next micro-batches while the current step "
                          "computes");
  add_dist_backend_option(app, o.dist_backend);
  add_recipe_options(app, o.recipe);
}

void check_loop_options(const LoopOptions& o) {
  if (o.batch_size < 1 || o.grad_accum < 1) cli::fail_usage("--batch-size and --grad-accum must be positive");
  check_recipe_options(o.recipe);
}

Session start_session(const cli::Common& common, const LoopOptions& o) {
  torch::set_num_threads(cli::resolve_threads(common.threads));
  // Data parallel over processes (torchrun/Slurm variables), one GPU each with --device cuda.
  const auto env = dist_env();
  Session s;
  s.device = model::torch_device(common.device, env.world_size > 1 ? env.local_rank : -1);
  s.dist = Distributed::init(env, resolve_backend(o.dist_backend, s.device.is_cuda()));
  install_stop_handler();
  io::check_output_dir(common.output);
  torch::manual_seed(common.seed);
  return s;
}

std::string prepare_output(const std::string& out, bool resume, Distributed& dist) {
  if (resume) {
    if (dist.is_main()) remove_interrupted_writes(out);
    dist.barrier();
    const std::string ck = latest_checkpoint(out);
    if (ck.empty()) cli::warn("--resume: no checkpoint in {}; starting from scratch", out);
    return ck;
  }
  if (dist.is_main() && !latest_checkpoint(out).empty())
    throw cli::Error(cli::Exit::usage, out, "holds checkpoints from an earlier run",
                     "--resume continues it; choose another -o to start afresh");
  return {};
}

LoopResult run_loop(const LoopOptions& o, LoopTask& task, Distributed& dist, const torch::Device& dev,
                    const std::string& out, const std::string& resume_from, std::uint64_t seed,
                    cli::ProgressMode progress_mode) {
  const std::size_t world = static_cast<std::size_t>(dist.world());
  const EpochLayout layout{task.items, static_cast<std::size_t>(o.batch_size), dist.world(), o.grad_accum,
                           o.recipe.keep_last()};
  if (layout.micro_batches() < 1)
    cli::fail_input(task.data_file, "{} training {} are fewer than one global batch ({} x {} process{}; "
                    "--last-batch keep trains on a smaller one)", task.items, task.items_noun, o.batch_size, world,
                    world == 1 ? "" : "es");
  const long steps_per_epoch = layout.steps();
  const bool bf16 = o.recipe.use_bf16(dev.is_cuda());
  const long total_steps = o.max_steps > 0 ? o.max_steps : steps_per_epoch * o.epochs;
  const long warmup = warmup_steps_for(total_steps, o.warmup_ratio);
  AdamW opt(task.trainable, AdamWOptions{o.lr, 0.9, 0.999, 1e-8, o.weight_decay}, task.no_decay);
  const std::vector<torch::Tensor> params = opt.tensors();

  long step = 0;
  if (!resume_from.empty()) {
    task.restore(resume_from);
    step = load_trainer_state(opt, resume_from);
    cli::info("resumed from {} at step {}", resume_from, step);
  }
  dist.broadcast(params);  // every process starts from the main process's weights

  std::vector<std::string> columns{"step", "epoch", "loss"};
  for (const auto* group : {&task.loss_parts, &task.schedule_columns}) columns.insert(columns.end(), group->begin(), group->end());
  columns.insert(columns.end(), {"lr", "grad_norm"});
  columns.insert(columns.end(), task.state_columns.begin(), task.state_columns.end());
  columns.insert(columns.end(), {"step_s", "samples_per_s", "data_wait_s"});
  MetricsTsv metrics(dist.is_main() ? o.metrics : std::string(), columns, o.resume, o.resume ? step : -1);
  auto save = [&](bool final) {
    if (!dist.is_main()) return;
    const std::string dir = (fs::path(out) / fmt::format("checkpoint-{}", step)).string();
    write_checkpoint_dir(dir, [&](const std::string& tmp) {
      task.write(tmp, dir, true);
      save_trainer_state(opt, tmp);
    });
    prune_checkpoints(out, o.save_total_limit);
    if (final) task.write(out, out, false);
    cli::info("saved {}{}", dir, final ? fmt::format(" and {}", out) : std::string());
  };

  cli::info("{}: {} {}, {} process{} x batch {}, {} steps ({} per epoch), warm-up {}{}", task.banner, task.items,
            task.items_noun, world, world == 1 ? "" : "es", o.batch_size, total_steps, steps_per_epoch, warmup,
            task.banner_details);
  if (task.started) task.started();
  cli::Progress progress(task.name, static_cast<std::size_t>(total_steps),
                         dist.is_main() ? progress_mode : cli::ProgressMode::never);
  progress.tick(static_cast<std::size_t>(step));
  const std::size_t n_parts = task.loss_parts.size();
  // The micro-batches from `step` on, in order, loaded ahead by the data workers.
  struct Job {
    long step = 0, epoch = 0;
    std::vector<std::size_t> items;
  };
  struct Loaded {
    std::any batch;
    std::size_t items = 0;
  };
  struct Cursor {
    long step, micro = 0, order_epoch = -1;
    std::vector<std::size_t> order;
  } cursor{step};
  auto next_job = [&](Job& job) {
    if (cursor.step >= total_steps) return false;
    const long epoch = cursor.step / steps_per_epoch;
    if (epoch != cursor.order_epoch) {
      cursor.order = epoch_order(task.items, seed, epoch);
      cursor.order_epoch = epoch;
    }
    const auto [gb0, n_micro] = layout.step_micro_batches(cursor.step % steps_per_epoch);
    job.step = cursor.step;
    job.epoch = epoch;
    job.items.clear();
    for (std::size_t p : layout.positions(gb0 + cursor.micro, dist.rank())) job.items.push_back(cursor.order[p]);
    if (++cursor.micro == n_micro) {
      cursor.micro = 0;
      ++cursor.step;
    }
    return true;
  };
  const int workers = data_workers(o.data_workers);
  Prefetcher<Job, Loaded> data(
      next_job, [&](const Job& j) { return Loaded{task.load(j.items, j.step, j.epoch), j.items.size()}; }, workers,
      2 * std::max(1, workers));
  while (step < total_steps) {
    const long epoch = step / steps_per_epoch;
    const long in_epoch = step % steps_per_epoch;
    if (task.begin_step) task.begin_step(step);
    // The loss and its parts, summed over the micro-batches.
    std::vector<double> sums(1 + n_parts, 0.0), parts;
    const auto t_step = std::chrono::steady_clock::now();
    double data_wait = 0;
    opt.zero_grad();
    const long n_micro = layout.step_micro_batches(in_epoch).second;
    std::size_t step_items = 0;
    for (long a = 0; a < n_micro; ++a) {
      const auto t_wait = std::chrono::steady_clock::now();
      auto loaded = data.next();
      data_wait += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_wait).count();
      step_items += loaded->items * world;
      parts.assign(n_parts, 0.0);
      torch::Tensor loss;
      {
        AutocastGuard amp(dev, bf16);
        loss = task.forward(loaded->batch, step, epoch, parts);
      }
      (loss / static_cast<double>(n_micro)).backward();
      sums[0] += loss.item<double>();
      for (std::size_t k = 0; k < n_parts; ++k) sums[1 + k] += parts[k];
    }
    dist.average_gradients(params);
    const double gn = clip_grad_norm(params, o.max_grad_norm);
    const double lr = o.lr * cosine_with_warmup(step, total_steps, warmup);
    opt.step(lr);
    ++step;
    progress.tick();
    // The means over micro-batches and processes, for the log.
    for (double& s : sums) s = s / static_cast<double>(n_micro) / static_cast<double>(world);
    auto reduced = torch::tensor(sums, torch::kFloat64);
    dist.all_reduce_sum(reduced);
    const std::vector<double> means(reduced.data_ptr<double>(), reduced.data_ptr<double>() + reduced.numel());
    const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_step).count();
    std::string line = fmt::format("{}\t{}", step, epoch);
    for (double m : means) line += fmt::format("\t{:.6f}", m);
    if (task.schedule_values)
      for (double v : task.schedule_values()) line += fmt::format("\t{:.4f}", v);
    line += fmt::format("\t{:.3e}\t{:.4f}", lr, gn);
    if (task.state_values)
      for (double v : task.state_values()) line += fmt::format("\t{:.4f}", v);
    line += fmt::format("\t{:.4f}\t{:.2f}\t{:.4f}", step_s, static_cast<double>(step_items) / step_s, data_wait);
    metrics.line(line);
    const double loss = means[0];
    if (o.log_steps > 0 && step % o.log_steps == 0 && dist.is_main())
      cli::info("step {}/{} epoch {} loss {:.4f} lr {:.2e}", step, total_steps, epoch, loss, lr);
    if (task.after_step) task.after_step(step);
    if (end_of_step(step, total_steps, o.save_steps, save, [&] { dist.barrier(); })) return {step, true};
  }
  progress.finish();
  save(true);
  if (task.finished) task.finished();
  dist.barrier();
  return {step, false};
}

}  // namespace hse::train
