// compare_runs' page: several runs' curves overlaid (one colour per run) and their configs
// diffed field by field, every leaf field of ExperimentConfig with its effective value
// (defaults included), the differing ones first.
//
//   std::vector<RunData> runs = ...;   // LoadRunData per folder
//   std::string html = RenderComparison(runs);
#ifndef MOCO_OBSERVE_COMPARE_H_
#define MOCO_OBSERVE_COMPARE_H_

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/message.h"
#include "moco/observe/run_data.h"

namespace moco {
namespace observe {

// Every leaf field of `message` as ("a.b.c", value text), recursing into message fields
// whether set or not (unset ones show their defaults); repeated fields as "[v1, v2]".
std::vector<std::pair<std::string, std::string>> FlattenFields(
    const google::protobuf::Message& message);

struct ConfigDiffRow {
  std::string field;
  std::vector<std::string> values;  // one per run ("(unreadable)" when a config did not parse)
  bool differs = false;
};

// Rows for the runs' config texts (ExperimentConfig text format), differing rows first.
std::vector<ConfigDiffRow> DiffConfigs(const std::vector<std::string>& config_texts);

std::string RenderComparison(const std::vector<RunData>& runs);

}  // namespace observe
}  // namespace moco

#endif  // MOCO_OBSERVE_COMPARE_H_
