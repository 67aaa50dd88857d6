// hse::cli — the contract every hse tool shares: exit codes, the typed error,
// the common flags (declared here once), logging and progress on stderr, and
// the run() wrapper that turns exceptions into one-line messages and exit codes.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>
#include <functional>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace CLI {
class App;
}

namespace hse::cli {

// Exit codes: documented in man/hse.7 and every tool's man page.
enum class Exit : int {
  ok = 0,            // success (a closed pipe on text output counts as success)
  runtime = 1,       // runtime failure: an output could not be written, some items failed (--keep-going)
  usage = 2,         // usage error: unknown option, missing or malformed argument
  incompatible = 3,  // an input cannot be used: missing, unreadable, malformed, wrong kind/version/shape
  resource = 4,      // a resource is unavailable: no GPU for --device cuda, out of memory
  check_failed = 5,  // a requested check failed (hse-eval --fail-under)
};

// The typed error. Library code throws it; only run() prints it.
// `what()` is the message without the tool name; `file` (optional) is prefixed.
class Error : public std::runtime_error {
 public:
  Error(Exit code, std::string file, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), code_(code), file_(std::move(file)), hint_(std::move(hint)) {}
  Exit code() const { return code_; }
  const std::string& file() const { return file_; }
  const std::string& hint() const { return hint_; }
  // "file: message" (or "message" when no file is named)
  std::string line() const;

 private:
  Exit code_;
  std::string file_;
  std::string hint_;
};

template <typename... A>
[[noreturn]] void fail(Exit code, const std::string& file, fmt::format_string<A...> f, A&&... a) {
  throw Error(code, file, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
[[noreturn]] void fail_input(const std::string& file, fmt::format_string<A...> f, A&&... a) {
  throw Error(Exit::incompatible, file, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
[[noreturn]] void fail_usage(fmt::format_string<A...> f, A&&... a) {
  throw Error(Exit::usage, {}, fmt::format(f, std::forward<A>(a)...));
}

// --shard I/N: this process handles the I-th of N contiguous blocks (0-based).
struct Shard {
  int index = 0;
  int count = 1;
  // [begin, end) of the items this shard owns out of n.
  std::pair<std::size_t, std::size_t> range(std::size_t n) const;
  // The block of `v` this shard owns.
  template <typename T>
  std::vector<T> take(const std::vector<T>& v) const {
    const auto [b, e] = range(v.size());
    return std::vector<T>(v.begin() + static_cast<std::ptrdiff_t>(b), v.begin() + static_cast<std::ptrdiff_t>(e));
  }
  static Shard parse(const std::string& s);  // throws usage errors
};

enum class ProgressMode { automatic, always, never };

// Options every tool may take. Each tool declares the subset it uses through
// add_common(); the flag names, help texts and checks live only here.
struct Common {
  std::string output;              // -o
  std::string device = "cpu";      // --device cpu|cuda[:N]
  int threads = 0;                 // --threads (0: all available cores)
  std::uint64_t seed = 42;         // --seed
  Shard shard;                     // --shard I/N
  int verbosity = 0;               // -v (+1 each) / -q (-1)
  ProgressMode progress = ProgressMode::automatic;  // --progress
};

enum CommonFlag : unsigned {
  kOutput = 1u << 0,
  kOutputRequired = 1u << 1,
  kDevice = 1u << 2,
  kThreads = 1u << 3,
  kSeed = 1u << 4,
  kShard = 1u << 5,
  kVerbosity = 1u << 6,
  kProgress = 1u << 7,
  kAllCommon = kOutput | kDevice | kThreads | kSeed | kShard | kVerbosity | kProgress,
};

// Declares the common flags selected by `flags` on `app`, bound to `c`.
void add_common(CLI::App& app, Common& c, unsigned flags, const std::string& output_help = "output file");

// A comma-separated list option taking exactly one argument ("16,64,64"), so
// that a short list cannot swallow the next flag. `count` values exactly
// (0: any number, at least one); each value is converted by `set` (which may
// throw std::invalid_argument); errors are usage errors naming the flag.
void add_list_option(CLI::App& app, const std::string& name, std::size_t count, const std::string& help,
                     const std::string& type_name, const std::string& default_str,
                     const std::function<void(const std::vector<std::string>&)>& set);

double parse_number(const std::string& s);       // the whole string as a number, else std::invalid_argument
std::int64_t parse_integer(const std::string& s);  // the whole string as an integer, else std::invalid_argument

template <typename T, std::size_t N>
void add_list(CLI::App& app, const std::string& name, std::array<T, N>& out, const std::string& help,
              const std::string& type_name) {
  std::string def;
  for (const T& v : out) def += (def.empty() ? "" : ",") + fmt::format("{}", v);
  add_list_option(app, name, N, help, type_name, def, [&out](const std::vector<std::string>& v) {
    for (std::size_t i = 0; i < N; ++i)
      out[i] = static_cast<T>(std::is_integral_v<T> ? static_cast<double>(parse_integer(v[i])) : parse_number(v[i]));
  });
}
template <typename T>
void add_list(CLI::App& app, const std::string& name, std::vector<T>& out, std::size_t count, const std::string& help,
              const std::string& type_name) {
  std::string def;
  for (const T& v : out) def += (def.empty() ? "" : ",") + fmt::format("{}", v);
  add_list_option(app, name, count, help, type_name, def, [&out](const std::vector<std::string>& v) {
    out.clear();
    for (const auto& x : v) {
      if constexpr (std::is_same_v<T, std::string>) out.push_back(x);
      else if constexpr (std::is_integral_v<T>) out.push_back(static_cast<T>(parse_integer(x)));
      else out.push_back(static_cast<T>(parse_number(x)));
    }
  });
}

// A file under share/hse (e.g. "prompts/caption.txt"): $HSE_SHARE/<rel>, else
// <exe>/../share/hse/<rel> (an installed prefix, wherever it was moved), else
// <exe>/../../share/hse/<rel> (build/bin in a clone). Throws exit 3 when none exists.
std::string share_file(const std::string& rel);
// A config argument (--vision-config, --text-model, --vit2d-config, --init-llm): an
// existing path as given, else a bare name ("vit3d-tiny" or "vit3d-tiny.json") from
// share/hse/configs; anything else is returned unchanged (its reader names it).
std::string config_file(const std::string& arg);
// A --vocab argument: an existing path as given, else a bare name ("bert-base-uncased")
// from share/hse/vocab/<name>.txt.
std::string vocab_file(const std::string& arg);

// The number of worker threads `--threads` resolves to (all cores when 0).
int resolve_threads(int requested);

// Parses --device: "cpu", "cuda" or "cuda:N". Returns -1 for cpu, else the GPU index.
int parse_device(const std::string& device);

// Streams a tool reads and writes; tests pass string streams.
struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};
Io standard_io();

// Logging to stderr, prefixed with the tool name. Level: -1 quiet (errors only),
// 0 warnings+info, 1 verbose (-v), 2 debug (-vv).
void set_log(const std::string& tool, int verbosity, std::ostream* sink = nullptr);
int log_level();
void set_log_level(int verbosity);
void log_line(int level, const std::string& line);
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) {
  if (log_level() >= 0) log_line(0, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void verbose(fmt::format_string<A...> f, A&&... a) {
  if (log_level() >= 1) log_line(1, fmt::format(f, std::forward<A>(a)...));
}
// Warnings obey -q, and each distinct warning is printed once per run (a tool
// that reads one file twice, e.g. for the 3-D and the 2-D branch, warns once).
void warn_line(const std::string& message);
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) {
  if (log_level() >= 0) warn_line(fmt::format(f, std::forward<A>(a)...));
}

// The tool's closing line on stderr, "wrote 12 volumes to v.h5 in 3.4 s": the
// message plus the seconds since run() began. Silent inside a NestedRun (a
// tool that calls another tool's run() in-process speaks for both).
double elapsed_s();
void summary_line(const std::string& message);
template <typename... A>
void summary(fmt::format_string<A...> f, A&&... a) {
  summary_line(fmt::format(f, std::forward<A>(a)...));
}
class NestedRun {
 public:
  NestedRun();
  ~NestedRun();
  NestedRun(const NestedRun&) = delete;
  NestedRun& operator=(const NestedRun&) = delete;

 private:
  bool previous_;
};

// Progress on stderr: a bar redrawn in place when stderr is a terminal
// (or --progress always), otherwise one status line every `interval` seconds.
class Progress {
 public:
  Progress(std::string what, std::size_t total, ProgressMode mode);
  ~Progress();
  void tick(std::size_t n = 1);
  void finish();

 private:
  void draw(bool final);
  std::string what_;
  std::size_t total_, done_ = 0;
  bool bar_, quiet_, finished_ = false;
  double start_, last_;
};

// The tool wrapper: declares --help/--version and the tool's flags through
// `declare`, parses, and calls `body`. Prints errors as one line
// "<tool>: <file>: <message>" (plus "hint: ..." when given) and returns the exit code.
int main(const std::string& tool, const std::string& description, int argc, char** argv,
         const std::function<void(CLI::App&)>& declare, const std::function<int(Io&)>& body);

// The same, for tests: parses `args` (without argv[0]) and runs with the given streams.
int run(const std::string& tool, const std::string& description, const std::vector<std::string>& args,
        const std::function<void(CLI::App&)>& declare, const std::function<int(Io&)>& body, Io& io);

// One line of version information: tool, git, LibTorch, CUDA, HDF5, ITK.
std::string version_line(const std::string& tool);

// The current tool's command line (tool name first), for provenance records.
const std::vector<std::string>& current_args();

// The command line as one string (for provenance records).
std::string joined_args(const std::vector<std::string>& argv);

}  // namespace hse::cli
