#include "moco/observe/events/tfrecord.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "moco/observe/events/crc32c.h"

namespace moco {
namespace tfevents {
namespace {

void PutLittleEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t GetLittleEndian(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

std::string FrameTfRecord(const std::string& payload) {
  std::string out;
  out.reserve(payload.size() + 16);
  PutLittleEndian(payload.size(), 8, &out);
  PutLittleEndian(MaskCrc32c(Crc32c(out.data(), 8)), 4, &out);
  out += payload;
  PutLittleEndian(MaskCrc32c(Crc32c(payload.data(), payload.size())), 4, &out);
  return out;
}

absl::Status TfRecordWriter::Write(const std::string& payload) {
  const std::string framed = FrameTfRecord(payload);
  if (std::fwrite(framed.data(), 1, framed.size(), file_) != framed.size()) {
    return absl::UnknownError(absl::StrCat("cannot write to ", name_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status TfRecordWriter::Flush() {
  if (std::fflush(file_) != 0) {
    return absl::UnknownError(absl::StrCat("cannot flush ", name_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<TfRecords> ParseTfRecords(const std::string& data, const std::string& name) {
  TfRecords result;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t left = data.size() - pos;
    if (left < 12) break;
    const uint64_t length = GetLittleEndian(data.data() + pos, 8);
    const uint32_t length_crc = static_cast<uint32_t>(GetLittleEndian(data.data() + pos + 8, 4));
    if (MaskCrc32c(Crc32c(data.data() + pos, 8)) != length_crc) {
      return absl::DataLossError(absl::StrCat(name, ": record at byte ", pos,
                                              ": length CRC mismatch (not a TFRecord file, or "
                                              "corrupted)"));
    }
    if (length > left - 12 || left - 12 - length < 4) break;  // cut short by a crash
    const char* payload = data.data() + pos + 12;
    const uint32_t payload_crc = static_cast<uint32_t>(GetLittleEndian(payload + length, 4));
    if (MaskCrc32c(Crc32c(payload, length)) != payload_crc) {
      return absl::DataLossError(absl::StrCat(name, ": record at byte ", pos, " (", length,
                                              " bytes): payload CRC mismatch (corrupted)"));
    }
    result.payloads.emplace_back(payload, length);
    pos += 16 + length;
  }
  result.incomplete_tail_bytes = static_cast<int64_t>(data.size() - pos);
  return result;
}

absl::StatusOr<TfRecords> ReadTfRecordFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::UnknownError(absl::StrCat("cannot read ", path));
  return ParseTfRecords(buffer.str(), path);
}

}  // namespace tfevents
}  // namespace moco
