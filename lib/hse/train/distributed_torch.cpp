#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>

#include <CLI/CLI.hpp>

#include "hse/cli/cli.h"
#include "hse/train/distributed.h"

namespace hse::train {

void add_dist_backend_option(CLI::App& app, std::string& backend) {
  app.add_option("--dist-backend", backend,
                 "c10d backend for multi-process runs: auto (nccl on CUDA, gloo on CPU), gloo or nccl")
      ->default_val("auto")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
}

std::string resolve_backend(const std::string& option, bool gpu) {
  const std::string b = option == "auto" ? (gpu ? "nccl" : "gloo") : option;
  if (b == "nccl" && !gpu) cli::fail_usage("--dist-backend nccl needs --device cuda");
  return b;
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;
};

std::shared_ptr<Distributed> Distributed::init(const DistEnv& env, const std::string& backend, int timeout_s) {
  std::shared_ptr<Distributed> d(new Distributed());
  d->rank_ = env.rank;
  d->world_ = env.world_size;
  d->impl_ = std::make_unique<Impl>();
  if (env.world_size == 1) return d;
  if (backend != "gloo" && backend != "nccl") cli::fail_usage("--dist-backend: '{}' is not supported (gloo, nccl)", backend);
#ifndef USE_C10D_NCCL
  if (backend == "nccl")
    throw cli::Error(cli::Exit::resource, {}, "--dist-backend nccl: this LibTorch was built without NCCL");
#endif
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.timeout = std::chrono::seconds(timeout_s);
    so.useLibUV = false;
    d->impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
#ifdef USE_C10D_NCCL
    if (backend == "nccl") {
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s) * 1000);
      d->impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(d->impl_->store, env.rank, env.world_size, nopts);
      return d;
    }
#endif
    auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(timeout_s));
    // Each rank binds its own interface: GLOO_SOCKET_IFNAME as PyTorch reads it, loopback for a
    // single-host run, else the address this host's name resolves to.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
    opts->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                            : loopback        ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                              : c10d::ProcessGroupGloo::createDefaultDevice());
    d->impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(d->impl_->store, env.rank, env.world_size, opts);
  } catch (const std::exception& e) {
    std::string m = e.what();
    m = m.substr(0, m.find('\n'));
    throw cli::Error(cli::Exit::resource, {},
                     fmt::format("rendezvous with {}:{} failed (rank {} of {}): {}", env.master_addr, env.master_port,
                                 env.rank, env.world_size, m));
  }
  return d;
}

Distributed::~Distributed() = default;

void Distributed::all_reduce_sum(torch::Tensor& t) {
  if (world_ == 1) return;
  std::vector<at::Tensor> v{t};
  impl_->pg->allreduce(v)->wait();
}

namespace {
struct AllGatherFn : public torch::autograd::Function<AllGatherFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, std::int64_t self) {
    auto* d = reinterpret_cast<Distributed*>(self);
    ctx->saved_data["self"] = self;
    ctx->saved_data["n"] = x.size(0);
    return d->all_gather(x.detach());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* d = reinterpret_cast<Distributed*>(ctx->saved_data["self"].toInt());
    const std::int64_t n = ctx->saved_data["n"].toInt();
    auto g = grads[0].contiguous().clone();
    d->all_reduce_sum(g);
    return {g.narrow(0, d->rank() * n, n), torch::Tensor()};
  }
};
}  // namespace

torch::Tensor Distributed::all_gather(const torch::Tensor& x) {
  if (world_ == 1) return x;
  if (x.requires_grad() && torch::GradMode::is_enabled())
    return AllGatherFn::apply(x, reinterpret_cast<std::int64_t>(this));
  auto xc = x.contiguous();
  std::vector<at::Tensor> outs;
  for (int r = 0; r < world_; ++r) outs.push_back(torch::empty_like(xc));
  std::vector<std::vector<at::Tensor>> out{outs};
  std::vector<at::Tensor> in{xc};
  impl_->pg->allgather(out, in)->wait();
  return torch::cat(out[0], 0);
}

void Distributed::average_gradients(const std::vector<torch::Tensor>& params) {
  if (world_ == 1) return;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  auto flat = torch::cat([&] {
    std::vector<torch::Tensor> v;
    for (auto& g : grads) v.push_back(g.reshape({-1}));
    return v;
  }());
  all_reduce_sum(flat);
  flat.div_(world_);
  std::int64_t off = 0;
  torch::NoGradGuard ng;
  for (auto& g : grads) {
    const auto n = g.numel();
    g.copy_(flat.narrow(0, off, n).view_as(g));
    off += n;
  }
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (world_ == 1) return;
  torch::NoGradGuard ng;
  for (const auto& t : tensors) {
    std::vector<at::Tensor> v{t.detach()};
    impl_->pg->broadcast(v)->wait();
  }
}

void Distributed::barrier() {
  if (world_ == 1) return;
  impl_->pg->barrier()->wait();
}

}  // namespace hse::train
