#include "eval/linear_classifier.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eval {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kPi = 3.14159265358979323846;

absl::Status CheckBatch(const HostArray& features, const std::vector<int64_t>* labels,
                        int64_t dim, int num_classes) {
  if (features.shape().size() != 2 || features.shape()[1] != dim ||
      features.numel() != features.shape()[0] * dim) {
    std::string shape;
    for (int64_t s : features.shape()) absl::StrAppend(&shape, shape.empty() ? "" : ", ", s);
    return absl::InvalidArgumentError(absl::StrCat("features has shape (", shape,
                                                   "), expected (rows, ", dim, ")"));
  }
  if (labels == nullptr) return absl::OkStatus();
  if (static_cast<int64_t>(labels->size()) != features.shape()[0]) {
    return absl::InvalidArgumentError(absl::StrCat("labels has ", labels->size(),
                                                   " entries, features has ",
                                                   features.shape()[0], " rows"));
  }
  for (size_t i = 0; i < labels->size(); ++i) {
    if ((*labels)[i] < 0 || (*labels)[i] >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("labels[", i, "] (", (*labels)[i],
                                                     ") is outside [0, ", num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

// Unbiased-enough uniform integer in [0, bound) from one 64-bit draw (multiply-shift).
uint64_t UniformBelow(std::mt19937_64& gen, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(gen()) * bound) >> 64);
}

// Uniform double in (0, 1) from the top 53 bits.
double UniformOpen(std::mt19937_64& gen) {
  return (static_cast<double>(gen() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

}  // namespace

double LearningRateAt(const SgdOptions& options, int epoch) {
  switch (options.schedule) {
    case SgdOptions::Schedule::kCosine:
      return options.lr * 0.5 * (1.0 + std::cos(kPi * epoch / std::max(1, options.epochs)));
    case SgdOptions::Schedule::kMultiStep: {
      double lr = options.lr;
      for (int m : options.milestones) {
        if (epoch >= m) lr *= options.gamma;
      }
      return lr;
    }
  }
  return options.lr;
}

LinearClassifier::LinearClassifier(int64_t input_dim, int num_classes)
    : input_dim_(input_dim),
      num_classes_(num_classes),
      weight_(static_cast<size_t>(input_dim * num_classes), 0.0f),
      bias_(static_cast<size_t>(num_classes), 0.0f),
      weight_buf_(weight_.size(), 0.0f),
      bias_buf_(bias_.size(), 0.0f) {}

absl::StatusOr<LinearClassifier> LinearClassifier::Create(int64_t input_dim, int num_classes,
                                                          uint64_t seed) {
  if (input_dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("input_dim (", input_dim, ") must be > 0"));
  }
  if (num_classes <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_classes (", num_classes, ") must be > 0"));
  }
  LinearClassifier c(input_dim, num_classes);
  std::mt19937_64 gen(seed);
  // Box-Muller, two normals per pair of uniforms; std 0.01.
  for (size_t i = 0; i < c.weight_.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(UniformOpen(gen)));
    const double theta = 2.0 * kPi * UniformOpen(gen);
    c.weight_[i] = static_cast<float>(0.01 * r * std::cos(theta));
    if (i + 1 < c.weight_.size()) c.weight_[i + 1] = static_cast<float>(0.01 * r * std::sin(theta));
  }
  return c;
}

absl::StatusOr<HostArray> LinearClassifier::Scores(const HostArray& features) const {
  if (absl::Status s = CheckBatch(features, nullptr, input_dim_, num_classes_); !s.ok()) return s;
  const int64_t m = features.shape()[0];
  HostArray out({m, num_classes_});
  if (m == 0) return out;
  Eigen::Map<const RowMatrix> x(features.data().data(), m, input_dim_);
  Eigen::Map<const RowMatrix> w(weight_.data(), num_classes_, input_dim_);
  Eigen::Map<const Eigen::RowVectorXf> b(bias_.data(), num_classes_);
  Eigen::Map<RowMatrix> logits(out.mutable_data().data(), m, num_classes_);
  logits.noalias() = x * w.transpose();
  logits.rowwise() += b;
  return out;
}

absl::StatusOr<double> LinearClassifier::LossAndGradients(const HostArray& features,
                                                          const std::vector<int64_t>& labels,
                                                          HostArray* grad_weight,
                                                          HostArray* grad_bias) const {
  if (absl::Status s = CheckBatch(features, &labels, input_dim_, num_classes_); !s.ok()) return s;
  const int64_t m = features.shape()[0];
  if (m == 0) return absl::InvalidArgumentError("features has no rows: empty batch");
  absl::StatusOr<HostArray> scores = Scores(features);
  if (!scores.ok()) return scores.status();
  // Softmax in place (max-shifted), loss in double; then d(mean loss)/d(logits) = (p - onehot)/m.
  Eigen::Map<RowMatrix> g(scores->mutable_data().data(), m, num_classes_);
  double loss = 0;
  for (int64_t i = 0; i < m; ++i) {
    const float mx = g.row(i).maxCoeff();
    double sum = 0;
    for (int c = 0; c < num_classes_; ++c) sum += std::exp(static_cast<double>(g(i, c) - mx));
    const double log_sum = std::log(sum) + mx;
    loss += log_sum - g(i, labels[i]);
    for (int c = 0; c < num_classes_; ++c) {
      g(i, c) = static_cast<float>(std::exp(static_cast<double>(g(i, c)) - log_sum) / m);
    }
    g(i, labels[i]) -= 1.0f / static_cast<float>(m);
  }
  if (grad_weight != nullptr) {
    *grad_weight = HostArray({num_classes_, input_dim_});
    Eigen::Map<const RowMatrix> x(features.data().data(), m, input_dim_);
    Eigen::Map<RowMatrix> gw(grad_weight->mutable_data().data(), num_classes_, input_dim_);
    gw.noalias() = g.transpose() * x;
  }
  if (grad_bias != nullptr) {
    *grad_bias = HostArray({num_classes_});
    Eigen::Map<Eigen::RowVectorXf>(grad_bias->mutable_data().data(), num_classes_) = g.colwise().sum();
  }
  return loss / m;
}

absl::StatusOr<double> LinearClassifier::SgdStep(const HostArray& features,
                                                 const std::vector<int64_t>& labels, double lr,
                                                 const SgdOptions& options) {
  HostArray gw, gb;
  absl::StatusOr<double> loss = LossAndGradients(features, labels, &gw, &gb);
  if (!loss.ok()) return loss.status();
  if (!std::isfinite(*loss)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "linear classifier diverged: batch loss is ", *loss, " at learning rate ", lr));
  }
  auto update = [&](std::vector<float>& p, std::vector<float>& buf, const std::vector<float>& g) {
    const float wd = static_cast<float>(options.weight_decay);
    const float mom = static_cast<float>(options.momentum);
    const float rate = static_cast<float>(lr);
    for (size_t i = 0; i < p.size(); ++i) {
      const float d = g[i] + wd * p[i];
      buf[i] = has_momentum_ ? mom * buf[i] + d : d;
      p[i] -= rate * buf[i];
    }
  };
  update(weight_, weight_buf_, gw.data());
  update(bias_, bias_buf_, gb.data());
  has_momentum_ = true;
  return *loss;
}

NamedArrays LinearClassifier::ExportState() const {
  NamedArrays state;
  state["weight"] = HostArray({num_classes_, input_dim_}, weight_);
  state["bias"] = HostArray({num_classes_}, bias_);
  return state;
}

namespace {

// OK when `state` holds exactly the `expected` names with those shapes; otherwise
// InvalidArgument naming the first missing, mis-shaped or unexpected entry.
absl::Status CheckEntries(const NamedArrays& state,
                          const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected) {
  for (const auto& [name, shape] : expected) {
    auto it = state.find(name);
    if (it == state.end()) {
      return absl::InvalidArgumentError(absl::StrCat("linear classifier state lacks \"", name, "\""));
    }
    if (it->second.shape() != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "linear classifier state \"", name, "\" has shape ", ShapeToString(it->second.shape()),
          ", expected ", ShapeToString(shape)));
    }
  }
  for (const auto& [name, array] : state) {
    bool known = false;
    for (const auto& e : expected) known = known || e.first == name;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("linear classifier state has unexpected entry \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LinearClassifier::ImportState(const NamedArrays& state) {
  RETURN_IF_ERROR(CheckEntries(state, {{"bias", {num_classes_}}, {"weight", {num_classes_, input_dim_}}}));
  weight_ = state.at("weight").data();
  bias_ = state.at("bias").data();
  std::fill(weight_buf_.begin(), weight_buf_.end(), 0.0f);
  std::fill(bias_buf_.begin(), bias_buf_.end(), 0.0f);
  has_momentum_ = false;
  return absl::OkStatus();
}

NamedArrays LinearClassifier::ExportMomentum() const {
  NamedArrays buffers;
  buffers["weight_momentum"] = HostArray({num_classes_, input_dim_}, weight_buf_);
  buffers["bias_momentum"] = HostArray({num_classes_}, bias_buf_);
  return buffers;
}

absl::Status LinearClassifier::ImportMomentum(const NamedArrays& buffers) {
  RETURN_IF_ERROR(CheckEntries(buffers, {{"bias_momentum", {num_classes_}},
                                         {"weight_momentum", {num_classes_, input_dim_}}}));
  weight_buf_ = buffers.at("weight_momentum").data();
  bias_buf_ = buffers.at("bias_momentum").data();
  // Zero buffers give the same first update either way (momentum * 0 + g == g).
  has_momentum_ = true;
  return absl::OkStatus();
}

std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(epoch), static_cast<uint32_t>(epoch >> 32), 0x6c696eu};
  std::mt19937_64 gen(seq);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(order[i], order[UniformBelow(gen, static_cast<uint64_t>(i + 1))]);
  }
  return order;
}

absl::StatusOr<std::vector<double>> TrainOnFeatures(LinearClassifier& classifier,
                                                    const HostArray& features,
                                                    const std::vector<int64_t>& labels,
                                                    const TrainOptions& options) {
  if (absl::Status s = CheckBatch(features, &labels, classifier.input_dim(),
                                  classifier.num_classes());
      !s.ok()) {
    return s;
  }
  if (options.batch_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size (", options.batch_size, ") must be > 0"));
  }
  const int64_t n = features.shape()[0], d = classifier.input_dim();
  if (n == 0) return absl::InvalidArgumentError("features has no rows: nothing to train on");
  const int64_t steps = (n + options.batch_size - 1) / options.batch_size;
  std::vector<double> epoch_losses;
  HostArray batch;
  std::vector<int64_t> batch_labels;
  for (int epoch = 0; epoch < options.sgd.epochs; ++epoch) {
    const double lr = LearningRateAt(options.sgd, epoch);
    const std::vector<int64_t> order = EpochPermutation(n, options.seed, epoch);
    double sum = 0;
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t begin = step * options.batch_size;
      const int64_t rows = std::min<int64_t>(options.batch_size, n - begin);
      batch.Reshape({rows, d});
      batch_labels.resize(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t src = order[begin + r];
        std::copy_n(features.data().begin() + src * d, d, batch.mutable_data().begin() + r * d);
        batch_labels[r] = labels[src];
      }
      absl::StatusOr<double> loss = classifier.SgdStep(batch, batch_labels, lr, options.sgd);
      if (!loss.ok()) {
        return absl::Status(loss.status().code(),
                            absl::StrCat("epoch ", epoch, ", step ", step, ": ",
                                         loss.status().message()));
      }
      sum += *loss;
      if (options.on_step) {
        TrainProgress p;
        p.epoch = epoch;
        p.step = step;
        p.steps_per_epoch = steps;
        p.lr = lr;
        p.loss = *loss;
        p.epoch_mean_loss = sum / (step + 1);
        options.on_step(p);
      }
    }
    epoch_losses.push_back(sum / steps);
  }
  return epoch_losses;
}

}  // namespace eval
}  // namespace moco
