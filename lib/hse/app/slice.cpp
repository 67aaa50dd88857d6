#include "hse/app/slice.h"

#include <filesystem>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"

#include "hse/cli/compat.h"
#include "hse/image/ct_batch.h"
#include "hse/image/slice_ops.h"
#include "hse/io/atomic.h"
#include "hse/io/h5.h"

namespace hse::slice {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common, cli::kOutputRequired | cli::kThreads | cli::kShard | cli::kVerbosity | cli::kProgress,
                  "output HDF5 file (kind slices)");
  image::add_ct_input_options(app, o.input);
  o.recipe.declare(app, "HU window: values are clamped to it, then divided by 1000 (ct-rate)");
  app.add_option("--dataset", o.recipe.dataset,
                 "whose HSENet 2-D script: ct-rate (clamp to --window, resample to --spacing, /1000, each slice's "
                 "min-max, rotate clockwise) or bimcv-r (no clamp, no resampling, linspace over the file's own Z "
                 "slices, the volume's min-max (each slice's own for files over 200 MiB), rotate counter-clockwise)")
      ->default_val("ct-rate")
      ->check(CLI::IsMember({"ct-rate", "bimcv-r"}));
  app.add_option("--slices", o.recipe.n_slices, "slices per volume (linspace over Z; a trilinear resize when Z is smaller)")
      ->default_val(32)
      ->check(CLI::Range(1, 1024));
  app.add_option("--jpeg-quality", o.recipe.jpeg_quality,
                 "JPEG round trip of each 8-bit slice at this quality (95 reproduces HSENet's JPEG files); 0: none")
      ->default_val(0)
      ->check(CLI::Range(0, 100));
  cli::add_compat_option(app, o.recipe.compat,
                         "slices along X (sagittal) when a volume has at least as many slices as columns, "
                         "--jpeg-quality 95, a known slope and intercept applied to every file, and XYSpacing's first "
                         "value for both in-plane axes");
  app.add_option("--image-size", o.recipe.image_size, "short side after the bicubic resize, and the centre crop")
      ->default_val(224)
      ->check(CLI::Range(1, 4096));
  cli::flags::storage_dtype(app, o.dtype);
  cli::flags::compression(app, o.compression);
  image::add_batch_options(app, o.batch);
}

int run(const Options& oin, cli::Io& io) {
  Options o = oin;
  auto& rc = o.recipe;
  const bool hsenet = rc.compat == cli::kCompatHsenet;
  if (hsenet) image::apply_hsenet_compat(o.input);
  rc.hu = o.input.hu;
  const bool bimcv = rc.dataset == "bimcv-r";
  if (bimcv) {
    const Recipe defaults;
    const std::array<double, 2> none{-Recipe::kNoClamp, Recipe::kNoClamp};
    if (rc.window != defaults.window && rc.window != none)
      cli::fail_usage("--window: the bimcv-r recipe does not clamp (HSENet's BIMCV-R slices keep the raw values)");
    if (rc.spacing != defaults.spacing)
      cli::fail_usage("--spacing: the bimcv-r recipe does not resample (HSENet slices BIMCV-R files as stored)");
    rc.window = none;
    rc.resample = false;
  }
  rc.check();
  if (rc.n_slices < 1) cli::fail_usage("--slices: must be positive");
  if (rc.jpeg_quality < 0 || rc.jpeg_quality > 100) cli::fail_usage("--jpeg-quality: must be in 0..100");
  if (rc.image_size < 1) cli::fail_usage("--image-size: must be positive");
  if (hsenet && rc.jpeg_quality == 0) rc.jpeg_quality = 95;  // HSENet's slices went through JPEG q95
  const h5::DType dtype = h5::parse_dtype(o.dtype);

  image::SliceRecipe recipe;
  recipe.n_slices = rc.n_slices;
  recipe.jpeg_quality = static_cast<int>(rc.jpeg_quality);
  recipe.image_size = rc.image_size;
  recipe.rotate_ccw = bimcv;
  recipe.resize_short = !bimcv;

  h5::Writer w(o.common.output, "slices");
  w.set_codec(h5::parse_codec(o.compression));
  const std::uint64_t S = static_cast<std::uint64_t>(rc.image_size);
  w.add_dataset("slices", dtype, {static_cast<std::uint64_t>(rc.n_slices), 3, S, S});
  const auto res = image::run_ct_batch(
      "slice", o.common.output, o.common, o.input, o.batch, io.in, 1 << 20,
      [&](image::LoadedCt& ct, int nt) {
        bool sagittal = false;
        const auto dims = ct.volume.dim;  // x, y, z
        image::SliceRecipe rec = recipe;
        if (bimcv) {
          // HSENet's script: the volume's min-max for files up to 200 MiB on disk, each slice's above.
          std::error_code ec;
          const auto bytes = std::filesystem::is_regular_file(ct.path, ec) ? std::filesystem::file_size(ct.path, ec) : 0;
          const bool large = !ec && static_cast<double>(bytes) > Recipe::kLargeFileMiB * 1024 * 1024;
          rec.norm = large ? image::SliceNorm::per_slice_f32 : image::SliceNorm::global_f32;
          if (large) cli::verbose("{}: over {} MiB: each slice's min-max, as HSENet's script", ct.id, Recipe::kLargeFileMiB);
          image::Array3 a = image::to_zxy_resampled(ct.volume, ct.hu, rc.window[0], rc.window[1], false,
                                                    ct.spacing_zxy, rc.spacing[0], rc.spacing[1], nt);
          ct.volume = {};
          cli::verbose("{}: {}x{}x{} voxels (Z,X,Y)", ct.id, a.d, a.h, a.w);
          return image::BatchItem{image::make_slices(a, rec, nt), {}};
        }
        image::Array3 a =
            hsenet ? image::hsenet_slicing_array(ct.volume, ct.hu, rc.window[0], rc.window[1], rc.resample,
                                                 ct.spacing_zxy, rc.spacing[0], rc.spacing[1], nt, &sagittal)
                   : image::to_zxy_resampled(ct.volume, ct.hu, rc.window[0], rc.window[1], rc.resample,
                                             ct.spacing_zxy, rc.spacing[0], rc.spacing[1], nt);
        ct.volume = {};
        if (sagittal) {
          cli::warn("--compat hsenet: volumes with at least as many slices as columns are sliced along X "
                    "(sagittally), as HSENet's script does (-v names them)");
          cli::verbose("{}: {} slices >= {} columns: sliced along X", ct.id, dims[2], dims[0]);
        }
        for (float& v : a.v) v /= 1000.0f;
        cli::verbose("{}: {}x{}x{} voxels (Z,X,Y) after resampling", ct.id, a.d, a.h, a.w);
        return image::BatchItem{image::make_slices(a, rec, nt), {}};
      },
      [&](const std::string& id, image::BatchItem&& it) {
        w.append("slices", it.values.data());
        w.add_id(id);
      });
  rc.write(w);
  w.add_provenance({h5::provenance_record("hse-slice", cli::current_args())});
  w.commit();
  cli::summary("wrote {} volumes ({} slices each) to {}{}", res.written, rc.n_slices, o.common.output,
            res.failed ? fmt::format(" ({} failed)", res.failed) : std::string());
  return res.failed ? static_cast<int>(cli::Exit::runtime) : 0;
}

}  // namespace hse::slice
