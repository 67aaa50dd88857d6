#include "hse/app/eval.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <cmath>
#include <fstream>
#include <istream>
#include <map>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include <torch/torch.h>

#include "hse/eval/bleu.h"
#include "hse/eval/classification.h"
#include "hse/eval/inputs.h"
#include "hse/cli/compat.h"
#include "hse/eval/bertscore.h"
#include "hse/eval/labeler.h"
#include "hse/eval/meteor.h"
#include "hse/eval/retrieval.h"
#include "hse/eval/rouge.h"
#include "hse/eval/vqa.h"
#include "hse/io/atomic.h"
#include "hse/io/csv.h"

namespace hse::eval {

void declare(CLI::App& app, Options& o) {
  app.require_subcommand(1);
  auto common = [&](CLI::App* sub, const std::string& input_help) {
    sub->add_option("input", o.input, input_help)->default_val("-");
    sub->add_option("--references", o.references,
                    "references: CT-RATE reports CSV, RadGenome VQA CSV, or JSONL {\"id\", \"reference\"}");
    sub->add_option("--reference-source", o.reference_source,
                    "file or inline: which references win when the input carries \"reference\" fields and "
                    "--references is given too (without it, that is an error)")
        ->check(CLI::IsMember({"file", "inline"}));
    sub->add_flag("--json", o.json, "print a JSON object instead of the metric<TAB>value table");
    sub->add_option("--per-item", o.per_item, "write per-sample scores (TSV) to this file");
    sub->add_option("--fail-under", o.fail_under, "metric=value: exit 5 when the metric is below value (repeatable)")
        ->allow_extra_args(false);
    cli::add_common(*sub, o.common, cli::kVerbosity);
  };
  auto text_options = [&](CLI::App* sub) {
    sub->add_option("--ref-column", o.ref_column, "reports CSV column with the reference text")->default_val("Findings_EN");
    sub->add_option("--smooth", o.smooth, "BLEU smoothing (sacrebleu's methods and default): exp, none, floor, add-k")
        ->default_val("exp")
        ->check(CLI::IsMember({"none", "floor", "add-k", "exp"}));
    sub->add_option("--smooth-value", o.smooth_value, "smoothing value for floor (0.1) and add-k (1)");
    sub->add_flag("--stem", o.stem, "ROUGE with rouge-score's Porter stemmer");
    cli::add_compat_option(*sub, o.compat, "scored as HSENet's evaluation scripts (references cleaned of \" ' ( ))");
    sub->add_flag("--clean-references", o.clean_references, "remove \" ' ( ) from references (HSENet's cleaning)");
    sub->add_option("--wordnet", o.wordnet, "WordNet 3.0 database directory (Debian wordnet-base)")
        ->default_val("/usr/share/wordnet");
    sub->add_flag("--allow-missing", o.allow_missing, "score only the references that have predictions");
    sub->add_option("--bertscore-model", o.bertscore_model,
                    "BERTScore with this HF model directory: BERT (config.json, model.safetensors, vocab.txt) or "
                    "RoBERTa (vocab.json + merges.txt; bert-score's English default, roberta-large, layer 17)");
    sub->add_option("--bertscore-baseline", o.bertscore_baseline,
                    "rescale BERTScore with bert-score's baseline file (rescale_baseline/<lang>/<model>.tsv), as "
                    "rescale_with_baseline=True");
    sub->add_option("--bertscore-layer", o.bertscore_layer, "BERTScore layer (default: the last)")->default_val(-1);
    sub->add_flag("--bertscore-idf", o.bertscore_idf, "BERTScore with idf weights from the references");
    sub->add_option("--bertscore-batch", o.bertscore_batch, "BERTScore batch size (bert-score's default 64)")
        ->default_val(64);
  };
  auto* rep = app.add_subcommand("report", "report generation: BLEU variants, ROUGE, METEOR, clinical efficacy");
  common(rep, "predictions JSONL {\"id\", \"prediction\", \"reference\"?} ('-': stdin)");
  text_options(rep);
  rep->callback([&o] { o.task = "report"; });
  auto* vqa = app.add_subcommand("vqa", "location VQA: major/minor class accuracy, per-region P/R/F1, text metrics");
  common(vqa, "predictions JSONL {\"id\", \"prediction\", \"reference\"?} ('-': stdin)");
  text_options(vqa);
  vqa->callback([&o] { o.task = "vqa"; });
  auto labels = [&](CLI::App* sub, const std::string& help) { return sub->add_option("--labels", o.labels, help); };
  auto* ret = app.add_subcommand("retrieval", "retrieval: R@K, volume-to-volume label precision@K");
  common(ret, "rankings TSV: query_id<TAB>rank<TAB>item_id<TAB>score ('-': stdin)");
  ret->add_option("--pairs", o.pairs, "TSV query_id<TAB>item_id of the true pairs (default: the same id)");
  labels(ret, "CT-RATE labels CSV: volume-to-volume label-Jaccard metrics");
  ret->add_option("--ks", o.ks, "K values, comma-separated (default 1,5,10,50,100; 1,5,10,50 with --labels)");
  ret->callback([&o] { o.task = "retrieval"; });
  auto* cls = app.add_subcommand(
      "classification", "zero-shot classification: per-label and macro AUROC, AP, F1 at CT-CLIP's threshold");
  common(cls, "probabilities TSV: id<TAB>label<TAB>probability (hse-classify; '-': stdin)");
  labels(cls, "labels CSV: VolumeName and one 0/1 column per label, matched by name (CT-RATE's "
              "multi_abnormality_labels)")
      ->required();
  cls->callback([&o] { o.task = "classification"; });
}

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// References by id: CT-RATE reports CSV (VolumeName + column), RadGenome VQA CSV
// (Volumename, Anatomy, Abnormality -> id "Volumename|Abnormality"), or JSONL.
std::map<std::string, std::string> read_references(const Options& o) {
  std::map<std::string, std::string> refs;
  const std::string& f = o.references;
  if (ends_with(f, ".csv")) {
    const io::Table t = io::read_csv(f);
    const auto vn = t.find_col_ci({"VolumeName"});
    const auto answer = t.find_col_ci({"Anatomy", "answer"});
    const auto text = t.find_col(o.ref_column);
    if (!vn) cli::fail_input(f, "neither a CT-RATE reports CSV nor a RadGenome VQA CSV (no VolumeName column)");
    if (answer && (o.task == "vqa" || !text)) {
      // RadGenome VQA rows, named as hse-generate names them (VqaIds).
      const auto ab = t.find_col_ci({"Abnormality"});
      VqaIds ids;
      for (const auto& r : t.rows) refs[ids.next(r[*vn], ab ? r[*ab] : std::string())] = r[*answer];
    } else {
      if (!text) cli::fail_input(f, "no {} column (choose the reference column with --ref-column)", o.ref_column);
      for (const auto& r : t.rows) refs[r[*vn]] = r[*text];
    }
  } else {
    std::istringstream in(io::read_file(f));
    for_each_jsonl(in, f, [&](const nlohmann::json& j, std::size_t n) {
      if (!j.contains("id") || !j.contains("reference") || !j["reference"].is_string())
        cli::fail_input(f, "line {}: expected {{\"id\", \"reference\"}}", n);
      refs[j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump()] = j["reference"].get<std::string>();
    });
  }
  if (refs.empty()) cli::fail_input(f, "no references");
  return refs;
}


struct Pair {
  std::string id, pred, ref;
};

// Joins predictions with references; every reference (when a file is given) needs a prediction
// unless --allow-missing, every prediction needs a reference, ids are unique.
std::vector<Pair> join(const Options& o, const std::vector<Prediction>& preds, const std::string& name) {
  std::map<std::string, std::string> refs;
  if (!o.references.empty()) {
    const auto inline_ref = std::find_if(preds.begin(), preds.end(), [](const Prediction& p) { return p.has_reference; });
    if (inline_ref != preds.end() && o.reference_source.empty())
      throw cli::Error(cli::Exit::usage, name,
                       fmt::format("line {} carries a \"reference\" and --references {} gives others: say which "
                                   "win with --reference-source inline|file",
                                   inline_ref->line, o.references));
    if (o.reference_source == "inline") {
      for (const auto& p : preds)
        if (!p.has_reference)
          cli::fail_input(name, "line {}: id '{}' has no \"reference\" (--reference-source inline)", p.line, p.id);
    } else {
      refs = read_references(o);
    }
  } else if (o.reference_source == "file") {
    cli::fail_usage("--reference-source file needs --references FILE");
  }
  std::vector<Pair> out;
  std::map<std::string, std::size_t> seen;
  for (const auto& p : preds) {
    if (!seen.emplace(p.id, p.line).second)
      cli::fail_input(name, "line {}: id '{}' repeats line {}", p.line, p.id, seen[p.id]);
    std::string ref;
    if (!refs.empty()) {
      auto it = refs.find(p.id);
      if (it == refs.end()) cli::fail_input(name, "line {}: id '{}' has no reference in {}", p.line, p.id, o.references);
      ref = it->second;
    } else if (p.has_reference) {
      ref = p.reference;
    } else {
      throw cli::Error(cli::Exit::incompatible, name, fmt::format("line {}: id '{}' has no \"reference\"", p.line, p.id),
                       "give --references FILE or a \"reference\" field");
    }
    out.push_back({p.id, p.prediction, ref});
  }
  if (!refs.empty() && !o.allow_missing && out.size() != refs.size())
    throw cli::Error(cli::Exit::incompatible, name,
                     fmt::format("{} predictions for {} references in {}", out.size(), refs.size(), o.references),
                     "score a subset with --allow-missing");
  return out;
}

using Table = std::vector<std::pair<std::string, double>>;

// <prefix>_precision, <prefix>_recall, <prefix>_f1.
void add_prf(Table& t, const std::string& prefix, double p, double r, double f) {
  t.emplace_back(prefix + "_precision", p);
  t.emplace_back(prefix + "_recall", r);
  t.emplace_back(prefix + "_f1", f);
}


// Per-sample text metrics and their means; corpus BLEU over all pairs.
void text_metrics(const Options& o, const std::vector<Pair>& pairs, Table& t,
                  std::vector<std::vector<std::pair<std::string, double>>>& per_item) {
  const Smooth sm = parse_smooth(o.smooth);
  const double sv = o.smooth_value;  // <= 0: sacrebleu's default for the method
  std::vector<std::string> hyps, refs;
  for (const auto& p : pairs) {
    hyps.push_back(p.pred);
    refs.push_back(p.ref);
  }
  const BleuResult corpus = corpus_bleu(hyps, refs, sm, sv);
  for (int n = 0; n < 4; ++n) t.emplace_back(fmt::format("bleu{}", n + 1), corpus.bleu[n]);
  const WordNet& wn = WordNet::load(o.wordnet);
  double sb[4] = {0, 0, 0, 0}, hp[4] = {0, 0, 0, 0}, r1 = 0, r2 = 0, rl = 0, me = 0;
  per_item.resize(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& p = pairs[i];
    auto& row = per_item[i];
    const BleuResult s = sentence_bleu(p.pred, p.ref, sm, sv);
    const auto prec = hf_bleu_precisions(p.pred, p.ref);
    const RougeResult r = rouge(p.pred, p.ref, o.stem);
    const double m = meteor(meteor_tokenize(p.ref), meteor_tokenize(p.pred), wn);
    for (int n = 0; n < 4; ++n) {
      sb[n] += s.bleu[n];
      hp[n] += prec[static_cast<std::size_t>(n)];
      row.emplace_back(fmt::format("sentence_bleu{}", n + 1), s.bleu[n]);
    }
    for (int n = 0; n < 4; ++n) row.emplace_back(fmt::format("bleu{}_precision", n + 1), prec[static_cast<std::size_t>(n)]);
    row.emplace_back("rouge1", r.rouge1.fmeasure);
    row.emplace_back("rouge2", r.rouge2.fmeasure);
    row.emplace_back("rougeL", r.rougeL.fmeasure);
    row.emplace_back("meteor", m);
    r1 += r.rouge1.fmeasure;
    r2 += r.rouge2.fmeasure;
    rl += r.rougeL.fmeasure;
    me += m;
  }
  const double n = static_cast<double>(pairs.size());
  for (int k = 0; k < 4; ++k) t.emplace_back(fmt::format("sentence_bleu{}", k + 1), sb[k] / n);
  for (int k = 0; k < 4; ++k) t.emplace_back(fmt::format("bleu{}_precision", k + 1), hp[k] / n);
  t.emplace_back("rouge1", r1 / n);
  t.emplace_back("rouge2", r2 / n);
  t.emplace_back("rougeL", rl / n);
  t.emplace_back("meteor", me / n);
  if (!o.bertscore_model.empty()) {
    auto sm = eval::load_score_model(o.bertscore_model);
    const int layer =
        o.bertscore_layer >= 0 ? o.bertscore_layer : static_cast<int>(sm.model->config.num_hidden_layers);
    torch::NoGradGuard ng;
    auto bs = eval::bert_score(hyps, refs, sm.tokenizer, sm.model, layer,
                                eval::bert_score_idf(refs, sm.tokenizer, o.bertscore_idf), o.bertscore_batch);
    if (!o.bertscore_baseline.empty())
      eval::rescale_with_baseline(bs, eval::read_bertscore_baseline(o.bertscore_baseline, layer));
    double P = 0, R = 0, F = 0;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      per_item[i].emplace_back("bertscore_f1", bs.F[i]);
      P += bs.P[i];
      R += bs.R[i];
      F += bs.F[i];
    }
    add_prf(t, "bertscore", P / n, R / n, F / n);
  }
}

void write_outputs(const Options& o, cli::Io& io, const Table& t, const std::vector<Pair>& pairs,
                   const std::vector<std::vector<std::pair<std::string, double>>>& per_item) {
  if (!o.per_item.empty()) {
    io::AtomicFile f(o.per_item);
    f.stream() << "id";
    if (!per_item.empty())
      for (const auto& [k, v] : per_item[0]) f.stream() << '\t' << k;
    f.stream() << '\n';
    for (std::size_t i = 0; i < per_item.size(); ++i) {
      f.stream() << pairs[i].id;
      for (const auto& [k, v] : per_item[i]) f.stream() << '\t' << fmt::format("{:.6f}", v);
      f.stream() << '\n';
    }
    f.commit();
  }
  if (o.json) {
    nlohmann::ordered_json j;
    for (const auto& [k, v] : t) j[k] = v;
    io.out << j.dump(2) << '\n';
  } else {
    io.out << "metric\tvalue\n";
    for (const auto& [k, v] : t) io.out << k << '\t' << fmt::format("{:.6f}", v) << '\n';
  }
  io.out.flush();
}

int check_fail_under(const Options& o, const Table& t) {
  int rc = 0;
  for (const auto& spec : o.fail_under) {
    const auto eq = spec.find('=');
    double want = 0;
    try {
      if (eq == std::string::npos) throw std::invalid_argument("no =");
      want = std::stod(spec.substr(eq + 1));
    } catch (const std::exception&) {
      cli::fail_usage("--fail-under: '{}' is not of the form metric=value", spec);
    }
    const std::string name = spec.substr(0, eq);
    auto it = std::find_if(t.begin(), t.end(), [&](const auto& kv) { return kv.first == name; });
    if (it == t.end()) cli::fail_usage("--fail-under: no metric '{}' in this task", name);
    if (it->second < want) {
      cli::log_line(-1, fmt::format("check failed: {} {:.6f} < {}", name, it->second, want));
      rc = static_cast<int>(cli::Exit::check_failed);
    }
  }
  return rc;
}

std::string slug(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_');
  return o;
}

// The K values the rankings support. A query's figure at K is known when its
// ranking holds K items or more, or when a deeper ranking could not change it
// (`settled`: its true item was found, or the ranking is complete). An explicit
// --ks beyond that is refused (exit 3); a default K is left out with a warning.
// Never prints a figure the input cannot support.
std::vector<int> supported_ks(const std::vector<int>& ks, bool explicit_ks, const std::vector<std::string>& order,
                              const std::vector<std::vector<std::string>>& rankings,
                              const std::function<bool(std::size_t)>& settled, const std::string& name,
                              const std::string& metric, const std::string& why) {
  std::size_t depth = std::numeric_limits<std::size_t>::max(), shallow = 0;
  for (std::size_t q = 0; q < rankings.size(); ++q)
    if (!settled(q) && rankings[q].size() < depth) {
      depth = rankings[q].size();
      shallow = q;
    }
  std::vector<int> out, dropped;
  for (int k : ks) {
    if (static_cast<std::size_t>(k) <= depth) {
      out.push_back(k);
    } else if (explicit_ks) {
      throw cli::Error(cli::Exit::incompatible, name,
                       fmt::format("{}@{} needs rankings of depth {} or more, but query '{}' ranks {} items {}", metric,
                                   k, k, order[shallow], depth, why),
                       fmt::format("rank deeper (hse-retrieve -k {}) or ask for smaller K (--ks)", k));
    } else {
      dropped.push_back(k);
    }
  }
  if (!dropped.empty())
    cli::warn("{}: left out {}@{}: query '{}' ranks only {} items {} (rank deeper with hse-retrieve -k)", name, metric,
              fmt::join(dropped, ","), order[shallow], depth, why);
  if (out.empty()) cli::fail_input(name, "the rankings (depth {}) support none of the K values asked for", depth);
  return out;
}

std::vector<int> parse_ks(const std::string& s, std::vector<int> fallback) {
  if (s.empty()) return fallback;
  std::vector<int> ks;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      std::size_t p = 0;
      const int k = std::stoi(part, &p);
      if (p != part.size() || k < 1) throw std::invalid_argument("k");
      ks.push_back(k);
    } catch (const std::exception&) {
      cli::fail_usage("--ks: '{}' is not a comma-separated list of positive integers", s);
    }
  }
  return ks;
}

// Rankings TSV: query_id, rank, item_id[, score]; an optional header line starting with "query_id".
void retrieval_metrics(const Options& o, std::istream& in, const std::string& name, Table& t) {
  const Rankings parsed = read_rankings(in, name);
  const std::vector<std::string>& order = parsed.queries;
  std::vector<std::vector<std::string>> rankings = parsed.items;
  if (!o.labels.empty()) {
    const io::Table lt = io::read_csv(o.labels);
    const std::size_t idc = lt.col("VolumeName");
    if (lt.header.size() < 19) cli::fail_input(o.labels, "expected VolumeName and 18 label columns");
    LabelMap labels;
    for (std::size_t r = 0; r < lt.rows.size(); ++r) {
      LabelVec v{};
      for (std::size_t c = 0, k = 0; c < lt.header.size() && k < 18; ++c) {
        if (c == idc) continue;
        v[k++] = lt.rows[r][c] == "1" || lt.rows[r][c] == "1.0" ? 1 : 0;
      }
      labels[lt.rows[r][idc]] = v;
    }
    for (auto& r : rankings) r = v2v_filter_ranking(r, labels);
    // Volumes rank volumes: a ranking is complete when it holds every query that is in the pool.
    std::set<std::string> pool_queries;
    for (const auto& q : order)
      if (auto it = labels.find(q); it != labels.end() && std::any_of(it->second.begin(), it->second.end(), [](auto x) { return x != 0; }))
        pool_queries.insert(q);
    auto complete = [&](std::size_t q) {
      const std::set<std::string> have(rankings[q].begin(), rankings[q].end());
      return std::includes(have.begin(), have.end(), pool_queries.begin(), pool_queries.end());
    };
    const auto ks = supported_ks(parse_ks(o.ks, {1, 5, 10, 50}), !o.ks.empty(), order, rankings, complete, name,
                                 "precision", "of a larger pool");
    const auto p = v2v_precision_at_k(order, rankings, labels, ks);
    const auto c = v2v_map_cumulative(order, rankings, labels, ks);
    for (std::size_t i = 0; i < ks.size(); ++i) t.emplace_back(fmt::format("precision@{}", ks[i]), p[i]);
    for (std::size_t i = 0; i < ks.size(); ++i) t.emplace_back(fmt::format("map_cumulative@{}", ks[i]), c[i]);
    return;
  }
  std::map<std::string, std::string> truth;
  if (!o.pairs.empty()) {
    std::istringstream ps(io::read_file(o.pairs));
    truth = read_pairs(ps, o.pairs);
  }
  std::vector<std::string> positives;
  for (const auto& q : order) {
    if (o.pairs.empty()) {
      positives.push_back(q);
    } else {
      auto it = truth.find(q);
      if (it == truth.end()) cli::fail_input(o.pairs, "query '{}' has no pair", q);
      positives.push_back(it->second);
    }
  }
  // Once a query's true item is found, a deeper ranking cannot change its recall.
  auto found = [&](std::size_t q) {
    return std::find(rankings[q].begin(), rankings[q].end(), positives[q]) != rankings[q].end();
  };
  for (int k : supported_ks(parse_ks(o.ks, {1, 5, 10, 50, 100}), !o.ks.empty(), order, rankings, found, name, "recall",
                            "without its true item"))
    t.emplace_back(fmt::format("recall@{}", k), recall_at_k(rankings, positives, k));
}

// Probabilities TSV (id, label, probability; an optional header line starting with "id") scored
// per label against a labels CSV matched by VolumeName and column name.
void classification_metrics(const Options& o, std::istream& in, const std::string& name, Table& t) {
  if (!o.references.empty()) cli::fail_usage("classification: the truth comes from --labels, not --references");
  if (!o.per_item.empty()) cli::fail_usage("classification: --per-item has no per-sample scores to write");
  std::map<std::string, std::map<std::string, double>> by_label;  // label -> id -> probability
  std::vector<std::string> label_order;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (n == 1 && line.rfind("id\t", 0) == 0)) continue;
    const auto a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1);
    if (b == std::string::npos || line.find('\t', b + 1) != std::string::npos)
      cli::fail_input(name, "line {}: expected id<TAB>label<TAB>probability", n);
    const std::string id = line.substr(0, a), label = line.substr(a + 1, b - a - 1), ps = line.substr(b + 1);
    double p = 0;
    try {
      p = cli::parse_number(ps);
    } catch (const std::invalid_argument&) {
      cli::fail_input(name, "line {}: probability '{}' is not a number", n, ps);
    }
    if (!(p >= 0 && p <= 1)) cli::fail_input(name, "line {}: probability {} is outside [0, 1]", n, ps);
    auto& m = by_label[label];
    if (m.empty()) label_order.push_back(label);
    if (!m.emplace(id, p).second) cli::fail_input(name, "line {}: '{}' / '{}' appears twice", n, id, label);
  }
  if (label_order.empty()) cli::fail_input(name, "no probabilities");
  const io::Table lt = io::read_csv(o.labels);
  const std::size_t idc = lt.col("VolumeName");
  std::map<std::string, std::size_t> row_of;
  for (std::size_t r = 0; r < lt.rows.size(); ++r) row_of[lt.rows[r][idc]] = r;
  std::vector<BinaryScores> scored;
  std::vector<std::string> skipped;
  for (const auto& label : label_order) {
    const auto col = lt.find_col(label);
    if (!col) cli::fail_input(o.labels, "no column '{}' (a label of {})", label, name);
    std::vector<double> p;
    std::vector<int> y;
    for (const auto& [id, prob] : by_label[label]) {
      auto r = row_of.find(id);
      if (r == row_of.end()) cli::fail_input(o.labels, "no row for '{}' (VolumeName)", id);
      const std::string& v = lt.rows[r->second][*col];
      if (v != "0" && v != "1" && v != "0.0" && v != "1.0")
        cli::fail_input(o.labels, "'{}' / '{}': label '{}' is not 0 or 1", id, label, v);
      p.push_back(prob);
      y.push_back(v[0] == '1' ? 1 : 0);
    }
    BinaryScores b;
    try {
      b = score_binary(p, y);
    } catch (const std::invalid_argument&) {
      skipped.push_back(label);  // one class only: AUROC and the threshold are undefined
      continue;
    }
    const std::string k = slug(label);
    t.emplace_back("auroc_" + k, b.auroc);
    t.emplace_back("ap_" + k, b.average_precision);
    t.emplace_back("threshold_" + k, b.threshold);
    t.emplace_back("f1_weighted_" + k, b.f1_weighted);
    t.emplace_back("f1_" + k, b.f1);
    t.emplace_back("accuracy_" + k, b.accuracy);
    t.emplace_back("precision_" + k, b.precision);
    t.emplace_back("recall_" + k, b.recall);
    t.emplace_back("specificity_" + k, b.specificity);
    scored.push_back(b);
  }
  if (!skipped.empty())
    cli::warn("{} label(s) left out, as every item has the same value there (AUROC undefined): {}", skipped.size(),
              fmt::join(skipped, ", "));
  if (scored.empty()) cli::fail_input(o.labels, "no label has both positive and negative items: nothing to score");
  auto mean = [&](double BinaryScores::*f) {
    double sum = 0;
    for (const auto& b : scored) sum += b.*f;
    return sum / static_cast<double>(scored.size());
  };
  t.emplace_back("auroc_macro", mean(&BinaryScores::auroc));
  t.emplace_back("ap_macro", mean(&BinaryScores::average_precision));
  t.emplace_back("f1_weighted_macro", mean(&BinaryScores::f1_weighted));
  t.emplace_back("f1_macro", mean(&BinaryScores::f1));
  t.emplace_back("accuracy_macro", mean(&BinaryScores::accuracy));
  t.emplace_back("precision_macro", mean(&BinaryScores::precision));
  t.emplace_back("recall_macro", mean(&BinaryScores::recall));
  t.emplace_back("specificity_macro", mean(&BinaryScores::specificity));
  t.emplace_back("labels_scored", static_cast<double>(scored.size()));
}

}  // namespace

int run(const Options& o, cli::Io& io) {
  const std::string name = o.input == "-" ? "<stdin>" : o.input;
  std::unique_ptr<std::istream> file;
  std::istream* in = &io.in;
  if (o.input != "-") {
    file = std::make_unique<std::istringstream>(io::read_file(o.input));
    in = file.get();
  }
  Table t;
  std::vector<Pair> pairs;
  std::vector<std::vector<std::pair<std::string, double>>> per_item;
  if (o.task == "report" || o.task == "vqa") {
    pairs = join(o, read_predictions(*in, name), name);
    const bool clean = o.clean_references || o.compat == "hsenet";
    for (auto& p : pairs) {
      p.pred = strip(p.pred);
      p.ref = strip(clean ? clean_hsenet(p.ref) : p.ref);
    }
    if (o.task == "vqa") {
      std::vector<std::string> preds, answers;
      for (const auto& p : pairs) {
        preds.push_back(p.pred);
        answers.push_back(p.ref);
      }
      const VqaScores v = score_vqa(preds, answers);
      t.emplace_back("acc_major", v.acc_class);
      t.emplace_back("acc_minor", v.acc_text);
      add_prf(t, "region_micro", v.accuracy, v.accuracy, v.accuracy);
      add_prf(t, "region_macro", v.macro_precision, v.macro_recall, v.macro_f1);
      for (int c = 0; c < kNumMajorClasses; ++c)
        if (v.present[static_cast<std::size_t>(c)])
          t.emplace_back("region_f1_" + slug(kMajorClasses[static_cast<std::size_t>(c)]), v.f1[static_cast<std::size_t>(c)]);
    }
    text_metrics(o, pairs, t, per_item);
    if (o.task == "report") {
      std::vector<Labels> lp, lr;
      for (const auto& p : pairs) {
        lp.push_back(extract_labels(p.pred));
        lr.push_back(extract_labels(p.ref));
      }
      const LabelScores ls = score_labels(lp, lr);
      add_prf(t, "ce_micro", ls.micro_precision, ls.micro_recall, ls.micro_f1);
      add_prf(t, "ce_macro", ls.macro_precision, ls.macro_recall, ls.macro_f1);
      t.emplace_back("ce_exact_match", ls.exact_match);
      for (std::size_t c = 0; c < static_cast<std::size_t>(kNumLabels); ++c)
        if (ls.support[c] + ls.fp[c] > 0) t.emplace_back("ce_f1_" + slug(kLabelNames[c]), ls.f1[c]);
    }
  } else if (o.task == "classification") {
    classification_metrics(o, *in, name, t);
  } else {
    retrieval_metrics(o, *in, name, t);
  }
  write_outputs(o, io, t, pairs, per_item);
  const int rc = check_fail_under(o, t);
  if (rc == 0 && (o.task == "retrieval" || o.task == "classification")) cli::summary("scored {} metrics", t.size());
  else if (rc == 0) cli::summary("scored {} items ({} metrics)", pairs.size(), t.size());
  return rc;
}

}  // namespace hse::eval
