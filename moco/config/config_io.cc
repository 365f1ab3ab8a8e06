#include "moco/config/config_io.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace moco {
namespace {

// Collects parser diagnostics as "source:line:column: message" (protobuf reports 0-based).
class CollectingErrorCollector final : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectingErrorCollector(std::string source) : source_(std::move(source)) {}

  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {
    AddError(line, column, absl::StrCat("warning: ", message));
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

}  // namespace

absl::Status ParseTextProto(const std::string& text, const std::string& source_name,
                            google::protobuf::Message* message) {
  CollectingErrorCollector collector(source_name);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(text, message) || !collector.errors().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse ", message->GetTypeName(), ":\n  ",
                     absl::StrJoin(collector.errors(), "\n  ")));
  }
  return absl::OkStatus();
}

absl::Status ParseTextProtoFile(const std::string& path, google::protobuf::Message* message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open config file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading config file ", path));
  return ParseTextProto(buffer.str(), path, message);
}

absl::StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path) {
  ExperimentConfig config;
  absl::Status status = ParseTextProtoFile(path, &config);
  if (!status.ok()) return status;
  return config;
}

std::string ToTextProto(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(message, &text);
  return text;
}

}  // namespace moco
