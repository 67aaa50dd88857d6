#include "hse/model/vlm.h"

#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hse/cli/cli.h"
#include "hse/config/json.h"
#include "hse/config/files.h"

namespace fs = std::filesystem;

namespace hse::model {

namespace {

std::string last_component(std::string p) {
  while (p.size() > 1 && (p.back() == '/' || p.back() == '\\')) p.pop_back();
  fs::path fp(p);
  if (p.size() > 12 && (p.rfind(".safetensors") == p.size() - 12 || p.rfind(".json") == p.size() - 5))
    fp = fp.parent_path();
  const std::string name = fp.filename().string();
  return name.empty() ? p : name;
}

}  // namespace

// ------------------------------------------------------------------ layout, labels, loss
std::vector<std::int64_t> vlm_prompt_ids(const VlmTokens& t, std::int64_t n_img,
                                         const std::vector<std::int64_t>& question_ids) {
  if (t.im_patch < 0) cli::fail_usage("vlm: the <im_patch> token id is not resolved");
  std::vector<std::int64_t> ids;
  ids.reserve(static_cast<std::size_t>(1 + n_img) + question_ids.size());
  ids.push_back(t.bos);
  ids.insert(ids.end(), static_cast<std::size_t>(n_img), t.im_patch);
  ids.insert(ids.end(), question_ids.begin(), question_ids.end());
  return ids;
}

VlmExample vlm_train_example(const VlmTokens& t, std::int64_t n_img, const std::vector<std::int64_t>& question_ids,
                             const std::vector<std::int64_t>& answer_ids, std::int64_t max_length) {
  if (max_length < 1) cli::fail_usage("vlm: max_length must be >= 1");
  const auto prompt = vlm_prompt_ids(t, n_img, question_ids);
  std::vector<std::int64_t> full = prompt;
  full.insert(full.end(), answer_ids.begin(), answer_ids.end());
  const std::size_t L = static_cast<std::size_t>(max_length);
  if (full.size() > L) full.resize(L);  // truncation=True (right)
  VlmExample e;
  e.valid_len = static_cast<std::int64_t>(full.size());
  e.input_ids = full;
  e.input_ids.resize(L, t.pad);  // padding="max_length" (right)
  e.attention_mask.assign(L, 0);
  std::fill(e.attention_mask.begin(), e.attention_mask.begin() + e.valid_len, 1);
  const std::size_t vl = static_cast<std::size_t>(e.valid_len);
  if (vl < L) e.input_ids[vl] = t.eos;
  const std::size_t qlen = std::min(prompt.size(), L);
  e.labels = e.input_ids;
  std::fill(e.labels.begin(), e.labels.begin() + static_cast<std::ptrdiff_t>(qlen), -100);
  for (auto& x : e.labels)
    if (x == t.pad) x = -100;
  if (t.pad == t.eos && vl < L) e.labels[vl] = t.eos;
  return e;
}

VlmBatch vlm_collate(const std::vector<VlmExample>& ex) {
  if (ex.empty()) cli::fail_usage("vlm: empty batch");
  const std::size_t L = ex[0].input_ids.size();
  std::vector<std::int64_t> ids, mask, labels;
  for (const auto& e : ex) {
    if (e.input_ids.size() != L || e.labels.size() != L || e.attention_mask.size() != L)
      cli::fail_usage("vlm: examples of different lengths in one batch ({} vs {})", e.input_ids.size(), L);
    ids.insert(ids.end(), e.input_ids.begin(), e.input_ids.end());
    mask.insert(mask.end(), e.attention_mask.begin(), e.attention_mask.end());
    labels.insert(labels.end(), e.labels.begin(), e.labels.end());
  }
  const std::int64_t B = static_cast<std::int64_t>(ex.size()), T = static_cast<std::int64_t>(L);
  auto mk = [&](std::vector<std::int64_t>& v) { return torch::tensor(v, torch::kLong).view({B, T}); };
  return {mk(ids), mk(mask), mk(labels)};
}

torch::Tensor assemble_inputs_embeds(const torch::Tensor& text, const torch::Tensor& image) {
  TORCH_CHECK(text.dim() == 3 && image.dim() == 3 && text.size(0) == image.size(0) && text.size(2) == image.size(2),
              "assemble_inputs_embeds: text [B,T,H] and image [B,n,H]");
  const std::int64_t n = image.size(1);
  if (text.size(1) < 1 + n)
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("vlm: the sequence has {} tokens, fewer than BOS + {} image tokens", text.size(1), n));
  const auto dt = torch::promote_types(text.scalar_type(), image.scalar_type());
  return torch::cat({text.narrow(1, 0, 1).to(dt), image.to(text.device(), dt), text.narrow(1, 1 + n, text.size(1) - 1 - n).to(dt)},
                    1);
}

torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  TORCH_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
                  logits.size(1) == labels.size(1),
              "causal_lm_loss: logits [B,T,V], labels [B,T]");
  // transformers' ForCausalLMLoss: pad labels with -100 on the right, shift left by one.
  const auto lg = logits.to(torch::kFloat32);
  const auto lb = labels.to(logits.device(), torch::kLong);
  const auto shifted = torch::cat({lb.narrow(1, 1, lb.size(1) - 1), torch::full({lb.size(0), 1}, -100, lb.options())}, 1);
  return torch::nn::functional::cross_entropy(
      lg.reshape({-1, lg.size(-1)}), shifted.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kMean));
}

void resize_token_embeddings(Phi3ForCausalLMImpl& m, std::int64_t n, std::int64_t k) {
  torch::NoGradGuard ng;
  auto resize = [&](torch::Tensor& w) {
    const std::int64_t V = w.size(0);
    if (n <= 0 || k < 0 || k >= n) cli::fail_usage("vlm: bad vocabulary resize to {} with {} new tokens", n, k);
    torch::Tensor nw;
    if (n == V)
      nw = w.detach();
    else if (n < V)
      nw = w.detach().narrow(0, 0, n).clone();
    else
      nw = torch::cat({w.detach(), torch::zeros({n - V, w.size(1)}, w.options())}, 0);
    // Rows V..n-1 (growth) and the last k rows: the mean of the rows before them.
    const std::int64_t first = std::min(V, n - k);
    if (first < n) {
      const auto mean = nw.narrow(0, 0, first).to(torch::kFloat32).mean(0, true).to(nw.scalar_type());
      nw.narrow(0, first, n - first).copy_(mean.expand({n - first, nw.size(1)}));
    }
    if (n != V) w.set_data(nw);
  };
  resize(m.model->embed_tokens->weight);
  if (!m.lm_head.is_empty()) {
    if (m.lm_head->quantized()) cli::fail(cli::Exit::runtime, {}, "vlm: cannot resize an int8 lm_head");
    resize(m.lm_head->weight);
    m.lm_head->out_features = n;
  }
  m.config.vocab_size = n;
  m.model->config.vocab_size = n;
}

torch::Tensor drop_cls(const torch::Tensor& x, std::int64_t grid_tokens) {
  if (x.dim() == 3 && x.size(1) == grid_tokens + 1) return x.narrow(1, 1, grid_tokens);
  return x;
}

// ------------------------------------------------------------------ model
HsenetVlmImpl::HsenetVlmImpl(const VlmConfig& c, Phi3ForCausalLM model) : config(c) {
  c.validate();
  const std::int64_t H = model->config.hidden_size;
  if (c.packer.out_dim != H)
    throw cli::Error(cli::Exit::incompatible, model->name_or_path,
                     fmt::format("vlm: the packers give {}-wide tokens, the LLM is {} wide", c.packer.out_dim, H));
  if (c.vocab_size > 0 || c.num_new_tokens > 0)
    resize_token_embeddings(*model, c.vocab_size > 0 ? c.vocab_size : model->config.vocab_size, c.num_new_tokens);
  const torch::Device dev = model->device();
  mm_projector = register_module("mm_projector", SpatialPacker(c.packer));
  mm_projector->to(dev);
  if (c.dual_encoder) {
    mm_projector2 = register_module("mm_projector2", SpatialPacker(c.packer2));
    mm_projector2->to(dev);
  }
  llm = register_module("llm", model);
  if (c.use_lora) {
    if (c.lora.base_model_name_or_path.empty()) config.lora.base_model_name_or_path = model->name_or_path;
    apply_lora(*llm, c.lora);
  }
  const auto t = tokens();
  const std::int64_t V = llm->config.vocab_size;
  for (auto [name, v] : {std::pair<const char*, std::int64_t>{"bos", t.bos}, {"eos", t.eos}, {"pad", t.pad},
                         {"im_patch", t.im_patch}})
    if (v < 0 || v >= V)
      throw cli::Error(cli::Exit::incompatible, model->name_or_path,
                       fmt::format("vlm: token id {} = {} is outside the LLM's vocabulary of {}", name, v, V));
}

VlmTokens HsenetVlmImpl::tokens() const {
  VlmTokens t = config.tokens;
  if (t.im_patch < 0) t.im_patch = llm->config.vocab_size - std::max<std::int64_t>(config.num_new_tokens, 1);
  return t;
}

torch::Tensor HsenetVlmImpl::image_embeds(const torch::Tensor& t1, const torch::Tensor& t2) {
  if (!config.dual_encoder) {
    const auto& t = config.tower == "2e3" ? t2 : t1;
    if (!t.defined())
      throw cli::Error(cli::Exit::incompatible, {},
                       fmt::format("vlm: the single-encoder model reads the {} tower's tokens", config.tower));
    return mm_projector->forward(drop_cls(t, config.packer.num_patches()));
  }
  auto a = mm_projector->forward(drop_cls(t1, config.packer.num_patches()));
  if (!t2.defined())
    throw cli::Error(cli::Exit::incompatible, {}, "vlm: the dual-encoder model needs the 2E3 tokens too");
  auto b = mm_projector2->forward(drop_cls(t2, config.packer2.num_patches()));
  if (a.size(0) != b.size(0))
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("vlm: {} stage-1 and {} 2E3 feature rows", a.size(0), b.size(0)));
  return torch::cat({a, b}, 1);
}

torch::Tensor HsenetVlmImpl::inputs_embeds(const torch::Tensor& input_ids, const torch::Tensor& t1,
                                           const torch::Tensor& t2) {
  auto img = image_embeds(t1, t2);
  if (img.size(0) != input_ids.size(0))
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("vlm: {} token rows but {} images", input_ids.size(0), img.size(0)));
  return assemble_inputs_embeds(llm->embed(input_ids), img);
}

torch::Tensor HsenetVlmImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                     const torch::Tensor& t1, const torch::Tensor& t2) {
  auto emb = inputs_embeds(input_ids, t1, t2);
  const auto pos =
      torch::arange(emb.size(1), torch::TensorOptions().dtype(torch::kLong).device(llm->device())).unsqueeze(0);
  return llm->forward_embeds(emb, attention_mask.defined() ? attention_mask.to(llm->device()) : attention_mask, pos);
}

torch::Tensor HsenetVlmImpl::loss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  const torch::Tensor& labels, const torch::Tensor& t1, const torch::Tensor& t2) {
  return causal_lm_loss(forward(input_ids, attention_mask, t1, t2), labels);
}

std::vector<torch::Tensor> HsenetVlmImpl::trainable_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : named_trainable_parameters()) out.push_back(p.second);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> HsenetVlmImpl::named_trainable_parameters() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : mm_projector->named_parameters(true))
    out.emplace_back(fmt::format("{}mm_projector.{}", kVlmPrefix, p.key()), p.value());
  if (mm_projector2)
    for (auto& p : mm_projector2->named_parameters(true))
      out.emplace_back(fmt::format("{}mm_projector2.{}", kVlmPrefix, p.key()), p.value());
  for (auto& [name, l] : lora_layers(*llm)) {
    out.emplace_back(fmt::format("{}{}.lora_A.default.weight", kPeftPrefix, name), l->lora_A->weight);
    out.emplace_back(fmt::format("{}{}.lora_B.default.weight", kPeftPrefix, name), l->lora_B->weight);
  }
  return out;
}

// ------------------------------------------------------------------ files
void add_vlm_state(io::SafeTensorsWriter& w, HsenetVlmImpl& vlm, LoraKeyForm form) {
  add_state(w, *vlm.mm_projector, fmt::format("{}mm_projector.", kVlmPrefix));
  if (vlm.mm_projector2) add_state(w, *vlm.mm_projector2, fmt::format("{}mm_projector2.", kVlmPrefix));
  add_lora_state(w, *vlm.llm, form);
}

LoadReport load_vlm_state(HsenetVlmImpl& vlm, const io::SafeTensorsSet& ckpt, bool allow_partial) {
  LoadReport r;
  std::set<std::string> consumed;
  auto packer = [&](SpatialPackerImpl& p, const std::string& prefix) {
    const auto pr = load_state(p, ckpt, prefix, /*allow_partial=*/true);
    r.loaded += pr.loaded;
    r.missing.insert(r.missing.end(), pr.missing.begin(), pr.missing.end());
    r.mis_shaped.insert(r.mis_shaped.end(), pr.mis_shaped.begin(), pr.mis_shaped.end());
    for (const auto& p2 : p.named_parameters(true)) consumed.insert(prefix + p2.key());
  };
  packer(*vlm.mm_projector, fmt::format("{}mm_projector.", kVlmPrefix));
  if (vlm.mm_projector2) packer(*vlm.mm_projector2, fmt::format("{}mm_projector2.", kVlmPrefix));
  if (has_lora(*vlm.llm)) {
    const auto lr = load_lora_state(*vlm.llm, ckpt, /*allow_partial=*/true, kPeftPrefix, &consumed);
    r.loaded += lr.loaded;
    r.missing.insert(r.missing.end(), lr.missing.begin(), lr.missing.end());
    r.mis_shaped.insert(r.mis_shaped.end(), lr.mis_shaped.begin(), lr.mis_shaped.end());
  }
  for (const auto& key : ckpt.names())
    if (!consumed.count(key)) r.unexpected.push_back(key);
  if (!allow_partial && !r.clean())
    throw cli::Error(cli::Exit::incompatible, ckpt.path(), fmt::format("VLM weights do not match the model: {}", r.summary()),
                     "a checkpoint of another configuration (packer sizes, LoRA r/targets, single vs dual "
                     "encoder) or another base model? --allow-partial loads what matches");
  return r;
}

void save_vlm_adapter(HsenetVlmImpl& vlm, const std::string& dir) {
  if (has_lora(*vlm.llm) && lora_merged(*vlm.llm))
    cli::fail(cli::Exit::runtime, dir, "the LoRA is merged into the LLM; unmerge before saving the adapter");
  fs::create_directories(dir);
  io::SafeTensorsWriter w;
  add_vlm_state(w, vlm);
  w.set_metadata("format", "pt");
  w.write((fs::path(dir) / kVlmWeightsFile).string());
  VlmConfig c = vlm.config;
  if (c.llm.empty()) c.llm = vlm.llm->name_or_path;
  write_text_atomic(fs::path(dir) / kVlmConfigFile, c.to_json().dump(2) + "\n");
}

HsenetVlm load_vlm(const std::string& path, const VlmLoadOptions& o) {
  VlmConfig cfg;
  std::string weights, cfg_source;
  if (fs::is_directory(path)) {
    cfg_source = (fs::path(path) / kVlmConfigFile).string();
    if (!fs::exists(cfg_source)) {
      if (fs::exists(fs::path(path) / "pytorch_model.bin"))
        throw cli::Error(cli::Exit::incompatible, (fs::path(path) / "pytorch_model.bin").string(),
                         "HSENet's published torch pickle; hse reads safetensors",
                         "python3 scripts/convert_hsenet_vlm.py pytorch_model.bin hsenet_vlm.safetensors");
      cli::fail_input(path, "not an hse VLM adapter directory (no {})", kVlmConfigFile);
    }
    cfg = VlmConfig::from_file(cfg_source);
    weights = (fs::path(path) / kVlmWeightsFile).string();
  } else {
    if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".bin") == 0)
      throw cli::Error(cli::Exit::incompatible, path, "a torch pickle; hse reads safetensors",
                       "python3 scripts/convert_hsenet_vlm.py " + path + " hsenet_vlm.safetensors");
    if (!fs::exists(path)) cli::fail_input(path, "no such file");
    cfg = o.config ? *o.config : VlmConfig();
    cfg_source = path;
    weights = path;
  }
  std::string llm_dir = !o.llm.empty() ? o.llm : cfg.llm;
  // A relative LLM path in an adapter directory is relative to that directory (so that the
  // adapter can move with its LLM); older adapters recorded it relative to the working directory.
  if (o.llm.empty() && !llm_dir.empty() && fs::path(llm_dir).is_relative() && fs::is_directory(path) &&
      fs::exists(fs::path(path) / llm_dir))
    llm_dir = (fs::path(path) / llm_dir).lexically_normal().string();
  if (llm_dir.empty())
    throw cli::Error(cli::Exit::usage, cfg_source, "no LLM directory (the config has none and none was given)");
  if (o.check_base_name && cfg.use_lora && !cfg.lora.base_model_name_or_path.empty() &&
      last_component(cfg.lora.base_model_name_or_path) != last_component(llm_dir))
    throw cli::Error(cli::Exit::incompatible, cfg_source,
                     fmt::format("the adapter was trained on base model '{}', but the LLM is '{}'",
                                 cfg.lora.base_model_name_or_path, llm_dir),
                     "pass the matching LLM directory");
  cfg.llm = llm_dir;
  Phi3LoadOptions lo;
  lo.dtype = o.dtype;
  lo.device = o.device;
  auto llm = load_phi3(llm_dir, lo);
  HsenetVlm vlm(cfg, llm);
  io::SafeTensorsSet ckpt(weights);
  load_vlm_state(*vlm, ckpt, o.allow_partial);
  if (o.merge_lora && cfg.use_lora) merge_lora(*vlm->llm);
  if (o.int8) vlm->llm->quantize_int8();
  vlm->eval();
  return vlm;
}

}  // namespace hse::model
