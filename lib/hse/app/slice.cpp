#include "hse/app/slice.h"

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
  cli::flags::hu_window(app, o.window, "HU window: values are clamped to it, then divided by 1000");
  cli::flags::spacing(app, o.spacing);
  cli::flags::no_resample(app, o.no_resample);
  app.add_option("--slices", o.slices, "slices per volume (linspace over Z; a trilinear resize when Z is smaller)")
      ->default_val(32)
      ->check(CLI::Range(1, 1024));
  app.add_option("--jpeg-quality", o.jpeg_quality,
                 "JPEG round trip of each 8-bit slice at this quality (95 reproduces HSENet's JPEG files); 0: none")
      ->default_val(0)
      ->check(CLI::Range(0, 100));
  cli::add_compat_option(app, o.compat,
                         "slices along X (sagittal) when a volume has at least as many slices as columns, "
                         "--jpeg-quality 95, a known slope and intercept applied to every file, and XYSpacing's first "
                         "value for both in-plane axes");
  app.add_option("--image-size", o.image_size, "short side after the bicubic resize, and the centre crop")
      ->default_val(224)
      ->check(CLI::Range(1, 4096));
  cli::flags::storage_dtype(app, o.dtype);
  image::add_batch_options(app, o.batch);
}

Recipe recipe_of(const Options& o) {
  Recipe r;
  r.window = o.window;
  r.spacing = o.spacing;
  r.resample = !o.no_resample;
  r.n_slices = o.slices;
  r.jpeg_quality = o.compat == cli::kCompatHsenet && o.jpeg_quality == 0 ? 95 : o.jpeg_quality;
  r.image_size = o.image_size;
  r.hu = o.input.hu;
  r.compat = o.compat;
  return r;
}

void apply(const Recipe& r, Options& o) {
  o.window = r.window;
  o.spacing = r.spacing;
  o.no_resample = !r.resample;
  o.slices = r.n_slices;
  o.jpeg_quality = static_cast<int>(r.jpeg_quality);
  o.image_size = r.image_size;
  o.compat = r.compat;
}

int run(const Options& oin, cli::Io& io) {
  Options o = oin;
  if (o.compat == cli::kCompatHsenet) image::apply_hsenet_compat(o.input);
  if (o.window[0] >= o.window[1]) cli::fail_usage("--window: LO must be below HI");
  if (o.spacing[0] <= 0 || o.spacing[1] <= 0) cli::fail_usage("--spacing: values must be positive");
  if (o.slices < 1) cli::fail_usage("--slices: must be positive");
  if (o.jpeg_quality < 0 || o.jpeg_quality > 100) cli::fail_usage("--jpeg-quality: must be in 0..100");
  if (o.image_size < 1) cli::fail_usage("--image-size: must be positive");
  const h5::DType dtype = h5::parse_dtype(o.dtype);

  const bool hsenet = o.compat == "hsenet";
  image::SliceRecipe recipe;
  recipe.n_slices = o.slices;
  recipe.jpeg_quality = static_cast<int>(recipe_of(o).jpeg_quality);
  recipe.image_size = o.image_size;

  h5::Writer w(o.common.output, "slices");
  const std::uint64_t S = static_cast<std::uint64_t>(o.image_size);
  w.add_dataset("slices", dtype, {static_cast<std::uint64_t>(o.slices), 3, S, S});
  const auto res = image::run_ct_batch(
      "slice", o.common.output, o.common, o.input, o.batch, io.in, 1 << 20,
      [&](image::LoadedCt& ct, int nt) {
        bool sagittal = false;
        const auto dims = ct.volume.dim;  // x, y, z
        image::Array3 a =
            hsenet ? image::hsenet_slicing_array(ct.volume, ct.hu, o.window[0], o.window[1], !o.no_resample,
                                                 ct.spacing_zxy, o.spacing[0], o.spacing[1], nt, &sagittal)
                   : image::to_zxy_resampled(ct.volume, ct.hu, o.window[0], o.window[1], !o.no_resample,
                                             ct.spacing_zxy, o.spacing[0], o.spacing[1], nt);
        ct.volume = {};
        if (sagittal) {
          cli::warn("--compat hsenet: volumes with at least as many slices as columns are sliced along X "
                    "(sagittally), as HSENet's script does (-v names them)");
          cli::verbose("{}: {} slices >= {} columns: sliced along X", ct.id, dims[2], dims[0]);
        }
        for (float& v : a.v) v /= 1000.0f;
        cli::verbose("{}: {}x{}x{} voxels (Z,X,Y) after resampling", ct.id, a.d, a.h, a.w);
        return image::BatchItem{image::make_slices(a, recipe, nt), {}};
      },
      [&](const std::string& id, image::BatchItem&& it) {
        w.append("slices", it.values.data());
        w.add_id(id);
      });
  recipe_of(o).write(w);
  w.add_provenance({h5::provenance_record("hse-slice", cli::current_args())});
  w.commit();
  cli::summary("wrote {} volumes ({} slices each) to {}{}", res.written, o.slices, o.common.output,
            res.failed ? fmt::format(" ({} failed)", res.failed) : std::string());
  return res.failed ? static_cast<int>(cli::Exit::runtime) : 0;
}

}  // namespace hse::slice
