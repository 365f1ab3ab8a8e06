// TFRecord framing, the container of TensorBoard event files. Each record is
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   length bytes of payload       | uint32 masked CRC-32C of the payload
//
//   TfRecordWriter w(file);             // an open FILE*, not owned
//   RETURN_IF_ERROR(w.Write(payload));
//   ASSIGN_OR_RETURN(TfRecords r, ReadTfRecordFile(path));  // CRCs checked
#ifndef MOCO_OBSERVE_EVENTS_TFRECORD_H_
#define MOCO_OBSERVE_EVENTS_TFRECORD_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moco {
namespace tfevents {

// The framed bytes of one record.
std::string FrameTfRecord(const std::string& payload);

// Appends framed records to a FILE* it does not own; `name` is used in error messages.
class TfRecordWriter {
 public:
  TfRecordWriter(FILE* file, std::string name) : file_(file), name_(std::move(name)) {}
  absl::Status Write(const std::string& payload);
  // fflush: the records reach the operating system (a reader sees them).
  absl::Status Flush();

 private:
  FILE* file_;
  std::string name_;
};

struct TfRecords {
  std::vector<std::string> payloads;
  // Bytes after the last complete record: a record cut short by a process that died while
  // writing it (0 for a cleanly written file). Not an error; a rewrite drops them.
  int64_t incomplete_tail_bytes = 0;
};

// Every record of `data`. A CRC mismatch (length or payload) is DataLoss naming `name` and
// the byte offset of the record; a truncated last record is reported in incomplete_tail_bytes.
absl::StatusOr<TfRecords> ParseTfRecords(const std::string& data, const std::string& name);

// ParseTfRecords of the file's contents; a missing or unreadable file is NotFound / Unknown.
absl::StatusOr<TfRecords> ReadTfRecordFile(const std::string& path);

}  // namespace tfevents
}  // namespace moco

#endif  // MOCO_OBSERVE_EVENTS_TFRECORD_H_
