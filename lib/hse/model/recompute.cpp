#include "hse/model/recompute.h"

#include <memory>

namespace hse::model {

namespace {

using Fn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;

struct RngState {
  torch::Tensor cpu, cuda;
  int cuda_device = -1;
  static RngState capture(const torch::Tensor& x) {
    RngState s;
    s.cpu = at::detail::getDefaultCPUGenerator().get_state();
    if (x.is_cuda()) {
      s.cuda_device = x.get_device();
      s.cuda = at::globalContext().defaultGenerator(x.device()).get_state();
    }
    return s;
  }
  void restore() const {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    g.set_state(cpu);
    if (cuda_device >= 0) {
      at::Generator gc = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, cuda_device));
      gc.set_state(cuda);
    }
  }
};

// The closure and the RNG state at forward time. A one-byte tensor whose storage owns the
// holder is saved on the autograd node, so the holder is freed with the graph (also when
// backward never runs).
struct Holder {
  Fn fn;
  RngState rng;
  bool has_extra = false;  // an undefined `extra` travels as an empty tensor (apply needs defined ones)
  torch::Tensor call(const torch::Tensor& x, const torch::Tensor& extra) const {
    return fn(x, has_extra ? extra : torch::Tensor());
  }
};

struct RecomputeFn : public torch::autograd::Function<RecomputeFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& extra, const torch::Tensor& holder_tensor) {
    ctx->save_for_backward({x, extra, holder_tensor});
    torch::NoGradGuard ng;
    return static_cast<Holder*>(holder_tensor.storage().data_ptr().get_context())->call(x, extra);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto& holder_tensor = saved[2];
    Holder* h = static_cast<Holder*>(holder_tensor.storage().data_ptr().get_context());
    auto x = saved[0].detach().requires_grad_(true);
    const RngState now = RngState::capture(x);
    h->rng.restore();
    torch::Tensor y;
    {
      torch::AutoGradMode on(true);
      y = h->call(x, saved[1]);
    }
    now.restore();
    torch::autograd::backward({y}, {grad[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor recompute(const Fn& fn, const torch::Tensor& x, const torch::Tensor& extra) {
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return fn(x, extra);
  auto* h = new Holder{fn, RngState::capture(x), extra.defined()};
  at::DataPtr ptr(h, h, [](void* p) { delete static_cast<Holder*>(p); }, torch::Device(torch::kCPU));
  auto storage = c10::Storage(c10::Storage::use_byte_size_t(), 1, std::move(ptr), /*allocator=*/nullptr,
                              /*resizable=*/false);
  auto holder_tensor = torch::empty({0}, torch::kUInt8).set_(storage, 0, {1}, {1});
  return RecomputeFn::apply(x, extra.defined() ? extra : torch::empty({0}, x.options()), holder_tensor);
}

}  // namespace hse::model
