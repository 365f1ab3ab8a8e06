// Gradient all-reduce throughput over loopback: the one flat bucket the data-parallel MoCo step
// all-reduces after each backward (Backend::AverageAcrossRanks), at the parameter counts of
// resnet18 (CIFAR stem, MLP head) and resnet50 (MLP head), through the Gloo communicator.
//
//   bazel run -c opt //bench:allreduce_benchmark -- --nproc=2 --iters=20
//
// The binary is its own launcher (moco/run/local_launcher.h): it starts --nproc ranks of itself;
// rank 0 prints, per model, ms per all-reduce and the bus bandwidth 2 (W - 1) / W * bytes / s
// (what each rank sends and receives in a ring all-reduce).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_format.h"
#include "backends/distributed/dist_env.h"
#include "backends/distributed/gloo_communicator.h"
#include "backends/torch/torch_tensor.h"
#include "gflags/gflags.h"
#include "moco/core/backend_registry.h"
#include "moco/core/status_macros.h"
#include "moco/run/local_launcher.h"
#include "moco/run/pipeline_main.h"

DEFINE_int32(nproc, 2, "Ranks (processes) on this machine.");
DEFINE_int32(iters, 20, "Timed all-reduces per model (after 3 untimed ones).");

namespace moco {
namespace {

// Parameters of `arch` with the MoCo v2 MLP head (feature_dim 128): the gradient bucket size.
absl::StatusOr<int64_t> ParameterCount(Backend& backend, const std::string& arch, bool cifar) {
  ModelConfig model;
  model.set_arch(arch);
  model.set_cifar_stem(cifar);
  model.set_in_channels(3);
  model.set_feature_dim(128);
  model.set_mlp_head(true);
  ASSIGN_OR_RETURN(std::unique_ptr<Encoder> encoder, backend.CreateEncoder(model, 0));
  ASSIGN_OR_RETURN(NamedArrays grads, encoder->ExportGradients());
  int64_t n = 0;
  for (const auto& [name, array] : grads) n += array.numel();
  return n;
}

absl::Status Rank() {
  ASSIGN_OR_RETURN(distributed::DistributedEnv env, distributed::DistributedEnvFromEnvironment());
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                   distributed::CreateGlooCommunicator(env, distributed::GlooOptions()));
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, CreateBackend("torch", {"cpu", 1}));
  const int w = comm->world_size();
  for (const auto& [arch, cifar, label] :
       {std::tuple{"resnet18", true, "resnet18 (CIFAR stem)"},
        std::tuple{"resnet50", false, "resnet50"}}) {
    ASSIGN_OR_RETURN(int64_t n, ParameterCount(*backend, arch, cifar));
    TensorPtr bucket = torch_backend::Wrap(torch::ones({n}));
    for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(comm->AllReduceAverage(*bucket));
    std::vector<double> ms;
    for (int i = 0; i < FLAGS_iters; ++i) {
      RETURN_IF_ERROR(comm->Barrier());
      const auto start = std::chrono::steady_clock::now();
      RETURN_IF_ERROR(comm->AllReduceAverage(*bucket));
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                             start)
                       .count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    const double bytes = 4.0 * static_cast<double>(n);
    if (comm->rank() == 0) {
      std::printf("%-22s %6.2fM floats (%5.1f MB): median %7.1f ms per all-reduce (min %.1f), "
                  "bus bandwidth %.2f GB/s, %d ranks\n",
                  label, n / 1e6, bytes / 1e6, median, ms.front(),
                  2.0 * (w - 1) / w * bytes / (median / 1e3) / 1e9, w);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Run() {
  if (StartedByLocalLauncher()) {
    RETURN_IF_ERROR(Rank());
    return 0;
  }
  LaunchOptions launch;
  launch.nproc = FLAGS_nproc;
  launch.argv = gflags::GetArgvs();
  launch.argv[0] = "/proc/self/exe";
  ASSIGN_OR_RETURN(LaunchResult result, LaunchLocalRanks(launch));
  return result.exit_code;
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  return moco::PipelineMainWithExitCode(
      argc, argv, "Gradient all-reduce throughput over loopback (Gloo).", &moco::Run);
}
