// BERTScore (Zhang et al. 2020) as the `bert-score` package (0.3.12) computes it with a BERT
// (WordPiece) model: bert_score.score(cands, refs, model_type=<dir>, num_layers=layer,
// idf=..., batch_size=..., rescale_with_baseline=False) with the slow tokenizer.
//
// Per sentence (bert_score.utils.sent_encode): [CLS] + WordPiece tokens + [SEP], truncated to
// the tokenizer's model_max_length (512 for BERT: 510 tokens + 2). The embeddings are the
// hidden states after `layer` encoder layers (hidden_states[layer], 0 = embedding output) for
// every token, [CLS] and [SEP] included, each L2-normalised. Greedy matching over the cosine
// matrix, per pair:
//   P = Σ_i w_i · max_j sim(c_i, r_j) / Σ_i w_i      over candidate tokens i
//   R = Σ_j w_j · max_i sim(c_i, r_j) / Σ_j w_j      over reference tokens j
//   F = 2PR / (P + R)
// [CLS] and [SEP] take part in the matching (as bert-score does: its masks cover them) but
// get weight 0. Weights without idf: 1 for every other token. With idf (from the references):
// w(t) = log((M+1)/(df(t)+1)), M = number of references, df = number of references whose
// encoding contains t; unseen tokens log(M+1) ([CLS]/[SEP] are in every reference: 0).
// bert-score's quirks are kept: matching runs over batches of `batch_size` pairs padded to the
// batch's longest sentence, and padded positions take part in the max with similarity 0; a
// candidate or reference that encodes to [CLS][SEP] alone (empty) gets P = R = 0 (F = 0);
// F = NaN becomes 0. Identical sentences share one embedding (bert-score de-duplicates).
// Values are computed in float32 and returned as double.
//
// RoBERTa (bert-score's English default is roberta-large, layer 17, which HSENet reports): the
// same computation with bert-score's RoBERTa encoding, sent_encode's
// tokenizer.encode(sent.strip(), add_special_tokens=True, add_prefix_space=True, max_length=512,
// truncation=True) on the slow byte-level BPE of vocab.json + merges.txt: <s> + BPE(" " + the
// stripped sentence)[:510] + </s> (an empty sentence: <s></s>); pad with <pad>.
// Baseline rescaling (rescale_with_baseline=True): x' = (x - b) / (1 - b) per P, R, F with the
// baseline row of the layer (bert-score's rescale_baseline/<lang>/<model>.tsv: LAYER,P,R,F).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "hse/model/bert.h"
#include "hse/text/bpe.h"
#include "hse/text/wordpiece.h"

namespace hse::eval {

using model::Bert;

struct BertScore {
  std::vector<double> P, R, F;
};

struct IdfDict {
  std::unordered_map<int64_t, double> idf;  // token id -> weight
  double unseen = 1.0;                      // weight of an id not in `idf`
  double operator()(int64_t id) const {
    auto it = idf.find(id);
    return it == idf.end() ? unseen : it->second;
  }
};

// What BERTScore needs of a tokenizer: sent_encode (special tokens included, truncated) and the
// ids of the special tokens that get weight 0 ([CLS]/[SEP], <s>/</s>) and of padding.
struct ScoreTokenizer {
  std::function<std::vector<int64_t>(const std::string&)> encode;
  int64_t cls_id = 0, sep_id = 0, pad_id = 0;
};
ScoreTokenizer score_tokenizer(const text::WordPieceTokenizer& tok, int max_length = 512);
// A slow-mode BPE with add_prefix_space (text::BpeTokenizer::from_vocab_merges(..., true)).
ScoreTokenizer score_tokenizer(const text::BpeTokenizer& tok, int64_t bos_id, int64_t eos_id, int64_t pad_id,
                               int max_length = 512);

// A BERTScore model directory: config.json + model.safetensors + vocab.txt (BERT, WordPiece)
// or vocab.json + merges.txt (RoBERTa, byte-level BPE with <s> </s> <pad> <unk> <mask>).
struct ScoreModel {
  Bert model{nullptr};
  std::unique_ptr<text::WordPieceTokenizer> wordpiece;
  std::unique_ptr<text::BpeTokenizer> bpe;
  ScoreTokenizer tokenizer;
};
// Throws cli::Error (exit 3, naming the file) for a directory with neither vocabulary, or a
// RoBERTa vocabulary without its special tokens.
ScoreModel load_score_model(const std::string& dir);

// bert-score's baseline file (rescale_baseline/<lang>/<model>.tsv: a header "LAYER,P,R,F", then
// one row per layer, comma-separated): the P, R, F of `layer`. cli::Error exit 3 when the file
// is malformed or has no such layer.
std::array<double, 3> read_bertscore_baseline(const std::string& path, int layer);
// x' = (x - b) / (1 - b) for P, R, F (bert-score's rescale_with_baseline).
void rescale_with_baseline(BertScore& s, const std::array<double, 3>& b);

// bert_score.utils.sent_encode for a WordPiece tokenizer.
std::vector<int64_t> bert_score_encode(const std::string& sentence, const text::WordPieceTokenizer& tok,
                                       int max_length = 512);

// The idf weights of bert_score.score: with `idf`, get_idf_dict(refs); without, 1 for every
// id except [CLS] and [SEP] (0).
IdfDict bert_score_idf(const std::vector<std::string>& refs, const text::WordPieceTokenizer& tok, bool idf,
                       int max_length = 512);

// Scores cands[i] against refs[i] (equal sizes). `layer` in 0..num_hidden_layers. Runs on the
// model's device in its dtype (float32 for parity). `batch_size` as bert-score's (default 64):
// the number of sentences per forward pass and of pairs per matching batch.
BertScore bert_score(const std::vector<std::string>& cands, const std::vector<std::string>& refs,
                     const text::WordPieceTokenizer& tok, Bert& model, int layer, bool idf, int batch_size = 64,
                     int max_length = 512);

// The same with precomputed idf weights (e.g. from a larger reference corpus).
BertScore bert_score(const std::vector<std::string>& cands, const std::vector<std::string>& refs,
                     const text::WordPieceTokenizer& tok, Bert& model, int layer, const IdfDict& weights,
                     int batch_size = 64, int max_length = 512);

// The same for any tokenizer (BERT or RoBERTa).
IdfDict bert_score_idf(const std::vector<std::string>& refs, const ScoreTokenizer& tok, bool idf);
BertScore bert_score(const std::vector<std::string>& cands, const std::vector<std::string>& refs,
                     const ScoreTokenizer& tok, Bert& model, int layer, const IdfDict& weights, int batch_size = 64);

}  // namespace hse::eval
