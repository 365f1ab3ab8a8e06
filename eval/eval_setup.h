// What both evaluation pipelines (//eval:knn, //eval:linear_probe) set up before measuring:
// the validated config, the checkpoint, the backend, both dataset splits, the evaluation view,
// and the feature sources of the selected encoders.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<EvalSetup> setup, PrepareEval(FLAGS_config));
//   for (EvalConfig::Encoders which : SelectedEncoders(setup->config)) {
//     ASSIGN_OR_RETURN(EvaluatedEncoder e, MakeEvaluatedEncoder(*setup, which));
//     ASSIGN_OR_RETURN(FeatureSet test, ExtractSplit(*setup, *e.source, data::Split::kTest));
//   }
#ifndef EVAL_EVAL_SETUP_H_
#define EVAL_EVAL_SETUP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset_interface.h"
#include "data/transform.h"
#include "eval/checkpoint_encoder.h"
#include "eval/eval_config.pb.h"
#include "eval/feature_extractor.h"
#include "moco/core/backend.h"
#include "moco/core/communicator.h"

namespace moco {
namespace eval {

struct EvalSetup {
  std::string config_path;
  EvalConfig config;
  EvalCheckpoint checkpoint;
  std::unique_ptr<Backend> backend;
  std::shared_ptr<const data::Dataset> train, test;
  std::shared_ptr<const data::Transform> eval_view;  // resize + center crop + normalize
  int in_channels = 0;   // the checkpoint's model.in_channels
  int num_classes = 0;   // max over both splits
  // The process group when started as one rank of several (torchrun's variables, e.g. by
  // //:pretrain's launcher or torchrun): feature extraction is sharded over it and only rank 0
  // writes results. World 1 otherwise.
  std::unique_ptr<Communicator> communicator;
};

// Loads and validates `config_path` (every error with its field path), reads the checkpoint
// (errors name the file), sets the thread counts, creates the backend, opens both splits and
// builds the evaluation view. Also checks what needs the checkpoint: the normalization has 1 or
// model.in_channels values. Under WORLD_SIZE > 1 joins the process group at MASTER_ADDR:
// MASTER_PORT (ranks with different eval configs are refused there); the rendezvous and every
// collective wait `dist_timeout_s` seconds for the other ranks.
absl::StatusOr<std::unique_ptr<EvalSetup>> PrepareEval(const std::string& config_path,
                                                       int dist_timeout_s = 300);

// One evaluated feature extractor and what it owns.
struct EvaluatedEncoder {
  EvalConfig::Encoders which = EvalConfig::LEARNED;
  std::string name;                   // "LEARNED", "RANDOM_INIT", "RAW_PIXELS"
  std::unique_ptr<Encoder> encoder;   // null for RAW_PIXELS
  std::unique_ptr<FeatureSource> source;
  int64_t feature_dim = 0;
};

// LEARNED: the checkpoint's query encoder (errors name the file and the first mismatched
// parameter); RANDOM_INIT: a fresh encoder of the same architecture from random_init_seed;
// RAW_PIXELS: the evaluation view's pixels, L2-normalized.
absl::StatusOr<EvaluatedEncoder> MakeEvaluatedEncoder(EvalSetup& setup,
                                                      EvalConfig::Encoders which);

// Loader options for extraction from the config (extract_batch_size, data.num_workers, ...),
// sharded over setup.communicator.
ExtractOptions ExtractionOptions(const EvalSetup& setup, data::Split split);

// ExtractionOptions with a progress log line ("<encoder> train features: done/total images,
// N img/s") at most every 10 s and at the end.
ExtractOptions LoggedExtractionOptions(const EvalSetup& setup, const std::string& encoder_name,
                                       data::Split split);

// Features of a whole split through the evaluation view (max_train_images / max_test_images
// applied), logging progress about every 10 seconds.
absl::StatusOr<FeatureSet> ExtractSplit(EvalSetup& setup, FeatureSource& source,
                                        const std::string& encoder_name, data::Split split);

// Rank 0 checks, before the (long) evaluation, that the results folder can be written; other
// ranks write nothing, so OK.
absl::Status CheckResultsWritable(const EvalSetup& setup);

// Rank 0 writes `results` (eval/results_writer.h: the results file, or printed when it cannot
// be written, plus a TensorBoard event file where possible); other ranks log that they leave it
// to rank 0.
absl::Status PublishResults(const EvalSetup& setup, const EvalResults& results);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_EVAL_SETUP_H_
