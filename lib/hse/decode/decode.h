// Decoding: text generation with the Phi-3 decoder (model/phi3.h) and the HSENet VLM (model/vlm.h), following transformers 5.23's
// GenerationMixin.generate for a decoder-only model with a DynamicCache, so that greedy search,
// beam search and seeded sampling give HF's tokens:
//
//  - Prompts: token id lists of any lengths are left-padded with the pad id (as a left-padding
//    tokenizer does for HF generate); prompt embeddings [B,T,H] come with a [B,T] 0/1 mask and are
//    re-packed to left padding when they are padded elsewhere. Position ids are HF generate's:
//    cumsum(mask)-1 with 0 at padding, then last+1 per new token. One prefill forward, then one
//    token per step through the KV cache (phi3.h KVCache).
//  - LongRoPE re-run: when the sequence (padded prompt + generated) first reaches
//    original_max_position_embeddings + 1 tokens while the cache holds at most
//    original_max_position_embeddings, the cache is dropped and the whole sequence re-run, as
//    Phi3ForCausalLM.prepare_inputs_for_generation does. (HF counts only input_ids there, so with
//    inputs_embeds it never re-runs and mixes short- and long-factor keys; hse applies the same rule
//    to embeddings as to ids.)
//  - Logits processors, in HF's order, on float32 logits of the last position:
//      repetition_penalty (!= 1): RepetitionPenaltyLogitsProcessor — for every token id present in
//        the sequence so far (the prompt's real tokens, left padding excluded, and the generated
//        tokens; with prompt embeddings only the generated tokens), a score s becomes s*p if s < 0
//        else s/p;
//      sampling only: temperature (!= 1), top_k (> 0; TopKLogitsWarper), top_p (< 1; TopPLogitsWarper),
//        each keeping at least 1 token (beam sampling: number of stop ids + 1).
//  - Classifier-free guidance (guidance_scale != 1; UnbatchedClassifierFreeGuidanceLogitsProcessor,
//    first of the processors): a second, unconditional sequence per input — the negative prompt
//    (negative_prompt_ids / negative_prompt_embeds; default each prompt's last token, as HF) followed
//    by the same generated tokens, with its own KV cache — gives logits u, and the scores become
//    g * (log_softmax(l) - log_softmax(u)) + log_softmax(u) (then the processors below act on these
//    log-probabilities, as in HF). g > 1 pushes the output away from what the negative prompt alone
//    predicts: with the image-free prompt as the negative (hse-generate --guidance-scale), towards
//    what the image adds. Positions of a padded negative prompt come from its mask, and the negative
//    sequence is re-run at the LongRoPE switch like the main one (HF counts its positions from the
//    cache and never re-runs it: the two differ only for padded negative prompts or negative
//    sequences longer than original_max_position_embeddings). Greedy and sampling only
//    (HF's processor does not follow beam reordering, so hse refuses it with beams).
//  - Greedy (default): argmax. Sampling: softmax then torch.multinomial with a CPU generator seeded
//    with `seed` (mt19937, as torch.manual_seed(seed) seeds Python's default CPU generator, so CPU
//    runs match HF under torch.manual_seed(seed)); the probabilities are moved to the CPU for this.
//  - Stopping: a sequence is finished when its new token is a stop id; later tokens of finished
//    sequences are the pad id (not returned); generation ends when all are finished or after
//    max_new_tokens.
//  - Beam search (num_beams > 1): transformers' vectorised _beam_search — log_softmax, processors on
//    the log-probabilities, top (max(2, 1+#stop ids) * num_beams) continuations over all beams,
//    finished hypotheses scored sum(logprobs) / generated_length^length_penalty, early_stopping
//    false (HF's default heuristic: stop when no running beam can beat the worst kept hypothesis at
//    the current length), true (stop when num_beams hypotheses are finished) or "never"; the cache
//    is reordered with the chosen beams. Returns the best hypothesis per input (num_return_sequences 1).
//    With do_sample the continuations are drawn by multinomial as HF's beam sampling.
//
// Output: per input sequence, the generated ids without the prompt, up to and including the first
// stop id (as HF's sequences[:, prompt_len:] trimmed after the stop id, so padding is dropped).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "hse/model/phi3.h"
#include "hse/model/vlm.h"

namespace hse::decode {

using model::Phi3ForCausalLM;

enum class EarlyStopping { heuristic, on, never };  // HF early_stopping False (default), True, "never"

struct GenerateOptions {
  std::int64_t max_new_tokens = 32;
  bool do_sample = false;       // false: greedy (or beam search)
  double temperature = 1.0;     // sampling only
  std::int64_t top_k = 50;      // sampling only; 0 disables (HF's default is 50)
  double top_p = 1.0;           // sampling only; 1 disables
  std::uint64_t seed = 0;       // sampling: the CPU generator's seed
  std::int64_t num_beams = 1;
  double length_penalty = 1.0;  // beam search
  EarlyStopping early_stopping = EarlyStopping::heuristic;
  double repetition_penalty = 1.0;
  double guidance_scale = 1.0;  // classifier-free guidance; 1 disables
  // Negative prompts for guidance, one per input: token ids, or (embedding prompts only) embeddings
  // [B,T',H] with a [B,T'] 0/1 mask (undefined: no padding), which take precedence. Empty: each
  // prompt's last token.
  std::vector<std::vector<std::int64_t>> negative_prompt_ids;
  torch::Tensor negative_prompt_embeds, negative_attention_mask;
  // Stop ids; nullopt: the config's eos_token_ids; an empty list: never stop early.
  std::optional<std::vector<std::int64_t>> eos_token_ids;
  // Padding id (prompt padding, tokens after a finished sequence); -1: the config's pad_token_id,
  // or the first stop id when the config has none.
  std::int64_t pad_token_id = -1;
};

// One greedy/sampling step, for streaming.
struct GenerateStep {
  std::int64_t step = 0;              // index of the new token (0-based)
  std::vector<std::int64_t> tokens;   // the new token of each sequence (pad for already finished ones)
  std::vector<bool> finished;         // whether each sequence is finished after this token
};
// Called after each greedy/sampling step (not with beam search, whose best hypothesis is known only
// at the end, as HF refuses a streamer there); return false to stop generating after this step.
using StepCallback = std::function<bool(const GenerateStep&)>;

// Generates from token id prompts (each non-empty, ids in [0, vocab_size)).
// Throws cli::Error (exit 2) for invalid options or prompts.
std::vector<std::vector<std::int64_t>> generate(Phi3ForCausalLM& model,
                                                const std::vector<std::vector<std::int64_t>>& prompts,
                                                const GenerateOptions& options = {},
                                                const StepCallback& callback = {});

// Generates from prompt embeddings [B,T,H] (e.g. embed(ids) with image tokens written over some
// positions) with a [B,T] 0/1 mask (undefined: no padding; every row needs at least one 1).
std::vector<std::vector<std::int64_t>> generate(Phi3ForCausalLM& model, const torch::Tensor& prompt_embeds,
                                                const torch::Tensor& attention_mask,
                                                const GenerateOptions& options = {},
                                                const StepCallback& callback = {});

// Generates with the VLM from prompt ids (vlm_prompt_ids layouts of any lengths >= 1 + n_img), one
// per row of t1/t2 (the towers' patch tokens). Output as above (new ids up to and including the
// stop id). With options.guidance_scale != 1 and no negative prompts given, the negative prompt of
// classifier-free guidance is each prompt without its image positions (BOS + text), so the guidance
// weights what the image adds.
std::vector<std::vector<std::int64_t>> generate(model::HsenetVlmImpl& vlm,
                                                const std::vector<std::vector<std::int64_t>>& prompts,
                                                const torch::Tensor& t1, const torch::Tensor& t2 = {},
                                                const GenerateOptions& options = {},
                                                const StepCallback& callback = {});

}  // namespace hse::decode
