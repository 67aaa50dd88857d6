// CT inputs: one id rule for every tool, and the HU decision that refuses what cannot be HU.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/image/ct_input.h"
#include "hse/image/ops.h"

using namespace hse;

TEST_CASE("input ids: the VolumeName, else the path relative to --root or the common directory") {
  CHECK(image::is_ctrate_name("valid_53_a_1.nii.gz"));
  CHECK(image::is_ctrate_name("train_1_b_2.nii"));
  CHECK_FALSE(image::is_ctrate_name("ct.nii.gz"));
  CHECK(image::is_bimcv_name("sub-S03825_ses-E07697_run-2_bp-chest_ct.nii.gz"));
  CHECK(image::is_bimcv_name("sub-S329586_ses-E60073_acq-1_run-2_bp-chest_ct.nii"));
  CHECK_FALSE(image::is_bimcv_name("sub-S1_ses-E2_run-1_bp-chest_ct.nii.gz.bak"));
  CHECK_FALSE(image::is_bimcv_name("sub-S1_run-1_ct.nii.gz"));
  // BIMCV-R's CT*/ct folders: the file name is the id, as HSENet names its cases.
  CHECK(image::input_ids({"/b/CT1/ct/sub-S1_ses-E2_run-1_bp-chest_ct.nii.gz",
                          "/b/CT2/ct/sub-S3_ses-E4_run-1_bp-chest_ct.nii.gz"}) ==
        std::vector<std::string>{"sub-S1_ses-E2_run-1_bp-chest_ct.nii.gz", "sub-S3_ses-E4_run-1_bp-chest_ct.nii.gz"});
  CHECK(image::input_ids({"/d/pa/ct.nii.gz", "/d/pb/ct.nii.gz"}) == std::vector<std::string>{"pa/ct.nii.gz", "pb/ct.nii.gz"});
  CHECK(image::input_ids({"/d/pa/ct.nii.gz"}) == std::vector<std::string>{"ct.nii.gz"});
  CHECK(image::input_ids({"/data/series1/"}) == std::vector<std::string>{"series1"});
  CHECK(image::input_ids({"/d/x/valid_1_a_1.nii.gz", "/d/y/z/scan.nii"}) ==
        std::vector<std::string>{"valid_1_a_1.nii.gz", "y/z/scan.nii"});
  CHECK(image::input_ids({"/r/a/b/ct.nii.gz"}, "/r") == std::vector<std::string>{"a/b/ct.nii.gz"});
  try {
    image::input_ids({"/a/valid_1_a_1.nii.gz", "/b/valid_1_a_1.nii.gz"});
    FAIL("no error for one id twice");
  } catch (const cli::Error& e) {
    CHECK(e.code() == cli::Exit::incompatible);
    CHECK(std::string(e.what()).find("/a/valid_1_a_1.nii.gz") != std::string::npos);
    CHECK(e.file() == "/b/valid_1_a_1.nii.gz");
  }
}

TEST_CASE("HU: without a slope/intercept, values that cannot be HU are marked unknown") {
  image::Volume v;
  v.data.assign(1000, 0.0f);
  for (std::size_t i = 0; i < 400; ++i) v.data[i] = 24;    // CT-RATE v1: air stored as HU + 1024
  for (std::size_t i = 400; i < 1000; ++i) v.data[i] = 1064;
  auto d = image::decide_hu(v, image::HuMode::automatic, std::nullopt);
  CHECK(d.unknown);
  CHECK_FALSE(d.rescale);
  CHECK_FALSE(image::decide_hu(v, image::HuMode::as_is, std::nullopt).unknown);
  d = image::decide_hu(v, image::HuMode::automatic, std::make_pair(1.0, -1024.0));
  CHECK_FALSE(d.unknown);
  CHECK(d.rescale);
  for (std::size_t i = 0; i < 400; ++i) v.data[i] = -1000;  // HU: air present
  for (std::size_t i = 400; i < 1000; ++i) v.data[i] = 40;
  d = image::decide_hu(v, image::HuMode::automatic, std::nullopt);
  CHECK_FALSE(d.unknown);
  CHECK_FALSE(d.rescale);
}
