#include <filesystem>
#include <istream>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"
#include <torch/torch.h>

#include "hse/io/h5.h"
#include "hse/model/clip.h"
#include "hse/search/topk.h"
#include "hse/app/retrieve.h"
#include "hse/text/wordpiece.h"
#include "hse/train/host.h"

namespace fs = std::filesystem;

namespace hse::retrieve {

void declare(CLI::App& app, Options& o) {
  app.add_option("--queries", o.queries, "query embeddings (HDF5 kind embeddings: reports or volumes)");
  app.add_option("--items", o.items, "item embeddings searched (HDF5 kind embeddings)")->required();
  app.add_option("--text", o.text, "'-': free-text queries from stdin, one per line (needs --model)");
  cli::flags::model(app, o.model, "CLIP checkpoint that encodes --text queries");
  app.add_option("-k,--top", o.k, "items per query (the default covers hse-eval's recall@100)")->default_val(100)->check(CLI::PositiveNumber);
  app.add_flag("--header", o.header, "print a header line");
  cli::add_common(app, o.common, cli::kThreads | cli::kVerbosity);
}

namespace {
struct Emb {
  std::vector<std::string> ids;
  torch::Tensor x;  // [N, D]
};
Emb load(const std::vector<std::string>& files) {
  h5::Reader r(files, "embeddings");
  if (!r.has_dataset("embeddings")) cli::fail_input(files.front(), "no dataset 'embeddings'");
  const auto shape = r.item_shape("embeddings");
  if (shape.size() != 1)
    cli::fail_input(files.front(), "embeddings are [N,{}...]: token embeddings (--tokens) cannot be searched", shape[0]);
  Emb e{r.ids(), torch::empty({static_cast<std::int64_t>(r.size()), static_cast<std::int64_t>(shape[0])})};
  for (std::size_t i = 0; i < r.size(); ++i) r.read("embeddings", i, e.x[static_cast<std::int64_t>(i)].data_ptr<float>());
  if (!torch::isfinite(e.x).all().item<bool>())
    cli::fail_input(files.front(), "the embeddings hold non-finite values (NaN or infinity): no ranking can use them");
  return e;
}
}  // namespace

int run(const Options& o, cli::Io& io) {
  torch::set_num_threads(cli::resolve_threads(o.common.threads));
  torch::NoGradGuard ng;
  if (o.queries.empty() == o.text.empty()) cli::fail_usage("give either --queries or --text -");
  const Emb items = load(o.items);
  Emb q;
  if (!o.text.empty()) {
    if (o.text != "-") cli::fail_usage("--text takes '-' (queries on stdin)");
    if (o.model.empty()) cli::fail_usage("--text needs --model (a CLIP checkpoint)");
    auto clip = model::load_clip(o.model);
    const auto tok = text::WordPieceTokenizer::from_file((fs::path(o.model) / "vocab.txt").string());
    std::string line;
    std::vector<text::Encoding> enc;
    while (std::getline(io.in, line)) {
      if (line.empty()) continue;
      q.ids.push_back(line);
      enc.push_back(tok.encode(text::hsenet_clean(line), 512, true, true));
    }
    if (enc.empty()) cli::fail_input("<stdin>", "no queries");
    auto ids = torch::empty({static_cast<std::int64_t>(enc.size()), 512}, torch::kLong), mask = torch::empty_like(ids);
    for (std::size_t i = 0; i < enc.size(); ++i) train::set_encoding_row(ids, mask, static_cast<std::int64_t>(i), enc[i]);
    q.x = clip->encode_text(ids, mask);
  } else {
    q = load(o.queries);
  }
  if (q.x.size(1) != items.x.size(1))
    cli::fail_input(o.items.front(), "embedding width {} differs from the queries' {}", items.x.size(1), q.x.size(1));
  // Cosine similarity (the embeddings are L2-normalised; normalised again to be safe), in blocks
  // with a running top-k: memory does not grow with queries x items.
  const double setup_s = cli::elapsed_s();  // embeddings loaded (and --text queries encoded)
  const auto [vals, idx] = search::cosine_topk(q.x, items.x, o.k);
  const std::int64_t k = vals.size(1), nq = vals.size(0);
  if (o.header) io.out << "query_id\trank\titem_id\tscore\n";
  const auto vals_c = vals.contiguous();
  const auto idx_c = idx.contiguous();
  const auto* v = vals_c.data_ptr<float>();
  const auto* ix = idx_c.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < nq; ++i) {
    for (std::int64_t r = 0; r < k; ++r)
      io.out << q.ids[static_cast<std::size_t>(i)] << '\t' << r + 1 << '\t'
             << items.ids[static_cast<std::size_t>(ix[i * k + r])] << '\t' << fmt::format("{:.6f}", v[i * k + r])
             << '\n';
    if (!io.out) return 0;  // closed pipe
  }
  cli::summary("ranked {} items for {} quer{} (top {}; {:.6f} s per query after {:.1f} s of set-up)", items.x.size(0), nq,
               nq == 1 ? "y" : "ies", k, (cli::elapsed_s() - setup_s) / static_cast<double>(std::max<std::int64_t>(1, nq)),
               setup_s);
  return 0;
}

}  // namespace hse::retrieve
