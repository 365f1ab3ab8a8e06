#include "backends/eigen/eigen_backend.h"

#include <omp.h>

#include <algorithm>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "backends/eigen/eigen_encoder.h"
#include "backends/eigen/eigen_adamw.h"
#include "backends/eigen/eigen_info_nce_loss.h"
#include "backends/eigen/eigen_key_queue.h"
#include "backends/eigen/eigen_lars.h"
#include "backends/eigen/eigen_rank_average.h"
#include "backends/eigen/eigen_sgd.h"
#include "backends/eigen/eigen_tensor.h"
#include "moco/core/backend_registry.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eigen_backend {

absl::StatusOr<std::unique_ptr<Backend>> EigenBackend::Create(const BackendOptions& options) {
  if (options.device != "cpu") {
    return absl::InvalidArgumentError(absl::StrCat(
        "backend.device '", options.device, "': the eigen backend runs on \"cpu\" only"));
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads (", options.threads, ") must be >= 0"));
  }
  if (options.precision != Precision::kFp32 || options.channels_last) {
    return absl::InvalidArgumentError(
        "backend.precision / backend.channels_last: the eigen backend is the fp32 NCHW "
        "reference (FP32, channels_last false)");
  }
  if (options.threads > 0) {
    omp_set_num_threads(options.threads);
    Eigen::setNbThreads(options.threads);
  }
  return std::unique_ptr<Backend>(new EigenBackend());
}

const std::string& EigenBackend::name() const { return EigenBackendName(); }

absl::StatusOr<std::unique_ptr<Encoder>> EigenBackend::CreateEncoder(
    const ModelConfig& model, uint64_t seed, const EncoderOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<EigenEncoder> encoder,
                   EigenEncoder::Create(model, seed, options));
  return std::unique_ptr<Encoder>(std::move(encoder));
}

absl::StatusOr<std::unique_ptr<KeyQueue>> EigenBackend::CreateQueue(int64_t size, int64_t dim,
                                                                    uint64_t seed) {
  ASSIGN_OR_RETURN(std::unique_ptr<EigenKeyQueue> queue, EigenKeyQueue::Create(size, dim, seed));
  return std::unique_ptr<KeyQueue>(std::move(queue));
}

absl::StatusOr<std::unique_ptr<ContrastiveLoss>> EigenBackend::CreateInfoNceLoss() {
  return std::unique_ptr<ContrastiveLoss>(new EigenInfoNceLoss);
}

absl::StatusOr<std::unique_ptr<Optimizer>> EigenBackend::CreateSgd(Encoder& encoder,
                                                                   const OptimizerConfig& config) {
  auto* eigen_encoder = dynamic_cast<EigenEncoder*>(&encoder);
  if (eigen_encoder == nullptr) {
    return absl::InvalidArgumentError("CreateSgd: the encoder is not an eigen encoder");
  }
  return std::unique_ptr<Optimizer>(new EigenSgd(*eigen_encoder, config));
}

absl::StatusOr<std::unique_ptr<Optimizer>> EigenBackend::CreateLars(Encoder& encoder,
                                                                    const OptimizerConfig& config) {
  auto* eigen_encoder = dynamic_cast<EigenEncoder*>(&encoder);
  if (eigen_encoder == nullptr) {
    return absl::InvalidArgumentError("CreateLars: the encoder is not an eigen encoder");
  }
  return std::unique_ptr<Optimizer>(new EigenLars(ParametersOf(*eigen_encoder), config));
}

absl::StatusOr<std::unique_ptr<Optimizer>> EigenBackend::CreateAdamW(
    Encoder& encoder, const OptimizerConfig& config) {
  auto* eigen_encoder = dynamic_cast<EigenEncoder*>(&encoder);
  if (eigen_encoder == nullptr) {
    return absl::InvalidArgumentError("CreateAdamW: the encoder is not an eigen encoder");
  }
  return std::unique_ptr<Optimizer>(new EigenAdamW(ParametersOf(*eigen_encoder), config));
}

absl::StatusOr<TensorPtr> EigenBackend::Upload(const HostArray& array) {
  return TensorPtr(MakeEigenTensor(array));
}

absl::StatusOr<TensorPtr> EigenBackend::GatherRows(const Tensor& x,
                                                   const std::vector<int64_t>& rows) {
  ASSIGN_OR_RETURN(const EigenTensor* t, AsEigenTensor(x, "GatherRows"));
  const HostArray& a = t->array();
  if (a.shape().empty()) return absl::InvalidArgumentError("GatherRows: a 0-d tensor has no rows");
  const int64_t n = a.shape()[0];
  const int64_t row = n == 0 ? 0 : a.numel() / n;
  std::vector<int64_t> shape = a.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  HostArray out(shape);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("GatherRows: row index ", rows[i], " out of range [0, ", n, ")"));
    }
    std::copy_n(a.data().begin() + rows[i] * row, row, out.mutable_data().begin() + static_cast<int64_t>(i) * row);
  }
  return TensorPtr(MakeEigenTensor(std::move(out)));
}

absl::StatusOr<TensorPtr> EigenBackend::Scale(const Tensor& x, float factor) {
  ASSIGN_OR_RETURN(const EigenTensor* t, AsEigenTensor(x, "Scale"));
  HostArray out = t->array();
  for (float& v : out.mutable_data()) v *= factor;
  return TensorPtr(MakeEigenTensor(std::move(out)));
}

absl::Status EigenBackend::AverageAcrossRanks(Encoder& encoder, RankAveraged what,
                                              Communicator& communicator) {
  auto* eigen_encoder = dynamic_cast<EigenEncoder*>(&encoder);
  if (eigen_encoder == nullptr) {
    return absl::InvalidArgumentError("AverageAcrossRanks: the encoder is not an eigen encoder");
  }
  return AverageEigenEncoderAcrossRanks(*eigen_encoder, what, communicator);
}

static std::string CheckEigenDevice(const std::string& device) {
  return device == "cpu" ? "" : "must be \"cpu\" for the eigen backend";
}

MOCO_REGISTER_BACKEND(eigen, EigenBackend::Create, CheckEigenDevice);

}  // namespace eigen_backend
}  // namespace moco
