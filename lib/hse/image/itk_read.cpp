// ITK-based reading: DICOM series directories, single DICOM files, NRRD,
// MetaImage (.mha/.mhd) and NIfTI. Kept in its own translation unit: ITK's
// headers are heavy.
#include <filesystem>
#include <sstream>

#include <mutex>

#include <itkGDCMImageIO.h>
#include <itkGDCMImageIOFactory.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>
#include <itkGDCMSeriesFileNames.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageIOFactory.h>
#include <itkImageSeriesReader.h>

#include "hse/cli/cli.h"
#include "hse/image/volume.h"

namespace hse::image {
namespace {
using Image = itk::Image<float, 3>;

std::string first_line(const itk::ExceptionObject& e) {
  std::string s = e.GetDescription();
  const auto nl = s.find('\n');
  if (nl != std::string::npos) s = s.substr(0, nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s.empty() ? "unreadable image" : s;
}

Volume from_image(Image* img, const std::string& format) {
  Volume v;
  v.format = format;
  const auto size = img->GetLargestPossibleRegion().GetSize();
  const auto sp = img->GetSpacing();
  for (int i = 0; i < 3; ++i) {
    v.dim[i] = static_cast<std::int64_t>(size[i]);
    v.spacing[i] = sp[i] > 0 ? sp[i] : 1.0;
  }
  v.spacing_in_header = !(v.spacing[0] == 1.0 && v.spacing[1] == 1.0 && v.spacing[2] == 1.0);
  const std::size_t n = v.voxels();
  v.data.assign(img->GetBufferPointer(), img->GetBufferPointer() + n);
  return v;
}

std::string format_of(itk::ImageIOBase* io) {
  const std::string name = io->GetNameOfClass();
  if (name.find("GDCM") != std::string::npos) return "dicom";
  if (name.find("NRRD") != std::string::npos) return "nrrd";
  if (name.find("Meta") != std::string::npos) return "meta";
  if (name.find("NIfTI") != std::string::npos) return "nifti";
  return name;
}

Volume read_series(const std::string& dir) {
  auto names = itk::GDCMSeriesFileNames::New();
  names->SetUseSeriesDetails(true);
  names->SetDirectory(dir);
  const auto uids = names->GetSeriesUIDs();
  if (uids.empty())
    cli::fail_input(dir, "a directory with neither volume files (.nii, .nii.gz, .nrrd, .mha, .mhd, searched recursively) "
                    "nor a DICOM series");
  std::string best;
  std::size_t best_n = 0;
  for (const auto& uid : uids) {
    const auto files = names->GetFileNames(uid);
    if (files.size() > best_n) {
      best_n = files.size();
      best = uid;
    }
  }
  if (uids.size() > 1)
    cli::warn("{}: {} DICOM series found; reading the largest ({} files)", dir, uids.size(), best_n);
  const auto files = names->GetFileNames(best);
  if (files.size() < 2) cli::fail_input(dir, "2-D image (a DICOM series of one slice), expected a 3-D CT volume");
  auto reader = itk::ImageSeriesReader<Image>::New();
  auto gdcm = itk::GDCMImageIO::New();
  reader->SetImageIO(gdcm);
  reader->SetFileNames(files);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    cli::fail_input(dir, "cannot read DICOM series: {}", first_line(e));
  }
  Volume v = from_image(reader->GetOutput(), "dicom");
  v.hu_by_reader = true;
  v.stored_type = itk::ImageIOBase::GetComponentTypeAsString(gdcm->GetComponentType());
  return v;
}
}  // namespace

Volume read_itk(const std::string& path) {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::Object::GlobalWarningDisplayOff();  // errors are reported as one line by hse
    itk::GDCMImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
    itk::NiftiImageIOFactory::RegisterOneFactory();
  });
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return read_series(path);
  auto io = itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::IOFileModeEnum::ReadMode);
  if (!io) cli::fail_input(path, "unrecognised image format");
  try {
    io->SetFileName(path);
    io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    cli::fail_input(path, "cannot read image header: {}", first_line(e));
  }
  const unsigned nd = io->GetNumberOfDimensions();
  std::vector<std::size_t> dims;
  for (unsigned i = 0; i < nd; ++i) dims.push_back(io->GetDimensions(i));
  while (dims.size() > 3 && dims.back() == 1) dims.pop_back();
  if (io->GetNumberOfComponents() != 1)
    cli::fail_input(path, "{} components per voxel, expected a scalar (grey-level) CT volume", io->GetNumberOfComponents());
  if (dims.size() > 3) cli::fail_input(path, "{}-D image, expected a 3-D CT volume", dims.size());
  if (dims.size() < 3 || dims[2] == 1 || dims[0] == 1 || dims[1] == 1)
    cli::fail_input(path, "2-D image, expected a 3-D CT volume");
  auto reader = itk::ImageFileReader<Image>::New();
  reader->SetFileName(path);
  reader->SetImageIO(io);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    cli::fail_input(path, "cannot read image: {}", first_line(e));
  }
  Volume v = from_image(reader->GetOutput(), format_of(io));
  v.hu_by_reader = v.format == "dicom";
  v.stored_type = itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType());
  return v;
}

}  // namespace hse::image
