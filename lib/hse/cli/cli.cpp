#include "hse/cli/cli.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <H5public.h>
#include <fmt/ranges.h>

#include "hse/build_info.h"
#include "hse/cli/compat.h"
#include "hse/io/atomic.h"

#ifndef HSE_TORCH_VERSION
#define HSE_TORCH_VERSION "none"
#endif
#ifndef HSE_CUDA_VERSION
#define HSE_CUDA_VERSION "none"
#endif
#ifndef HSE_ITK_VERSION
#define HSE_ITK_VERSION "none"
#endif

namespace hse::cli {

std::string Error::line() const {
  if (file_.empty()) return what();
  return file_ + ": " + what();
}

std::pair<std::size_t, std::size_t> Shard::range(std::size_t n) const {
  const std::size_t b = n * static_cast<std::size_t>(index) / static_cast<std::size_t>(count);
  const std::size_t e = n * static_cast<std::size_t>(index + 1) / static_cast<std::size_t>(count);
  return {b, e};
}

Shard Shard::parse(const std::string& s) {
  Shard r;
  const auto slash = s.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    std::size_t p1 = 0, p2 = 0;
    r.index = std::stoi(s.substr(0, slash), &p1);
    r.count = std::stoi(s.substr(slash + 1), &p2);
    if (p1 != slash || p2 != s.size() - slash - 1) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    fail_usage("--shard: '{}' is not of the form I/N (e.g. 0/8)", s);
  }
  if (r.count < 1 || r.index < 0 || r.index >= r.count)
    fail_usage("--shard: '{}' needs 0 <= I < N", s);
  return r;
}

double parse_number(const std::string& s) {
  std::size_t p = 0;
  double v = 0;
  try {
    v = std::stod(s, &p);
  } catch (const std::exception&) {
    p = 0;
  }
  if (s.empty() || p != s.size() || !std::isfinite(v)) throw std::invalid_argument("'" + s + "' is not a number");
  return v;
}

std::int64_t parse_integer(const std::string& s) {
  std::size_t p = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &p);
  } catch (const std::exception&) {
    p = 0;
  }
  if (s.empty() || p != s.size()) throw std::invalid_argument("'" + s + "' is not an integer");
  return v;
}

void add_list_option(CLI::App& app, const std::string& name, std::size_t count, const std::string& help,
                     const std::string& type_name, const std::string& default_str,
                     const std::function<void(const std::vector<std::string>&)>& set) {
  const std::string flag = name.substr(name.rfind(',') == std::string::npos ? 0 : name.rfind(',') + 1);
  auto* opt = app.add_option_function<std::string>(
      name,
      [flag, count, set, type_name](const std::string& arg) {
        std::vector<std::string> parts;
        std::size_t start = 0;
        for (std::size_t i = 0; i <= arg.size(); ++i)
          if (i == arg.size() || arg[i] == ',') {
            std::string t = arg.substr(start, i - start);
            while (!t.empty() && t.front() == ' ') t.erase(t.begin());
            while (!t.empty() && t.back() == ' ') t.pop_back();
            parts.push_back(t);
            start = i + 1;
          }
        if (count ? parts.size() != count : (parts.size() == 1 && parts[0].empty()))
          fail_usage("{}: '{}' is not {} comma-separated values ({})", flag, arg,
                     count ? std::to_string(count) : std::string("a list of"), type_name);
        try {
          set(parts);
        } catch (const std::invalid_argument& e) {
          fail_usage("{}: {} in '{}' ({})", flag, e.what(), arg, type_name);
        }
      },
      help);
  opt->type_name(type_name);
  if (!default_str.empty()) opt->default_str(default_str);
}

namespace {
std::string exe_dir() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}
}  // namespace

std::string share_file(const std::string& rel) {
  namespace fs = std::filesystem;
  std::vector<fs::path> cands;
  if (const char* s = std::getenv("HSE_SHARE"); s && *s) cands.push_back(fs::path(s) / rel);
  const std::string e = exe_dir();
  if (!e.empty()) {
    cands.push_back(fs::path(e) / ".." / "share" / "hse" / rel);
    cands.push_back(fs::path(e) / ".." / ".." / "share" / "hse" / rel);
  }
  for (const auto& c : cands)
    if (fs::exists(c)) return fs::weakly_canonical(c).string();
  fail_input(rel, "not found under $HSE_SHARE or the installed share/hse (give the file explicitly)");
}

namespace {
// An argument that is an existing path, or a bare name of a file in share/hse/<dir> (with or
// without its extension `ext`); anything else is returned unchanged for its reader to name.
std::string path_or_share_name(const std::string& arg, const std::string& dir, const std::string& ext) {
  std::error_code ec;
  if (arg.empty() || std::filesystem::exists(arg, ec) || arg.find('/') != std::string::npos) return arg;
  const bool has_ext = arg.size() > ext.size() && arg.compare(arg.size() - ext.size(), ext.size(), ext) == 0;
  try {
    return share_file(dir + "/" + arg + (has_ext ? "" : ext));
  } catch (const Error&) {
    fail_input(arg, "no such file, and no file of that name in share/hse/{}", dir);
  }
}
}  // namespace

std::string config_file(const std::string& arg) { return path_or_share_name(arg, "configs", ".json"); }
std::string vocab_file(const std::string& arg) { return path_or_share_name(arg, "vocab", ".txt"); }

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

int parse_device(const std::string& device) {
  if (device == "cpu") return -1;
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) == 0) {
    const std::string n = device.substr(5);
    if (!n.empty() && n.find_first_not_of("0123456789") == std::string::npos) return std::stoi(n);
  }
  fail_usage("--device: '{}' is not one of cpu, cuda, cuda:N", device);
}

void add_common(CLI::App& app, Common& c, unsigned flags, const std::string& output_help) {
  if (flags & (kOutput | kOutputRequired)) {
    auto* o = app.add_option("-o,--output", c.output, output_help);
    if (flags & kOutputRequired) o->required();
  }
  if (flags & kDevice)
    app.add_option("--device", c.device, "compute device: cpu, cuda or cuda:N")->default_val("cpu");
  if (flags & kThreads)
    app.add_option("--threads", c.threads, "worker threads (0: all cores)")->default_val(0)->check(CLI::NonNegativeNumber);
  if (flags & kSeed) app.add_option("--seed", c.seed, "random seed")->default_val(42);
  if (flags & kShard)
    app.add_option_function<std::string>(
           "--shard", [&c](const std::string& s) { c.shard = Shard::parse(s); },
           "process only the I-th of N contiguous blocks of the inputs (0-based), for array jobs")
        ->type_name("I/N");
  if (flags & kVerbosity) {
    app.add_flag_function("-v,--verbose",
                          [&c](std::int64_t n) {
                            c.verbosity += static_cast<int>(n);
                            set_log_level(c.verbosity);
                          },
                          "more messages on stderr (repeatable)");
    app.add_flag_function("-q,--quiet",
                          [&c](std::int64_t) {
                            c.verbosity = -1;
                            set_log_level(-1);
                          },
                          "errors only on stderr");
  }
  if (flags & kProgress) {
    app.add_option_function<std::string>(
           "--progress",
           [&c](const std::string& s) {
             if (s == "auto") c.progress = ProgressMode::automatic;
             else if (s == "always") c.progress = ProgressMode::always;
             else if (s == "never") c.progress = ProgressMode::never;
             else fail_usage("--progress: '{}' is not one of auto, always, never", s);
           },
           "progress display on stderr: auto (a bar on a terminal, periodic lines otherwise), always, never")
        ->type_name("auto|always|never");
  }
}

Io standard_io() { return Io{std::cin, std::cout, std::cerr}; }

// ---- logging ---------------------------------------------------------------
namespace {
std::mutex g_log_mutex;
std::string g_tool = "hse";
int g_level = 0;
std::ostream* g_sink = nullptr;
bool g_bar_shown = false;           // a progress bar is drawn in place on the current line
std::set<std::string> g_warned;     // warnings already printed in this run
double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void set_log(const std::string& tool, int verbosity, std::ostream* sink) {
  std::lock_guard<std::mutex> lk(g_log_mutex);
  g_tool = tool;
  g_level = verbosity;
  g_sink = sink;
  g_warned.clear();
}
int log_level() { return g_level; }
void set_log_level(int verbosity) { g_level = verbosity; }
void log_line(int, const std::string& line) {
  std::lock_guard<std::mutex> lk(g_log_mutex);
  std::ostream& os = g_sink ? *g_sink : std::cerr;
  if (g_bar_shown) {  // clear the bar's line; the next tick redraws it below
    os << "\r\033[K";
    g_bar_shown = false;
  }
  os << g_tool << ": " << line << '\n';
  os.flush();
}
namespace {
double g_start = now_s();
bool g_nested = false;
}  // namespace
double elapsed_s() { return now_s() - g_start; }
void summary_line(const std::string& message) {
  if (!g_nested && log_level() >= 0) log_line(0, fmt::format("{} in {:.1f} s", message, elapsed_s()));
}
NestedRun::NestedRun() : previous_(g_nested) { g_nested = true; }
NestedRun::~NestedRun() { g_nested = previous_; }

void warn_line(const std::string& message) {
  {
    std::lock_guard<std::mutex> lk(g_log_mutex);
    if (!g_warned.insert(message).second) return;
  }
  log_line(-1, "warning: " + message);
}

// ---- progress --------------------------------------------------------------
Progress::Progress(std::string what, std::size_t total, ProgressMode mode)
    : what_(std::move(what)), total_(total), start_(now_s()), last_(start_) {
  quiet_ = mode == ProgressMode::never || log_level() < 0;
  bar_ = mode == ProgressMode::always || (mode == ProgressMode::automatic && isatty(STDERR_FILENO));
}
Progress::~Progress() {
  if (!finished_) finish();
}
void Progress::tick(std::size_t n) {
  done_ += n;
  const double t = now_s();
  if (quiet_) return;
  if (bar_ ? (t - last_ > 0.1) : (t - last_ > 10.0)) {
    last_ = t;
    draw(false);
  }
}
void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!quiet_ && (bar_ || now_s() - start_ > 10.0)) draw(true);
}
void Progress::draw(bool final) {
  const double el = now_s() - start_;
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const double eta = done_ ? el / static_cast<double>(done_) * static_cast<double>(total_ - std::min(done_, total_)) : 0;
  std::lock_guard<std::mutex> lk(g_log_mutex);
  std::ostream& os = g_sink ? *g_sink : std::cerr;
  if (bar_) {
    const int w = 30, filled = static_cast<int>(frac * w);
    os << '\r' << g_tool << ": " << what_ << " [" << std::string(filled, '#') << std::string(w - filled, ' ') << "] "
       << done_ << '/' << total_ << fmt::format(" {:.0f}s", final ? el : eta) << (final ? " done\n" : " left ");
    g_bar_shown = !final;
  } else {
    os << g_tool << ": " << what_ << ' ' << done_ << '/' << total_ << fmt::format(" ({:.0f}%, {:.0f}s elapsed)\n", 100 * frac, el);
  }
  os.flush();
}

// ---- version ---------------------------------------------------------------
std::string version_line(const std::string& tool) {
  return fmt::format("{} {} (git {}; LibTorch {}; CUDA {}; HDF5 {}.{}.{}; ITK {})", tool, HSE_VERSION, HSE_GIT,
                     HSE_TORCH_VERSION, HSE_CUDA_VERSION, H5_VERS_MAJOR, H5_VERS_MINOR, H5_VERS_RELEASE,
                     HSE_ITK_VERSION);
}

std::string joined_args(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    if (plain) {
      s += a;
    } else {
      s += '\'';
      for (char ch : a) s += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
      s += '\'';
    }
  }
  return s;
}

// ---- the wrapper -----------------------------------------------------------
namespace {
// A one-line rendering of CLI11's message (which may span lines).
std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& ch : s)
    if (ch == '\n') ch = ' ';
  return s;
}

// A library's exception (LibTorch's c10::Error above all) as one line: its message without the
// C++ backtrace LibTorch appends ("Exception raised from ... frame #0: ..."), shortened.
std::string library_line(const std::string& what) {
  std::string s = what;
  for (const char* cut : {"Exception raised from", "\nframe #", "frame #0:"}) {
    const auto at = s.find(cut);
    if (at != std::string::npos) s.erase(at);
  }
  s = one_line(s);
  if (s.size() > 400) s = s.substr(0, 400) + "...";
  return s;
}

// Whether a library's message is an allocation failure (exit 4, not 1).
bool is_memory_error(const std::string& what) {
  for (const char* k : {"can't allocate memory", "CUDA out of memory", "out of memory", "Tried to allocate"})
    if (what.find(k) != std::string::npos) return true;
  return false;
}
}  // namespace

namespace {
std::vector<std::string> g_args;

// Flag names of one (sub)command and the choices of flags typed "a|b|c".
void flag_words(CLI::App& app, std::vector<std::string>& words, std::vector<std::pair<std::string, std::string>>& choices) {
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional()) continue;
    std::vector<std::string> names;
    for (const auto& n : opt->get_lnames()) names.push_back("--" + n);
    for (const auto& n : opt->get_snames()) names.push_back("-" + n);
    std::string type = opt->get_type_name();
    const bool listed = type.find('|') != std::string::npos && type.find_first_of(" [<") == std::string::npos;
    for (const auto& n : names) {
      words.push_back(n);
      if (listed) {
        std::string w = type;
        for (auto& c : w)
          if (c == '|') c = ' ';
        choices.emplace_back(n, w);
      }
    }
  }
}

std::string shell_name(const std::string& tool) {
  std::string f = "_" + tool;
  for (auto& c : f)
    if (c == '-') c = '_';
  return f;
}

// A bash completion script for a tool, generated from its flag declarations
// (what `hse-<verb> --bash-completion` prints; the build installs them under
// share/bash-completion/completions): flags, subcommands, and the values of
// flags whose type is a list of choices ("auto|always|never").
std::string bash_completion(const std::string& tool, CLI::App& app) {
  std::vector<std::string> words;
  std::vector<std::pair<std::string, std::string>> choices;
  flag_words(app, words, choices);
  const auto subs = app.get_subcommands([](CLI::App*) { return true; });
  std::string out = fmt::format("# bash completion for {} (generated from its flag declarations by {} --bash-completion)\n", tool, tool);
  out += fmt::format("{}() {{\n  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} words\n", shell_name(tool));
  auto choice_case = [&](const std::vector<std::pair<std::string, std::string>>& ch, const std::string& indent) {
    if (ch.empty()) return std::string();
    std::string s = indent + "case $prev in\n";
    for (const auto& [flag, w] : ch) s += fmt::format("{}  {}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return ;;\n", indent, flag, w);
    return s + indent + "esac\n";
  };
  out += choice_case(choices, "  ");
  if (!subs.empty()) {
    std::string names;
    for (auto* s : subs) names += (names.empty() ? "" : " ") + s->get_name();
    out += fmt::format("  if [ \"$COMP_CWORD\" = 1 ]; then COMPREPLY=($(compgen -W \"{} --help --version\" -- \"$cur\")); return; fi\n", names);
    out += "  case ${COMP_WORDS[1]} in\n";
    for (auto* s : subs) {
      std::vector<std::string> sw;
      std::vector<std::pair<std::string, std::string>> sc;
      flag_words(*s, sw, sc);
      out += fmt::format("    {})\n{}      words=\"{}\" ;;\n", s->get_name(), choice_case(sc, "      "), fmt::join(sw, " "));
    }
    out += "  esac\n";
  } else {
    out += fmt::format("  words=\"{}\"\n", fmt::join(words, " "));
  }
  out += "  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")); else COMPREPLY=($(compgen -f -- \"$cur\")); fi\n}\n";
  out += fmt::format("complete -o filenames -F {} {}\n", shell_name(tool), tool);
  return out;
}
}  // namespace
const std::vector<std::string>& current_args() { return g_args; }

int run(const std::string& tool, const std::string& description, const std::vector<std::string>& args,
        const std::function<void(CLI::App&)>& declare, const std::function<int(Io&)>& body, Io& io) {
  g_args.assign(1, tool);
  if (!g_nested) g_start = now_s();
  g_args.insert(g_args.end(), args.begin(), args.end());
  CLI::App app(description, tool);
  app.set_version_flag("--version", [tool] { return version_line(tool); }, "print versions and exit");
  app.get_formatter()->column_width(34);
  try {
    declare(app);
    if (args.size() == 1 && args[0] == "--bash-completion") {  // not a flag: the build's hook
      io.out << bash_completion(tool, app);
      return 0;
    }
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    io.out << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    io.out << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    io.out << e.what() << '\n';
    return 0;
  } catch (const CLI::ParseError& e) {
    // A tool with subcommands (hse-eval): name a mistyped one plainly.
    const auto subs = app.get_subcommands([](CLI::App*) { return true; });
    if (!subs.empty() && !args.empty() && !args[0].empty() && args[0][0] != '-' &&
        std::none_of(subs.begin(), subs.end(), [&](const CLI::App* s) { return s->check_name(args[0]); })) {
      std::string names;
      for (const auto* s : subs) names += (names.empty() ? "" : ", ") + s->get_name();
      io.err << tool << ": unknown subcommand '" << args[0] << "' (one of: " << names << ")\n";
      return static_cast<int>(Exit::usage);
    }
    io.err << tool << ": " << one_line(e.what()) << '\n' << tool << ": hint: see '" << tool << " --help'\n";
    return static_cast<int>(Exit::usage);
  } catch (const Error& e) {
    io.err << tool << ": " << e.line() << '\n';
    return static_cast<int>(e.code());
  }
  try {
    return body(io);
  } catch (const Error& e) {
    io.err << tool << ": " << e.line() << '\n';
    if (!e.hint().empty()) io.err << tool << ": hint: " << e.hint() << '\n';
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    io.err << tool << ": out of memory\n";
    return static_cast<int>(Exit::resource);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (is_memory_error(what)) {
      io.err << tool << ": out of memory: " << library_line(what) << '\n';
      return static_cast<int>(Exit::resource);
    }
    io.err << tool << ": " << library_line(what) << '\n';
    return static_cast<int>(Exit::runtime);
  }
}

int main(const std::string& tool, const std::string& description, int argc, char** argv,
         const std::function<void(CLI::App&)>& declare, const std::function<int(Io&)>& body) {
  std::ios::sync_with_stdio(false);
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe shows up as a failed write, handled as success
  io::install_cleanup_handlers();
  set_log(tool, 0);
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  Io io = standard_io();
  const int rc = run(tool, description, args, declare, body, io);
  std::cout.flush();
  if (rc == 0 && !std::cout.good() && errno != EPIPE) {
    std::cerr << tool << ": error writing to standard output\n";
    return static_cast<int>(Exit::runtime);
  }
  return rc;
}

void add_compat_option(CLI::App& app, std::string& compat, const std::string& effects) {
  app.add_option("--compat", compat, "hsenet: HSENet's code literally, quirks included: " + effects)
      ->check(CLI::IsMember({kCompatHsenet}));
}

}  // namespace hse::cli
