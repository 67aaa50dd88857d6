#include "hse/decode/decode.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "hse/cli/cli.h"

namespace hse::decode {

using namespace model;

namespace {

// The prompt of a batch, left-padded: ids (token prompts) or embeddings, its mask and positions.
struct Prompt {
  torch::Tensor ids;     // [N,L] int64, or undefined (embedding prompts)
  torch::Tensor embeds;  // [N,L,H]
  torch::Tensor mask;    // [N,L] int64 0/1
  torch::Tensor pos;     // [N,L] int64
  torch::Tensor seen;    // [N,L] ids for the repetition penalty (V at padding), or [N,0]
};

class Runner {
 public:
  Runner(Phi3ForCausalLMImpl& m, Prompt p) : m_(m), p_(std::move(p)) {}

  std::int64_t rows() const { return p_.mask.size(0); }
  std::int64_t prompt_len() const { return p_.mask.size(1); }

  void expand(std::int64_t k) {
    if (k == 1) return;
    for (auto* t : {&p_.ids, &p_.embeds, &p_.mask, &p_.pos, &p_.seen})
      if (t->defined()) *t = t->repeat_interleave(k, 0);
  }

  // Float32 logits [N,V] of the prompt's last position.
  torch::Tensor prefill() {
    cache_.clear();
    return last_logits(p_.embeds, p_.mask, p_.pos);
  }

  // generated [N,g], g >= 1: the tokens so far, the last one not yet run.
  torch::Tensor step(const torch::Tensor& generated) {
    const std::int64_t g = generated.size(1), N = rows();
    const auto opt = p_.mask.options();
    const auto mask = torch::cat({p_.mask, torch::ones({N, g}, opt)}, 1);
    const auto pos = torch::cat({p_.pos, p_.pos.narrow(1, prompt_len() - 1, 1) + torch::arange(1, g + 1, opt)}, 1);
    const std::int64_t orig = m_.config.original_max_position_embeddings;
    if (prompt_len() + g >= orig + 1 && cache_.length() <= orig) {
      // Phi3ForCausalLM.prepare_inputs_for_generation: re-run everything once past the original length.
      cache_.clear();
      return last_logits(torch::cat({p_.embeds, m_.embed(generated)}, 1), mask, pos);
    }
    return last_logits(m_.embed(generated.narrow(1, g - 1, 1)), mask, pos.narrow(1, prompt_len() + g - 1, 1));
  }

  void reorder(const torch::Tensor& index) { cache_.reorder(index); }

  // The ids the repetition penalty looks at: prompt (padding as V) + generated.
  torch::Tensor seen(const torch::Tensor& generated) const { return torch::cat({p_.seen, generated}, 1); }

 private:
  torch::Tensor last_logits(const torch::Tensor& embeds, const torch::Tensor& mask, const torch::Tensor& pos) {
    auto logits = m_.forward_embeds(embeds, mask, pos, &cache_, 1);
    return logits.select(1, logits.size(1) - 1).to(torch::kFloat32);
  }

  Phi3ForCausalLMImpl& m_;
  Prompt p_;
  KVCache cache_;
};

struct Setup {
  std::vector<std::int64_t> eos;
  std::int64_t pad = 0;
  torch::Tensor eos_t;  // [n_eos] int64 on the device
};

Setup setup(const Phi3ForCausalLMImpl& m, const GenerateOptions& o) {
  if (o.max_new_tokens < 0) cli::fail_usage("max_new_tokens must be >= 0, got {}", o.max_new_tokens);
  if (o.num_beams < 1) cli::fail_usage("num_beams must be >= 1, got {}", o.num_beams);
  if (o.do_sample && !(o.temperature > 0)) cli::fail_usage("temperature must be > 0, got {}", o.temperature);
  if (!(o.top_p > 0 && o.top_p <= 1)) cli::fail_usage("top_p must be in (0, 1], got {}", o.top_p);
  if (o.top_k < 0) cli::fail_usage("top_k must be >= 0, got {}", o.top_k);
  if (!(o.repetition_penalty > 0))
    cli::fail_usage("repetition_penalty must be > 0, got {}", o.repetition_penalty);
  Setup s;
  s.eos = o.eos_token_ids ? *o.eos_token_ids : m.config.eos_token_ids;
  s.pad = o.pad_token_id >= 0             ? o.pad_token_id
          : m.config.pad_token_id >= 0    ? m.config.pad_token_id
          : !s.eos.empty()                ? s.eos[0]
                                          : 0;
  s.eos_t = torch::tensor(s.eos.empty() ? std::vector<std::int64_t>{} : s.eos, torch::kLong).to(m.device());
  return s;
}

// transformers' logits processors, in generate's order.
torch::Tensor process(torch::Tensor scores, const torch::Tensor& seen, const GenerateOptions& o,
                      std::int64_t min_keep) {
  const std::int64_t V = scores.size(-1);
  if (o.repetition_penalty != 1.0 && seen.size(1) > 0) {
    const auto ids = seen.clamp_max(V);
    auto padded = torch::constant_pad_nd(scores, {0, 1});
    auto s = torch::gather(padded, 1, ids);
    s = torch::where(s < 0, s * o.repetition_penalty, s / o.repetition_penalty);
    scores = padded.scatter(1, ids, s).narrow(1, 0, V);
  }
  if (!o.do_sample) return scores;
  const double inf = std::numeric_limits<double>::infinity();
  if (o.temperature != 1.0) scores = scores / o.temperature;
  if (o.top_k > 0) {
    const std::int64_t k = std::min(std::max(o.top_k, min_keep), V);
    const auto kth = std::get<0>(torch::topk(scores, k)).narrow(-1, k - 1, 1);
    scores = scores.masked_fill(scores < kth, -inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, idx] = torch::sort(scores, -1, false);
    const auto cum = sorted.softmax(-1).cumsum(-1);
    auto remove = cum <= (1 - o.top_p);
    remove.narrow(-1, V - min_keep, min_keep).fill_(false);
    const auto to_remove = remove.scatter(1, idx, remove);
    scores = scores.masked_fill(to_remove, -inf);
  }
  return scores;
}

torch::Tensor multinomial(const torch::Tensor& probs, std::int64_t n, at::Generator& gen) {
  return torch::multinomial(probs.to(torch::kCPU), n, false, gen).to(probs.device());
}

std::vector<std::int64_t> trim(const std::vector<std::int64_t>& seq, const std::vector<std::int64_t>& eos) {
  std::vector<std::int64_t> out;
  for (auto t : seq) {
    out.push_back(t);
    if (std::find(eos.begin(), eos.end(), t) != eos.end()) break;
  }
  return out;
}

std::vector<std::int64_t> row(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kLong).contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}

// UnbatchedClassifierFreeGuidanceLogitsProcessor: g * (log_softmax(l) - log_softmax(u)) + log_softmax(u).
torch::Tensor guide(const torch::Tensor& logits, const torch::Tensor& uncond, double g) {
  const auto c = torch::log_softmax(logits, -1);
  const auto u = torch::log_softmax(uncond, -1);
  return g * (c - u) + u;
}

// neg: the unconditional sequences of classifier-free guidance, or null.
std::vector<std::vector<std::int64_t>> greedy_or_sample(Runner& r, Runner* neg, const Setup& s,
                                                        const GenerateOptions& o, const StepCallback& cb,
                                                        const torch::Device& dev) {
  const std::int64_t N = r.rows();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto generated = torch::empty({N, 0}, lopt);
  auto unfinished = torch::ones({N}, lopt);
  const bool has_eos = !s.eos.empty();
  auto logits = r.prefill();
  if (neg) logits = guide(logits, neg->prefill(), o.guidance_scale);
  for (std::int64_t step = 0; step < o.max_new_tokens; ++step) {
    const auto scores = process(logits, r.seen(generated), o, 1);
    torch::Tensor next = o.do_sample ? multinomial(scores.softmax(-1), 1, gen).squeeze(1) : scores.argmax(-1);
    if (has_eos) next = next * unfinished + s.pad * (1 - unfinished);
    generated = torch::cat({generated, next.unsqueeze(1)}, 1);
    auto done = generated.size(1) >= o.max_new_tokens ? torch::ones({N}, lopt).to(torch::kBool)
                                                       : torch::zeros({N}, lopt).to(torch::kBool);
    if (has_eos) done = done | torch::isin(next, s.eos_t);
    unfinished = unfinished * (~done).to(torch::kLong);
    const bool any_left = unfinished.any().item<bool>();
    bool go_on = true;
    if (cb) {
      GenerateStep st;
      st.step = step;
      st.tokens = row(next);
      for (auto u : row(unfinished)) st.finished.push_back(u == 0);
      go_on = cb(st);
    }
    if (!any_left || !go_on) break;
    logits = r.step(generated);
    if (neg) logits = guide(logits, neg->step(generated), o.guidance_scale);
  }
  std::vector<std::vector<std::int64_t>> out;
  for (std::int64_t i = 0; i < N; ++i) out.push_back(trim(row(generated[i]), s.eos));
  return out;
}

// transformers' _beam_search (vectorised), in the space of generated tokens (prompt length 0).
std::vector<std::vector<std::int64_t>> beam_search(Runner& r, const Setup& s, const GenerateOptions& o,
                                                   const torch::Device& dev) {
  const std::int64_t B = r.rows(), K = o.num_beams, M = o.max_new_tokens;
  r.expand(K);
  const std::int64_t n_eos = static_cast<std::int64_t>(s.eos.size());
  const std::int64_t keep = std::max<std::int64_t>(2, 1 + n_eos) * K;
  const std::int64_t min_keep = n_eos > 0 ? n_eos + 1 : 2;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(dev);
  const auto fopt = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  const auto bopt = torch::TensorOptions().dtype(torch::kBool).device(dev);
  const auto iopt = torch::TensorOptions().dtype(torch::kInt32).device(dev);
  auto gather = [](const torch::Tensor& t, torch::Tensor idx) {  // _gather_beams
    while (idx.dim() < t.dim()) idx = idx.unsqueeze(-1);
    return torch::take_along_dim(t, idx, 1);
  };
  const auto top_num_beam_mask = torch::cat({torch::ones({K}, bopt), torch::zeros({keep - K}, bopt)});
  auto running_sequences = torch::full({B, K, M}, s.pad, lopt);
  auto sequences = running_sequences.clone();
  auto running_beam_scores = torch::zeros({B, K}, fopt);
  running_beam_scores.narrow(1, 1, K - 1).fill_(-1e9);
  auto beam_scores = torch::full({B, K}, -1e9, fopt);
  auto is_sent_finished = torch::zeros({B, K}, bopt);
  auto unsatisfied = torch::ones({B, 1}, bopt);
  auto running_beam_indices = torch::full({B, K, M}, -1, iopt);
  auto beam_indices = running_beam_indices.clone();
  const auto batch_offset = torch::arange(B, lopt).view({-1, 1}) * K;
  const bool on = o.early_stopping == EarlyStopping::on;

  auto logits = r.prefill();
  for (std::int64_t cur = 0;; ++cur) {
    const auto flat = running_sequences.narrow(2, 0, cur).reshape({B * K, cur});
    if (cur > 0) logits = r.step(flat);
    auto log_probs = torch::log_softmax(logits, -1);
    log_probs = process(log_probs, r.seen(flat), o, min_keep);
    const std::int64_t V = log_probs.size(-1);
    log_probs = (log_probs.view({B, K, V}) + running_beam_scores.unsqueeze(2)).reshape({B, K * V});

    torch::Tensor topk_log_probs, topk_indices;
    if (o.do_sample) {
      topk_indices = multinomial(log_probs.softmax(-1), keep, gen);
      topk_log_probs = torch::gather(log_probs, 1, topk_indices);
    } else {
      std::tie(topk_log_probs, topk_indices) = torch::topk(log_probs, keep);
    }
    const auto cur_beam = torch::div(topk_indices, V, "floor");
    auto topk_running_beam_indices = gather(running_beam_indices, cur_beam);
    auto topk_running_sequences = gather(running_sequences, cur_beam);
    const auto topk_ids = torch::remainder(topk_indices, V);
    topk_running_sequences.select(2, cur).copy_(topk_ids);
    topk_running_beam_indices.select(2, cur).copy_(cur_beam + batch_offset);

    auto hits = torch::zeros({B, keep}, bopt);
    if (cur + 1 >= M) hits.fill_(true);
    if (n_eos > 0) hits = hits | torch::isin(topk_ids, s.eos_t);

    // Running beams for the next step.
    const auto topk_running_log_probs = topk_log_probs + hits.to(torch::kFloat32) * -1.0e9;
    const auto next_topk = std::get<1>(torch::topk(topk_running_log_probs, K));
    running_sequences = gather(topk_running_sequences, next_topk);
    running_beam_scores = gather(topk_running_log_probs, next_topk);
    running_beam_indices = gather(topk_running_beam_indices, next_topk);

    // Finished hypotheses.
    const auto did_top = hits & top_num_beam_mask.unsqueeze(0);
    auto fin = topk_log_probs / std::pow(static_cast<double>(cur + 1), o.length_penalty);
    if (on) fin = fin + is_sent_finished.all(-1, true).to(torch::kFloat32) * -1.0e9;
    fin = fin + (~unsatisfied).to(torch::kFloat32) * -1.0e9;
    fin = fin + (~did_top).to(torch::kFloat32) * -1.0e9;
    const auto merged_sequences = torch::cat({sequences, topk_running_sequences}, 1);
    const auto merged_scores = torch::cat({beam_scores, fin}, 1);
    const auto merged_beam_indices = torch::cat({beam_indices, topk_running_beam_indices}, 1);
    const auto merged_finished = torch::cat({is_sent_finished, did_top}, 1);
    const auto top_merged = std::get<1>(torch::topk(merged_scores, K));
    sequences = gather(merged_sequences, top_merged);
    beam_scores = gather(merged_scores, top_merged);
    beam_indices = gather(merged_beam_indices, top_merged);
    is_sent_finished = gather(merged_finished, top_merged);

    r.reorder(running_beam_indices.select(2, cur).reshape({B * K}).to(torch::kLong));

    const std::int64_t len = cur + 1;
    const double best_len =
        (o.early_stopping == EarlyStopping::never && o.length_penalty > 0.0) ? static_cast<double>(M) : len;
    const auto best_possible = running_beam_scores.narrow(1, 0, 1) / std::pow(best_len, o.length_penalty);
    const auto worst_finished =
        torch::where(is_sent_finished, std::get<0>(beam_scores.min(1, true)), torch::full({}, -1.0e9, fopt));
    unsatisfied = unsatisfied & (best_possible > worst_finished).any(-1, true);

    const bool improvement_possible = unsatisfied.any().item<bool>();
    const bool exists_open_beam = !(is_sent_finished.all().item<bool>() && on);
    const bool valid_continuations = !hits.all().item<bool>();
    if (!(improvement_possible && exists_open_beam && valid_continuations)) break;
  }

  std::vector<std::vector<std::int64_t>> out;
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t n = (beam_indices[b][0] != -1).sum().item<std::int64_t>();
    out.push_back(trim(row(sequences[b][0].narrow(0, 0, n)), s.eos));
  }
  return out;
}

// neg: the negative prompts of classifier-free guidance (used when guidance_scale != 1).
std::vector<std::vector<std::int64_t>> run(Phi3ForCausalLMImpl& m, Prompt p, std::optional<Prompt> neg,
                                           const Setup& s, const GenerateOptions& o, const StepCallback& cb) {
  const std::int64_t N = p.mask.size(0);
  if (o.max_new_tokens == 0) return std::vector<std::vector<std::int64_t>>(static_cast<std::size_t>(N));
  Runner r(m, std::move(p));
  if (o.num_beams > 1) return beam_search(r, s, o, m.device());
  if (!neg) return greedy_or_sample(r, nullptr, s, o, cb, m.device());
  if (neg->mask.size(0) != N) cli::fail_usage("{} negative prompts for {} prompts", neg->mask.size(0), N);
  Runner u(m, std::move(*neg));
  return greedy_or_sample(r, &u, s, o, cb, m.device());
}

// Token prompts, left-padded (the pad positions are masked, so their id only needs to be a valid row).
Prompt id_prompt(Phi3ForCausalLMImpl& m, const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t pad,
                 const char* what) {
  const std::int64_t V = m.config.vocab_size, N = static_cast<std::int64_t>(prompts.size());
  std::int64_t L = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) cli::fail_usage("{} {} is empty", what, i);
    for (auto t : prompts[i])
      if (t < 0 || t >= V) cli::fail_usage("{} {}: token id {} is outside the vocabulary [0, {})", what, i, t, V);
    L = std::max<std::int64_t>(L, static_cast<std::int64_t>(prompts[i].size()));
  }
  const std::int64_t pad_in = (pad >= 0 && pad < V) ? pad : 0;
  auto ids = torch::full({N, L}, pad_in, torch::kLong);
  auto mask = torch::zeros({N, L}, torch::kLong);
  for (std::int64_t i = 0; i < N; ++i) {
    const auto& p = prompts[static_cast<std::size_t>(i)];
    const std::int64_t n = static_cast<std::int64_t>(p.size());
    ids[i].narrow(0, L - n, n).copy_(torch::tensor(p, torch::kLong));
    mask[i].narrow(0, L - n, n).fill_(1);
  }
  const auto dev = m.device();
  Prompt pr;
  pr.ids = ids.to(dev);
  pr.mask = mask.to(dev);
  pr.pos = phi3_position_ids(pr.mask);
  pr.seen = pr.ids.masked_fill(pr.mask == 0, V);
  pr.embeds = m.embed(pr.ids);
  return pr;
}

// Embedding prompts [N,T,H] with a [N,T] mask (undefined: none), re-packed to left padding.
Prompt embed_prompt(Phi3ForCausalLMImpl& m, const torch::Tensor& prompt_embeds, const torch::Tensor& attention_mask,
                    const char* what) {
  if (prompt_embeds.dim() != 3 || prompt_embeds.size(2) != m.config.hidden_size)
    cli::fail_usage("{} embeddings must be [B,T,{}]", what, m.config.hidden_size);
  const std::int64_t N = prompt_embeds.size(0), T = prompt_embeds.size(1);
  if (T == 0) cli::fail_usage("empty {} embeddings", what);
  const auto dev = m.device();
  auto mask = attention_mask.defined() ? attention_mask.to(torch::kCPU).ne(0).to(torch::kLong)
                                       : torch::ones({N, T}, torch::kLong);
  if (mask.dim() != 2 || mask.size(0) != N || mask.size(1) != T)
    cli::fail_usage("{} attention mask must be [{},{}]", what, N, T);
  auto embeds = prompt_embeds.to(dev, m.dtype());
  // Left-padded already (each row's ones a suffix)? Otherwise move every row's kept positions right.
  const auto counts = mask.ne(0).sum(1);
  if ((counts == 0).any().item<bool>()) cli::fail_usage("a {} has no unmasked position", what);
  const auto suffix = torch::arange(T, torch::kLong).unsqueeze(0) >= (T - counts).unsqueeze(1);
  if (!torch::equal(suffix, mask.ne(0))) {
    const std::int64_t L = counts.max().item<std::int64_t>();
    auto packed = torch::zeros({N, L, embeds.size(2)}, embeds.options());
    auto pmask = torch::zeros({N, L}, torch::kLong);
    for (std::int64_t i = 0; i < N; ++i) {
      const auto keep_idx = mask[i].ne(0).nonzero().squeeze(1);
      const std::int64_t n = keep_idx.size(0);
      packed[i].narrow(0, L - n, n).copy_(embeds[i].index_select(0, keep_idx.to(dev)));
      pmask[i].narrow(0, L - n, n).fill_(1);
    }
    embeds = packed;
    mask = pmask;
  }
  Prompt pr;
  pr.embeds = embeds;
  pr.mask = mask.to(dev);
  pr.pos = phi3_position_ids(pr.mask);
  pr.seen = torch::empty({N, 0}, torch::TensorOptions().dtype(torch::kLong).device(dev));
  return pr;
}

bool guided(const GenerateOptions& o) {
  if (o.guidance_scale == 1.0) return false;
  if (!std::isfinite(o.guidance_scale)) cli::fail_usage("guidance_scale must be finite, got {}", o.guidance_scale);
  if (o.num_beams > 1) cli::fail_usage("guidance_scale {} needs greedy search or sampling (num_beams 1)", o.guidance_scale);
  return true;
}

}  // namespace

std::vector<std::vector<std::int64_t>> generate(Phi3ForCausalLM& model,
                                                const std::vector<std::vector<std::int64_t>>& prompts,
                                                const GenerateOptions& options, const StepCallback& callback) {
  torch::NoGradGuard ng;
  auto& m = *model;
  const Setup s = setup(m, options);
  if (prompts.empty()) return {};
  Prompt pr = id_prompt(m, prompts, s.pad, "prompt");
  std::optional<Prompt> neg;
  if (guided(options)) {
    auto np = options.negative_prompt_ids;
    if (np.empty())
      for (const auto& p : prompts) np.push_back({p.back()});
    neg = id_prompt(m, np, s.pad, "negative prompt");
  }
  return run(m, std::move(pr), std::move(neg), s, options, callback);
}

std::vector<std::vector<std::int64_t>> generate(Phi3ForCausalLM& model, const torch::Tensor& prompt_embeds,
                                                const torch::Tensor& attention_mask, const GenerateOptions& options,
                                                const StepCallback& callback) {
  torch::NoGradGuard ng;
  auto& m = *model;
  const Setup s = setup(m, options);
  if (prompt_embeds.dim() == 3 && prompt_embeds.size(0) == 0) return {};
  Prompt pr = embed_prompt(m, prompt_embeds, attention_mask, "prompt");
  std::optional<Prompt> neg;
  if (guided(options)) {
    if (options.negative_prompt_embeds.defined())
      neg = embed_prompt(m, options.negative_prompt_embeds, options.negative_attention_mask, "negative prompt");
    else if (!options.negative_prompt_ids.empty())  // as HF's negative_prompt_ids with inputs_embeds
      neg = id_prompt(m, options.negative_prompt_ids, s.pad, "negative prompt");
    else  // each prompt's last position
      neg = embed_prompt(m, pr.embeds.narrow(1, pr.embeds.size(1) - 1, 1), {}, "negative prompt");
  }
  return run(m, std::move(pr), std::move(neg), s, options, callback);
}

std::vector<std::vector<std::int64_t>> generate(model::HsenetVlmImpl& vlm,
                                                const std::vector<std::vector<std::int64_t>>& prompts,
                                                const torch::Tensor& t1, const torch::Tensor& t2,
                                                const GenerateOptions& options, const StepCallback& callback) {
  torch::NoGradGuard ng;
  const std::int64_t B = static_cast<std::int64_t>(prompts.size());
  if (B == 0) return {};
  const std::int64_t n = vlm.image_tokens();
  std::size_t L = 0;
  for (const auto& p : prompts) {
    if (static_cast<std::int64_t>(p.size()) < 1 + n)
      cli::fail_usage("vlm: a prompt has {} tokens, fewer than BOS + {} image tokens", p.size(), n);
    L = std::max(L, p.size());
  }
  const std::int64_t pad = vlm.tokens().pad;
  auto ids = torch::full({B, static_cast<std::int64_t>(L)}, pad, torch::kLong);
  auto mask = torch::zeros({B, static_cast<std::int64_t>(L)}, torch::kLong);
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<std::size_t>(b)];
    const auto len = static_cast<std::int64_t>(p.size());
    ids[b].narrow(0, 0, len).copy_(torch::tensor(p, torch::kLong));
    mask[b].narrow(0, 0, len).fill_(1);
  }
  auto emb = vlm.inputs_embeds(ids, t1, t2).to(vlm.llm->dtype());
  if (options.guidance_scale == 1.0 || options.negative_prompt_embeds.defined() ||
      !options.negative_prompt_ids.empty())
    return generate(vlm.llm, emb, mask, options, callback);
  // Classifier-free guidance against the image-free prompt: each prompt without its image positions.
  GenerateOptions o = options;
  for (const auto& p : prompts) {
    std::vector<std::int64_t> text{p[0]};
    text.insert(text.end(), p.begin() + 1 + n, p.end());
    o.negative_prompt_ids.push_back(std::move(text));
  }
  return generate(vlm.llm, emb, mask, o, callback);
}

}  // namespace hse::decode
