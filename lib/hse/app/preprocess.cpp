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
  o.recipe.declare(app, "HU window: values are clamped to it");
  cli::add_list(app, "--size", o.recipe.size, "output size (0 keeps that axis's size)", "D,H,W");
  app.add_flag_callback("--no-crop", [&o] { o.recipe.crop = false; },
                        "do not crop to the foreground (voxels > 0 after min-max)");
  cli::flags::storage_dtype(app, o.dtype);
  cli::flags::compression(app, o.compression);
  cli::add_compat_option(app, o.recipe.compat,
                         "a known slope and intercept (--metadata, --rescale-slope/--rescale-intercept) applied to "
                         "every file, CT-RATE v2's HU files included, and XYSpacing's first value for both in-plane "
                         "axes");
  image::add_batch_options(app, o.batch);
}

int run(const Options& oin, cli::Io& io) {
  Options o = oin;
  if (o.recipe.compat == cli::kCompatHsenet) image::apply_hsenet_compat(o.input);
  o.recipe.hu = o.input.hu;
  o.recipe.check();
  for (auto s : o.recipe.size)
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
  recipe.window_lo = o.recipe.window[0];
  recipe.window_hi = o.recipe.window[1];
  recipe.resample = o.recipe.resample;
  recipe.target_z = o.recipe.spacing[0];
  recipe.target_xy = o.recipe.spacing[1];
  recipe.crop = o.recipe.crop;
  recipe.size = o.recipe.size;
  recipe.device = device;

  h5::Writer w(o.common.output, "volumes");
  w.set_codec(h5::parse_codec(o.compression));
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
  o.recipe.write(w);
  w.add_provenance({h5::provenance_record("hse-preprocess", cli::current_args())});
  w.commit();
  cli::summary("wrote {} volumes to {}{}", res.written, o.common.output,
            res.failed ? fmt::format(" ({} failed)", res.failed) : std::string());
  return res.failed ? static_cast<int>(cli::Exit::runtime) : 0;
}

}  // namespace hse::preprocess
