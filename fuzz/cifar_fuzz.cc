// Fuzz target: a CIFAR binary record file through OpenCifarFiles.
// Input: 1 byte (even: CIFAR-10, odd: CIFAR-100), then the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/cifar_dataset.h"
#include "fuzz/dataset_check.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moco;
  if (size < 1) return 0;
  const int num_classes = data[0] % 2 == 0 ? 10 : 100;
  const std::string path = fuzz::WriteScratchFile(
      "data_batch.bin", std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  auto dataset = moco::data::OpenCifarFiles({path}, num_classes);
  fuzz::Report(dataset.status());
  if (dataset.ok()) fuzz::CheckDataset(**dataset);
  return 0;
}
