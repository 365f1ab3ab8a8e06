// Multinomial logistic regression on host features, trained by SGD: the classifier of the MoCo
// linear-classification protocol (a single fully connected layer on frozen backbone features).
//
//   ASSIGN_OR_RETURN(LinearClassifier clf, LinearClassifier::Create(/*dim=*/512, /*classes=*/10,
//                                                                     /*seed=*/0));
//   SgdOptions sgd;                      // lr 30, momentum 0.9, wd 0, 100 epochs, x0.1 at 60, 80
//   for (int epoch = 0; epoch < sgd.epochs; ++epoch)
//     for (each batch) ASSIGN_OR_RETURN(double loss, clf.SgdStep(x, y, LearningRateAt(sgd, epoch), sgd));
//   ASSIGN_OR_RETURN(HostArray logits, clf.Scores(test_x));   // (M, classes)
//
// Or, for features already in memory, TrainOnFeatures() runs the whole loop.
// Initialization as the protocol: weight ~ N(0, 0.01^2) (std 0.01), bias 0, deterministic in
// the seed (own Box-Muller over std::mt19937_64, so identical on every platform).
#ifndef EVAL_LINEAR_CLASSIFIER_H_
#define EVAL_LINEAR_CLASSIFIER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/core/host_array.h"

namespace moco {
namespace eval {

// SGD with momentum and L2 weight decay (PyTorch torch.optim.SGD semantics, dampening 0,
// no Nesterov: g += wd * p; buf = momentum * buf + g; p -= lr * buf; wd applies to the bias
// too, as main_lincls.py passes both fc parameters) and a per-epoch learning-rate schedule.
struct SgdOptions {
  enum class Schedule {
    kMultiStep,  // lr * gamma ^ (number of milestones <= epoch)
    kCosine,     // lr * 0.5 * (1 + cos(pi * epoch / epochs))
  };
  double lr = 30.0;  // protocol (v1/v2): 30 for batch 256
  double momentum = 0.9;
  double weight_decay = 0.0;
  int epochs = 100;
  Schedule schedule = Schedule::kMultiStep;
  std::vector<int> milestones = {60, 80};
  double gamma = 0.1;
};

// Learning rate for 0-based `epoch` (constant within an epoch, as main_lincls.py).
double LearningRateAt(const SgdOptions& options, int epoch);

class LinearClassifier {
 public:
  // InvalidArgument naming input_dim / num_classes when not > 0.
  static absl::StatusOr<LinearClassifier> Create(int64_t input_dim, int num_classes,
                                                 uint64_t seed);

  int64_t input_dim() const { return input_dim_; }
  int num_classes() const { return num_classes_; }

  // Logits x W^T + b: features (M, input_dim) -> (M, num_classes). InvalidArgument naming
  // `features` on a shape mismatch.
  absl::StatusOr<HostArray> Scores(const HostArray& features) const;

  // Mean softmax cross-entropy over the batch and its gradients with respect to weight
  // (num_classes, input_dim) and bias (num_classes). Errors name `features` or `labels`.
  absl::StatusOr<double> LossAndGradients(const HostArray& features,
                                          const std::vector<int64_t>& labels,
                                          HostArray* grad_weight, HostArray* grad_bias) const;

  // One SGD step at learning rate `lr` on the batch (momentum and weight decay from `options`);
  // returns the batch's mean loss before the step. A non-finite loss is an error
  // (FailedPrecondition: "diverged") and leaves the parameters unchanged.
  absl::StatusOr<double> SgdStep(const HostArray& features, const std::vector<int64_t>& labels,
                                 double lr, const SgdOptions& options);

  // "weight" (num_classes, input_dim) and "bias" (num_classes), nn.Linear's names.
  NamedArrays ExportState() const;
  // Replaces weight and bias and clears the momentum buffers. `state` must hold exactly
  // "weight" and "bias" with this classifier's shapes; otherwise InvalidArgument naming the
  // first missing, unexpected or mis-shaped entry, and nothing changes.
  absl::Status ImportState(const NamedArrays& state);

  // The SGD momentum buffers, "weight_momentum" and "bias_momentum" (zero before the first
  // step), so that training can be resumed exactly: ImportState, then ImportMomentum. Shapes
  // and names are checked as ImportState does.
  NamedArrays ExportMomentum() const;
  absl::Status ImportMomentum(const NamedArrays& buffers);

 private:
  LinearClassifier(int64_t input_dim, int num_classes);

  int64_t input_dim_;
  int num_classes_;
  std::vector<float> weight_, bias_;                // row-major (C, D), (C)
  std::vector<float> weight_buf_, bias_buf_;        // momentum buffers
  bool has_momentum_ = false;
};

// Progress of TrainOnFeatures: after every step.
struct TrainProgress {
  int epoch = 0;           // 0-based
  int64_t step = 0;        // 0-based within the epoch
  int64_t steps_per_epoch = 0;
  double lr = 0;
  double loss = 0;         // this step's batch loss
  double epoch_mean_loss = 0;  // mean over the epoch's steps so far
};

struct TrainOptions {
  SgdOptions sgd;
  int batch_size = 256;  // the last, smaller batch of an epoch is kept (drop_last = false)
  uint64_t seed = 0;     // sample order: a permutation per epoch from (seed, epoch)
  std::function<void(const TrainProgress&)> on_step;  // optional
};

// Trains `classifier` on in-memory features (N, input_dim) with N labels for sgd.epochs
// epochs. Returns the mean training loss of each epoch. Errors: shapes/labels (naming the
// argument), batch_size <= 0, divergence (naming the epoch, step and learning rate).
absl::StatusOr<std::vector<double>> TrainOnFeatures(LinearClassifier& classifier,
                                                    const HostArray& features,
                                                    const std::vector<int64_t>& labels,
                                                    const TrainOptions& options);

// A permutation of [0, n) determined by (seed, epoch): Fisher-Yates over std::mt19937_64.
std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_LINEAR_CLASSIFIER_H_
