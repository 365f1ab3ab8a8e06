// Reading and writing ExperimentConfig text-format files.
#ifndef MOCO_CONFIG_CONFIG_IO_H_
#define MOCO_CONFIG_CONFIG_IO_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "moco/config/config.pb.h"

namespace moco {

// Parses a text-format message from `path`. A missing or unreadable file is NotFound; a
// syntax error or unknown field is InvalidArgument whose message lists every problem as
// "path:line:column: what" (1-based line and column).
absl::Status ParseTextProtoFile(const std::string& path, google::protobuf::Message* message);

// Parses `text` (already read from `source_name`, used only in error messages).
absl::Status ParseTextProto(const std::string& text, const std::string& source_name,
                            google::protobuf::Message* message);

// Loads an ExperimentConfig. It is not validated here: see config_validator.h.
absl::StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path);

// The message in text format, as written into run folders and checkpoints.
std::string ToTextProto(const google::protobuf::Message& message);

}  // namespace moco

#endif  // MOCO_CONFIG_CONFIG_IO_H_
