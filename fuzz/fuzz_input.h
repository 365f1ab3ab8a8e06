// Helpers for fuzz entry points (LLVMFuzzerTestOneInput) whose readers take paths or several
// files: the input is written into files of a per-process scratch folder.
#ifndef FUZZ_FUZZ_INPUT_H_
#define FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace moco {
namespace fuzz {

// A folder for this process's files, made on first use under $TEST_TMPDIR, $TMPDIR or /tmp.
const std::string& ScratchDir();

// Writes `bytes` to ScratchDir()/`name` (replacing it; `name` may contain folders, which are
// made) and returns the path. Aborts on I/O errors: a harness that cannot write is broken.
std::string WriteScratchFile(const std::string& name, const std::string& bytes);

// An input holding two files: a 2-byte little-endian length L, then L bytes of the first file
// (fewer if the input ends first), then the second file. Inputs under 2 bytes give two empty files.
struct TwoFiles {
  std::string first, second;
};
TwoFiles SplitTwoFiles(const uint8_t* data, size_t size);

// With FUZZ_VERBOSE=1 in the environment, prints what the reader said about the input
// (for checking that seeds are accepted and for reading a crasher's way in); else nothing.
void Report(const absl::Status& status);

// The inverse of SplitTwoFiles, for building seeds.
std::string JoinTwoFiles(const std::string& first, const std::string& second);

}  // namespace fuzz
}  // namespace moco

#endif  // FUZZ_FUZZ_INPUT_H_
