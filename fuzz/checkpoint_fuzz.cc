// Fuzz target: ReadCheckpoint. Input: 1 byte, then the data. Odd first byte: the data is the
// whole file. Even: the data is the payload, framed with a correct header, length and CRC, so
// that mutations reach the payload parser instead of stopping at the checksum.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_input.h"
#include "moco/run/checkpoint.h"
#include "zlib.h"

namespace {

void PutLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moco;
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string file;
  if (data[0] % 2 == 1) {
    file = body;
  } else {
    file = "MOCOCKPT";
    PutLe(kCheckpointFormatVersion, 4, &file);
    PutLe(body.size(), 8, &file);
    file += body;
    PutLe(crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(body.data()), body.size()),
          4, &file);
  }
  fuzz::Report(ReadCheckpoint(fuzz::WriteScratchFile("checkpoint.ckpt", file)).status());
  return 0;
}
