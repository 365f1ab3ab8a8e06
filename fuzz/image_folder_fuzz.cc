// Fuzz target: JPEG / PNG decoding through the image-folder path. The input is the file
// root/c/a.<FUZZ_IMAGE_EXT>; root/c/b.png is a valid image, read after it on the same thread:
// whatever the input did to the decoder, the next good image must decode (issue 18 item 2).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "data/image_codec.h"
#include "data/image_folder_dataset.h"
#include "fuzz/dataset_check.h"
#include "fuzz/fuzz_input.h"

#ifndef FUZZ_IMAGE_EXT
#define FUZZ_IMAGE_EXT "jpg"
#endif

namespace {

const std::string& GoodPng() {
  static const std::string* png = [] {
    moco::data::Image image;
    image.Reshape(3, 5, 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 17);
    auto bytes = moco::data::EncodePng(image);
    if (!bytes.ok()) std::abort();
    return new std::string(*bytes);
  }();
  return *png;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moco;
  fuzz::WriteScratchFile("root/c/a." FUZZ_IMAGE_EXT,
                         std::string(reinterpret_cast<const char*>(data), size));
  const std::string good = fuzz::WriteScratchFile("root/c/b.png", GoodPng());
  auto dataset = data::OpenImageFolder(fuzz::ScratchDir() + "/root");
  if (!dataset.ok()) {
    std::fprintf(stderr, "fuzz: the image folder was refused: %s\n",
                 std::string(dataset.status().message()).c_str());
    std::abort();
  }
  data::Image first;
  fuzz::Report((*dataset)->ReadImage(0, &first));
  fuzz::CheckDataset(**dataset);
  data::Image image;
  absl::Status status = (*dataset)->ReadImage(1, &image);  // b.png, after a.*
  if (!status.ok() || image.height != 3 || image.width != 5) {
    std::fprintf(stderr, "fuzz: the good image after the input failed: %s\n",
                 std::string(status.message()).c_str());
    std::abort();
  }
  return 0;
}
