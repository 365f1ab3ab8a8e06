#include "backends/torch/torch_backend.h"

#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backends/torch/bf16_accumulation.h"
#include "backends/torch/torch_adamw.h"
#include "backends/torch/torch_encoder.h"
#include "backends/torch/torch_info_nce.h"
#include "backends/torch/torch_key_queue.h"
#include "backends/torch/torch_lars.h"
#include "backends/torch/torch_gradient_buckets.h"
#include "backends/torch/torch_rank_average.h"
#include "backends/torch/torch_sgd.h"
#include "backends/torch/torch_tensor.h"
#include "moco/core/backend_registry.h"
#include "moco/core/cpu_features.h"
#include "moco/core/status_macros.h"

namespace moco::torch_backend {

absl::StatusOr<std::unique_ptr<Backend>> TorchBackend::Create(const BackendOptions& options) {
  return GuardTorch("TorchBackend::Create", [&]() -> absl::StatusOr<std::unique_ptr<Backend>> {
    torch::Device device(options.device);
    if (device.is_cuda()) {
      if (!torch::cuda::is_available()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "backend.device is '", options.device,
            "' but this LibTorch has no CUDA or no GPU is visible; build with "
            "MOCO_LIBTORCH=/path/to/cuda/libtorch or use device \"cpu\""));
      }
      if (device.has_index() && device.index() >= torch::cuda::device_count()) {
        return absl::FailedPreconditionError(
            absl::StrCat("backend.device '", options.device, "': only ",
                         torch::cuda::device_count(), " CUDA device(s) visible"));
      }
    } else if (!device.is_cpu()) {
      return absl::InvalidArgumentError(
          absl::StrCat("backend.device '", options.device, "' is not cpu or cuda"));
    }
    if (options.precision == Precision::kFp16 && !device.is_cuda()) {
      return absl::InvalidArgumentError(
          absl::StrCat("backend.precision (FP16) ", Fp16CpuProblem(CpuFlags())));
    }
    const int threads = options.threads > 0
                            ? options.threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // Debian's LibTorch starts with one intra-op thread; set it explicitly.
    at::set_num_threads(threads);
    if (options.precision == Precision::kBf16) {
      const std::string warning =
          Bf16AccumulationWarning(MeasuredBf16Accumulation(device), options.channels_last);
      static std::once_flag warned;  // once per process, not per backend a test creates
      if (!warning.empty()) std::call_once(warned, [&] { std::cerr << "warning: " << warning << "\n"; });
    }
    return std::unique_ptr<Backend>(new TorchBackend(
        device, Numerics{options.precision == Precision::kBf16,
                         options.precision == Precision::kFp16, options.channels_last}));
  });
}

const std::string& TorchBackend::name() const { return BackendName(); }

absl::StatusOr<std::unique_ptr<Encoder>> TorchBackend::CreateEncoder(
    const ModelConfig& model, uint64_t seed, const EncoderOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<TorchEncoder> encoder,
                   TorchEncoder::Create(model, seed, options, device_, numerics_));
  return std::unique_ptr<Encoder>(std::move(encoder));
}

absl::StatusOr<std::unique_ptr<KeyQueue>> TorchBackend::CreateQueue(int64_t size, int64_t dim,
                                                                    uint64_t seed) {
  return GuardTorch("TorchBackend::CreateQueue", [&]() -> absl::StatusOr<std::unique_ptr<KeyQueue>> {
    return std::unique_ptr<KeyQueue>(new TorchKeyQueue(size, dim, seed, device_));
  });
}

absl::StatusOr<std::unique_ptr<ContrastiveLoss>> TorchBackend::CreateInfoNceLoss() {
  return std::unique_ptr<ContrastiveLoss>(new TorchInfoNce);
}

absl::StatusOr<std::unique_ptr<Optimizer>> TorchBackend::CreateSgd(Encoder& encoder,
                                                                   const OptimizerConfig& config) {
  auto* torch_encoder = dynamic_cast<TorchEncoder*>(&encoder);
  if (torch_encoder == nullptr) {
    return absl::InvalidArgumentError("CreateSgd: the encoder is not a torch encoder");
  }
  return std::unique_ptr<Optimizer>(new TorchSgd(*torch_encoder, config));
}

absl::StatusOr<std::unique_ptr<Optimizer>> TorchBackend::CreateLars(Encoder& encoder,
                                                                    const OptimizerConfig& config) {
  auto* torch_encoder = dynamic_cast<TorchEncoder*>(&encoder);
  if (torch_encoder == nullptr) {
    return absl::InvalidArgumentError("CreateLars: the encoder is not a torch encoder");
  }
  return std::unique_ptr<Optimizer>(
      new TorchLars(torch_encoder->module()->named_parameters(), config));
}

absl::StatusOr<std::unique_ptr<Optimizer>> TorchBackend::CreateAdamW(
    Encoder& encoder, const OptimizerConfig& config) {
  auto* torch_encoder = dynamic_cast<TorchEncoder*>(&encoder);
  if (torch_encoder == nullptr) {
    return absl::InvalidArgumentError("CreateAdamW: the encoder is not a torch encoder");
  }
  return std::unique_ptr<Optimizer>(
      new TorchAdamW(torch_encoder->module()->named_parameters(), config));
}

absl::StatusOr<TensorPtr> TorchBackend::Upload(const HostArray& array) {
  return GuardTorch("TorchBackend::Upload", [&]() -> absl::StatusOr<TensorPtr> {
    return Wrap(FromHostArray(array, device_));
  });
}

absl::StatusOr<TensorPtr> TorchBackend::GatherRows(const Tensor& x,
                                                   const std::vector<int64_t>& rows) {
  ASSIGN_OR_RETURN(torch::Tensor t, Unwrap(x));
  return GuardTorch("TorchBackend::GatherRows", [&]() -> absl::StatusOr<TensorPtr> {
    torch::Tensor index =
        torch::from_blob(const_cast<int64_t*>(rows.data()), {static_cast<int64_t>(rows.size())},
                         torch::kInt64)
            .to(t.device());
    return Wrap(t.index_select(0, index));
  });
}

absl::StatusOr<TensorPtr> TorchBackend::Scale(const Tensor& x, float factor) {
  ASSIGN_OR_RETURN(torch::Tensor t, Unwrap(x));
  return GuardTorch("TorchBackend::Scale", [&]() -> absl::StatusOr<TensorPtr> {
    torch::NoGradGuard no_grad;
    return Wrap(t * factor);
  });
}

absl::Status TorchBackend::AverageAcrossRanks(Encoder& encoder, RankAveraged what,
                                              Communicator& communicator) {
  auto* torch_encoder = dynamic_cast<TorchEncoder*>(&encoder);
  if (torch_encoder == nullptr) {
    return absl::InvalidArgumentError("AverageAcrossRanks: the encoder is not a torch encoder");
  }
  return AverageTorchEncoderAcrossRanks(*torch_encoder, what, communicator);
}

absl::StatusOr<std::unique_ptr<GradientAverager>> TorchBackend::CreateGradientAverager(
    Encoder& encoder, Communicator& communicator, int64_t bucket_bytes) {
  auto* torch_encoder = dynamic_cast<TorchEncoder*>(&encoder);
  if (torch_encoder == nullptr) {
    return absl::InvalidArgumentError("CreateGradientAverager: the encoder is not a torch encoder");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BucketedGradientAverager> averager,
                   BucketedGradientAverager::Create(*torch_encoder, communicator, bucket_bytes));
  return std::unique_ptr<GradientAverager>(std::move(averager));
}

// "cpu", "cuda" or "cuda:N"; whether that GPU exists is Create's question.
static std::string CheckTorchDevice(const std::string& device) {
  int index;
  if (device == "cpu" || device == "cuda") return "";
  if (absl::StartsWith(device, "cuda:") && absl::SimpleAtoi(device.substr(5), &index) &&
      index >= 0) {
    return "";
  }
  return "must be \"cpu\", \"cuda\" or \"cuda:N\" for the torch backend";
}

MOCO_REGISTER_BACKEND(torch, TorchBackend::Create, CheckTorchDevice,
                      BackendCapabilities{/*bf16=*/true, /*channels_last=*/true, /*fp16=*/true});

}  // namespace moco::torch_backend
