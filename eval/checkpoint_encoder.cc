#include "eval/checkpoint_encoder.h"

#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moco/config/config_io.h"
#include "moco/core/status_macros.h"
#include "moco/interop/encoder_init.h"
#include "moco/interop/weights_file.h"

namespace moco {
namespace eval {

namespace {

// True when `path` opens and does not start with the native magic "MOCOCKPT" (then it is an
// official MoCo, torchvision or detectron2 file, or garbage: moco/interop tells).
bool IsForeignFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  if (!in.read(magic, sizeof(magic))) return false;
  return std::memcmp(magic, "MOCOCKPT", sizeof(magic)) != 0;
}

// A PyTorch file: the architecture is what its names and shapes imply.
absl::StatusOr<EvalCheckpoint> ReadForeignCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(interop::WeightsFile file, interop::ReadWeightsFile(path));
  EvalCheckpoint out;
  out.path = path;
  out.epoch = file.weights.epoch;
  out.backend = absl::StrCat("PyTorch (", interop::FormatName(file.format), " file)");
  auto model = interop::InferModelConfig(file.weights.query, file.weights.arch);
  if (!model.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", path, ": ", model.status().message()));
  }
  *out.config.mutable_model() = *model;
  out.query_state = std::move(file.weights.query);
  return out;
}

}  // namespace

absl::StatusOr<EvalCheckpoint> ReadEvalCheckpoint(const std::string& path) {
  if (IsForeignFile(path)) return ReadForeignCheckpoint(path);
  ASSIGN_OR_RETURN(Checkpoint raw, ReadCheckpoint(path));
  EvalCheckpoint out;
  out.path = path;
  out.epoch = raw.epoch;
  out.global_step = raw.global_step;
  out.backend = raw.backend;
  const absl::Status parsed =
      ParseTextProto(raw.config_text, absl::StrCat(path, " (its experiment config)"), &out.config);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", path, ": stored experiment config does not parse: ",
                     parsed.message()));
  }
  for (auto& [name, array] : raw.arrays) {
    if (absl::StartsWith(name, kQueryPrefix)) {
      out.query_state.emplace(name.substr(std::strlen(kQueryPrefix)), std::move(array));
    }
  }
  if (out.query_state.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint ", path, " holds no query encoder (no \"", kQueryPrefix,
        "...\" arrays among its ", raw.arrays.size(), "): not a MoCo pretraining checkpoint"));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Encoder>> CreateLearnedEncoder(Backend& backend,
                                                              const EvalCheckpoint& checkpoint) {
  ASSIGN_OR_RETURN(std::unique_ptr<Encoder> encoder,
                   backend.CreateEncoder(checkpoint.config.model(), /*seed=*/0));
  // A file without a projection head (torchvision) keeps the fresh head: only the backbone
  // is evaluated.
  const absl::Status imported =
      interop::ImportEncoderState(checkpoint.query_state, *encoder, "parameters");
  if (!imported.ok()) {
    const ModelConfig& m = checkpoint.config.model();
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint ", checkpoint.path, " does not fit its architecture (", m.arch(),
        ", width ", m.width_multiplier(), ", cifar_stem ", m.cifar_stem() ? "true" : "false",
        ", in_channels ", m.in_channels(), "): query encoder ", imported.message()));
  }
  return encoder;
}

bool BitwiseEqual(const NamedArrays& a, const NamedArrays& b, std::string* difference) {
  auto report = [difference](std::string text) {
    if (difference != nullptr) *difference = std::move(text);
    return false;
  };
  if (a.size() != b.size()) {
    return report(absl::StrCat(a.size(), " arrays before, ", b.size(), " after"));
  }
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first) {
      return report(absl::StrCat("array names differ: '", ia->first, "' vs '", ib->first, "'"));
    }
    if (ia->second.shape() != ib->second.shape() || ia->second.data().size() != ib->second.data().size()) {
      return report(absl::StrCat("'", ia->first, "' changed shape"));
    }
    if (!ia->second.data().empty() &&
        std::memcmp(ia->second.data().data(), ib->second.data().data(),
                    ia->second.data().size() * sizeof(float)) != 0) {
      for (size_t i = 0; i < ia->second.data().size(); ++i) {
        if (std::memcmp(&ia->second.data()[i], &ib->second.data()[i], sizeof(float)) != 0) {
          return report(absl::StrCat("'", ia->first, "' element ", i, " changed from ",
                                     ia->second.data()[i], " to ", ib->second.data()[i]));
        }
      }
    }
  }
  return true;
}

}  // namespace eval
}  // namespace moco
