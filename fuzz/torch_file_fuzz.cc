// Fuzz target: torch.save files (zip and legacy) and plain pickles through LoadPickleFile
// (bytes in memory; the reader never executes anything).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_input.h"
#include "moco/interop/torch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moco::fuzz::Report(
      moco::interop::LoadPickleFile(absl::string_view(reinterpret_cast<const char*>(data), size),
                                    "fuzz input")
          .status());
  return 0;
}
