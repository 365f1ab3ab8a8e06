// The subset of the ZIP format that torch.save's archives use: reading stored (and deflated)
// entries, writing stored entries. No ZIP64, no encryption, no multi-disk archives.
//
//   ASSIGN_OR_RETURN(ZipReader zip, ZipReader::Open(bytes, "model.pth"));
//   ASSIGN_OR_RETURN(std::string pickle, zip.Read("archive/data.pkl"));
//   ZipWriter w; w.Add("archive/version", "3\n"); std::string file = w.Finish();
//
// Untrusted input: every offset and size is checked against the buffer before use; CRC-32 of
// every entry read is verified; errors name the archive label and the entry.
#ifndef MOCO_INTEROP_ZIP_ARCHIVE_H_
#define MOCO_INTEROP_ZIP_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moco {
namespace interop {

class ZipReader {
 public:
  // Parses the central directory of `bytes` (which must outlive the reader).
  static absl::StatusOr<ZipReader> Open(absl::string_view bytes, std::string label);

  // Entry names in central-directory order.
  const std::vector<std::string>& names() const { return names_; }
  bool Has(absl::string_view name) const;
  // The entry's contents (stored or deflated), CRC-checked. NotFound if absent.
  absl::StatusOr<std::string> Read(absl::string_view name) const;

 private:
  struct Entry {
    std::string name;
    uint16_t method = 0;
    uint32_t crc = 0;
    uint64_t compressed = 0;
    uint64_t size = 0;
    uint64_t local_offset = 0;
  };
  absl::string_view bytes_;
  std::string label_;
  std::vector<Entry> entries_;
  std::vector<std::string> names_;
};

// Stored (uncompressed) entries, data aligned to 64 bytes as torch.save does.
class ZipWriter {
 public:
  void Add(const std::string& name, absl::string_view data);
  // The whole archive: local headers and data, central directory, end record.
  std::string Finish();

 private:
  struct Entry {
    std::string name;
    uint32_t crc;
    uint32_t size;
    uint32_t offset;
  };
  std::string out_;
  std::vector<Entry> entries_;
};

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_ZIP_ARCHIVE_H_
