#include "hse/app/preprocess.h"

#include <chrono>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"

#include "hse/cli/compat.h"
#include "hse/image/ct_batch.h"
#include "hse/io/atomic.h"
#include "hse/io/h5.h"

namespace hse::preprocess {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common, cli::kOutputRequired | cli::kDevice | cli::kThreads | cli::kShard | cli::kVerbosity | cli::kProgress,
                  "output HDF5 file (kind volumes)");
  image::add_ct_input_options(app, o.input);
  cli::flags::hu_window(app, o.window, "HU window: values are clamped to it");
  cli::flags::spacing(app, o.spacing);
  cli::add_list(app, "--size", o.size, "output size (0 keeps that axis's size)", "D,H,W");
  app.add_flag("--no-crop", o.no_crop, "do not crop to the foreground (voxels > 0 after min-max)");
  cli::flags::no_resample(app, o.no_resample);
  cli::flags::storage_dtype(app, o.dtype);
  cli::add_compat_option(app, o.compat,
                         "a known slope and intercept (--metadata, --rescale-slope/--rescale-intercept) applied to "
                         "every file, CT-RATE v2's HU files included, and XYSpacing's first value for both in-plane "
                         "axes");
  image::add_batch_options(app, o.batch);
}

Recipe recipe_of(const Options& o) {
  Recipe r;
  r.window = o.window;
  r.spacing = o.spacing;
  r.size = o.size;
  r.resample = !o.no_resample;
  r.crop = !o.no_crop;
  r.hu = o.input.hu;
  r.compat = o.compat;
  return r;
}

void apply(const Recipe& r, Options& o) {
  o.window = r.window;
  o.spacing = r.spacing;
  o.size = r.size;
  o.no_resample = !r.resample;
  o.no_crop = !r.crop;
  o.compat = r.compat;
}

int run(const Options& oin, cli::Io& io) {
  Options o = oin;
  if (o.compat == cli::kCompatHsenet) image::apply_hsenet_compat(o.input);
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
  std::vector<std::uint64_t> declared;
  const auto res = image::run_ct_batch(
      "preprocess", o.common.output, o.common, o.input, o.batch, io.in, device >= 0 ? 1 : 1 << 20,
      [&](image::LoadedCt& ct, int nt) {
        image::Array3 a = image::preprocess_volume(ct.volume, ct.hu, ct.spacing_zxy, recipe, nt);
        return image::BatchItem{std::move(a.v), {1, static_cast<std::uint64_t>(a.d), static_cast<std::uint64_t>(a.h),
                                                 static_cast<std::uint64_t>(a.w)}};
      },
      [&](const std::string& id, image::BatchItem&& it) {
        if (declared.empty()) {
          declared = it.shape;
          w.add_dataset("volumes", dtype, declared);
        }
        if (it.shape != declared)
          cli::fail_input(id, "gives {}x{}x{} voxels but the first volume gave {}x{}x{}; volumes in one file share a "
                          "shape (set every --size value)", it.shape[1], it.shape[2], it.shape[3], declared[1],
                          declared[2], declared[3]);
        w.append("volumes", it.values.data());
        w.add_id(id);
      });
  recipe_of(o).write(w);
  w.add_provenance({h5::provenance_record("hse-preprocess", cli::current_args())});
  w.commit();
  cli::summary("wrote {} volumes to {}{}", res.written, o.common.output,
            res.failed ? fmt::format(" ({} failed)", res.failed) : std::string());
  return res.failed ? static_cast<int>(cli::Exit::runtime) : 0;
}

}  // namespace hse::preprocess
