// Fuzz target: IDX images + labels (raw or gzip, decided by content) through OpenIdxDataset.
// Input: fuzz_input.h's two files (images, labels).
#include <cstddef>
#include <cstdint>

#include "data/idx_dataset.h"
#include "fuzz/dataset_check.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moco;
  const fuzz::TwoFiles files = fuzz::SplitTwoFiles(data, size);
  const std::string images = fuzz::WriteScratchFile("images-idx3-ubyte", files.first);
  const std::string labels = fuzz::WriteScratchFile("labels-idx1-ubyte", files.second);
  auto dataset = moco::data::OpenIdxDataset(images, labels);
  fuzz::Report(dataset.status());
  if (dataset.ok()) fuzz::CheckDataset(**dataset);
  return 0;
}
