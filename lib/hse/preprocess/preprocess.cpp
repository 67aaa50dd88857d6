#include "hse/preprocess/preprocess.h"

#include <chrono>

#include <CLI/CLI.hpp>

#include "hse/cli/parallel.h"
#include "hse/io/atomic.h"
#include "hse/io/h5.h"

namespace hse::preprocess {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common, cli::kOutputRequired | cli::kDevice | cli::kThreads | cli::kShard | cli::kVerbosity | cli::kProgress,
                  "output HDF5 file (kind volumes)");
  image::add_ct_input_options(app, o.input);
  app.add_option("--window", o.window, "HU window LO HI: values are clamped to it")->delimiter(',')->default_str("-1000,200");
  app.add_option("--spacing", o.spacing, "target spacing Z XY in mm")->delimiter(',')->default_str("1.5,0.75");
  app.add_option("--size", o.size, "output size D H W (0 keeps that axis's size)")->delimiter(',')->default_str("32,256,256");
  app.add_flag("--no-crop", o.no_crop, "do not crop to the foreground (voxels > 0 after min-max)");
  app.add_flag("--no-resample", o.no_resample, "do not resample to --spacing");
  app.add_option("--dtype", o.dtype, "stored type: float32 or float16")->default_val("float32")->check(CLI::IsMember({"float32", "float16"}));
  app.add_flag("--keep-going", o.keep_going, "write the volumes that succeed, list failures, exit 1 if any failed");
  app.add_option("--failures", o.failures, "with --keep-going: write the failed inputs and reasons (TSV) here");
}

namespace {
struct Item {
  std::string id;
  image::Array3 a;
};
}  // namespace

int run(const Options& o, cli::Io& io) {
  if (o.window[0] >= o.window[1]) cli::fail_usage("--window: LO must be below HI");
  if (o.spacing[0] <= 0 || o.spacing[1] <= 0) cli::fail_usage("--spacing: values must be positive");
  for (auto s : o.size)
    if (s < 0 || s > 4096) cli::fail_usage("--size: values must be in 0..4096");
  const int device = cli::parse_device(o.common.device);
  if (device >= 0) {
    if (!kernels::cuda_compiled())
      throw cli::Error(cli::Exit::resource, "", "--device cuda: this hse was built without CUDA");
    if (device >= kernels::cuda_device_count())
      throw cli::Error(cli::Exit::resource, "", fmt::format("--device {}: no such CUDA device", o.common.device));
  }
  const h5::DType dtype = h5::parse_dtype(o.dtype);
  const image::HuMode hu_mode = image::parse_hu_mode(o.input.hu);
  const image::Metadata meta = o.input.metadata.empty() ? image::Metadata() : image::Metadata(o.input.metadata);
  std::vector<std::string> inputs = image::collect_inputs(o.input, meta, io.in);
  const auto [b, e] = o.common.shard.range(inputs.size());
  inputs = std::vector<std::string>(inputs.begin() + static_cast<std::ptrdiff_t>(b), inputs.begin() + static_cast<std::ptrdiff_t>(e));
  if (inputs.empty()) cli::fail_usage("shard {}/{} has no inputs", o.common.shard.index, o.common.shard.count);

  image::VolumeRecipe recipe;
  recipe.window_lo = o.window[0];
  recipe.window_hi = o.window[1];
  recipe.resample = !o.no_resample;
  recipe.target_z = o.spacing[0];
  recipe.target_xy = o.spacing[1];
  recipe.crop = !o.no_crop;
  recipe.size = o.size;
  recipe.device = device;

  h5::Writer w(o.common.output, "volumes");
  std::unique_ptr<io::AtomicFile> failures;
  if (!o.failures.empty()) failures = std::make_unique<io::AtomicFile>(o.failures);
  const int threads = cli::resolve_threads(o.common.threads);
  const int workers = device >= 0 ? 1 : std::max(1, std::min<int>(static_cast<int>(inputs.size()), (threads + 1) / 2));
  const int inner = std::max(1, threads / workers);
  cli::verbose("{} inputs, {} workers x {} threads", inputs.size(), workers, inner);

  bool declared = false;
  std::array<std::int64_t, 3> declared_shape{0, 0, 0};
  std::size_t failed = 0;
  cli::Progress progress("preprocess", inputs.size(), o.common.progress);
  cli::ordered_map<Item>(
      inputs.size(), workers, inner,
      [&](std::size_t i, int nt) {
        const std::string& path = inputs[i];
        try {
          const auto t0 = std::chrono::steady_clock::now();
          image::LoadedCt ct = image::load_ct(path, meta, hu_mode);
          const auto t1 = std::chrono::steady_clock::now();
          Item item{ct.id, image::preprocess_volume(ct.volume, ct.hu, ct.spacing_zxy, recipe, nt)};
          const auto t2 = std::chrono::steady_clock::now();
          cli::verbose("{}: read {:.3f} s, steps {:.3f} s", path, std::chrono::duration<double>(t1 - t0).count(),
                       std::chrono::duration<double>(t2 - t1).count());
          return item;
        } catch (const cli::Error& err) {
          if (err.file().empty()) throw cli::Error(err.code(), path, err.what(), err.hint());
          throw;
        } catch (const std::bad_alloc&) {
          throw cli::Error(cli::Exit::resource, path, "out of memory");
        } catch (const std::runtime_error& err) {
          throw cli::Error(device >= 0 ? cli::Exit::resource : cli::Exit::runtime, path, err.what());
        }
      },
      [&](std::size_t i, Item&& it) {
        if (!declared) {
          declared_shape = {it.a.d, it.a.h, it.a.w};
          w.add_dataset("volumes", dtype, {1, static_cast<std::uint64_t>(it.a.d), static_cast<std::uint64_t>(it.a.h),
                                           static_cast<std::uint64_t>(it.a.w)});
          declared = true;
        }
        if (it.a.d != declared_shape[0] || it.a.h != declared_shape[1] || it.a.w != declared_shape[2])
          cli::fail_input(inputs[i], "gives {}x{}x{} voxels but the first volume gave {}x{}x{}; volumes in one file "
                          "share a shape (set every --size value)", it.a.d, it.a.h, it.a.w, declared_shape[0],
                          declared_shape[1], declared_shape[2]);
        w.append("volumes", it.a.v.data());
        w.add_id(it.id);
        progress.tick();
      },
      [&](std::size_t i, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const cli::Error& err) {
          if (!o.keep_going) throw;
          ++failed;
          progress.tick();
          cli::log_line(-1, "failed: " + err.line());
          if (failures) failures->stream() << inputs[i] << '\t' << err.what() << '\n';
        }
      });
  progress.finish();
  if (!declared) {
    // Every input failed: no output file is written.
    cli::fail(cli::Exit::runtime, o.common.output, "no volume could be processed ({} failed)", failed);
  }
  w.set_attr("window", std::vector<double>{o.window[0], o.window[1]});
  w.set_attr("spacing", std::vector<double>{o.spacing[0], o.spacing[1]});
  w.set_attr("size", std::vector<std::int64_t>{o.size[0], o.size[1], o.size[2]});
  w.set_attr("resample", static_cast<std::int64_t>(!o.no_resample));
  w.set_attr("crop", static_cast<std::int64_t>(!o.no_crop));
  w.set_attr("hu", o.input.hu);
  w.set_attr("layout", std::string("N,1,Z,X,Y"));
  w.set_attr("recipe", std::string("hsenet-3d"));
  w.add_provenance({h5::provenance_record("hse-preprocess", cli::current_args())});
  w.commit();
  if (failures) failures->commit();
  cli::info("wrote {} volumes to {}{}", w.ids_size(), o.common.output,
            failed ? fmt::format(" ({} failed)", failed) : std::string());
  return failed ? static_cast<int>(cli::Exit::runtime) : 0;
}

}  // namespace hse::preprocess
