// Compares two checkpoints array by array, bitwise: the tool behind the "results unchanged"
// checks of refactorings (same config and seed, before and after a change).
//
//   bazel run //tests:compare_checkpoints -- A.ckpt B.ckpt
//
// Prints "identical: N arrays, global step S" and exits 0, or names the first difference
// (missing array, shape, or the first differing element with both values) and exits 1.
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"
#include "moco/run/checkpoint.h"
#include "moco/run/pipeline_main.h"

namespace moco {
namespace {

int g_argc = 0;
char** g_argv = nullptr;

absl::Status FirstDifference(const Checkpoint& a, const Checkpoint& b) {
  if (a.global_step != b.global_step || a.epoch != b.epoch) {
    return absl::FailedPreconditionError(absl::StrCat("counters differ: step ", a.global_step,
                                                      " vs ", b.global_step));
  }
  for (const auto& [name, x] : a.arrays) {
    auto it = b.arrays.find(name);
    if (it == b.arrays.end()) return absl::NotFoundError(absl::StrCat("B lacks '", name, "'"));
    const HostArray& y = it->second;
    if (x.shape() != y.shape()) {
      return absl::FailedPreconditionError(absl::StrCat("'", name, "' shapes ",
                                                        ShapeToString(x.shape()), " vs ",
                                                        ShapeToString(y.shape())));
    }
    if (std::memcmp(x.data().data(), y.data().data(), x.data().size() * sizeof(float)) != 0) {
      for (size_t i = 0; i < x.data().size(); ++i) {
        if (std::memcmp(&x.data()[i], &y.data()[i], sizeof(float)) != 0) {
          return absl::FailedPreconditionError(absl::StrCat(
              "'", name, "'[", i, "]: ", x.data()[i], " vs ", y.data()[i]));
        }
      }
    }
  }
  if (a.arrays.size() != b.arrays.size()) {
    return absl::FailedPreconditionError("B has arrays that A lacks");
  }
  return absl::OkStatus();
}

absl::Status Run() {
  if (g_argc != 3) return absl::InvalidArgumentError("usage: compare_checkpoints A.ckpt B.ckpt");
  ASSIGN_OR_RETURN(Checkpoint a, ReadCheckpoint(ResolveWorkspacePath(g_argv[1])));
  ASSIGN_OR_RETURN(Checkpoint b, ReadCheckpoint(ResolveWorkspacePath(g_argv[2])));
  RETURN_IF_ERROR(FirstDifference(a, b));
  std::printf("identical: %zu arrays, global step %ld\n", a.arrays.size(),
              static_cast<long>(a.global_step));
  return absl::OkStatus();
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  moco::g_argc = argc;  // two positional arguments; no flags of its own
  moco::g_argv = argv;
  return moco::PipelineMain(argc, argv, "Bitwise comparison of two checkpoints' arrays.",
                            &moco::Run);
}
