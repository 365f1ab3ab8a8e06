#include "moco/run/pipeline_main.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>

#include "gflags/gflags.h"
#include "glog/logging.h"

namespace moco {

int PipelineMain(int argc, char** argv, const std::string& usage, absl::Status (*run)()) {
  static absl::Status (*status_run)() = run;
  return PipelineMainWithExitCode(argc, argv, usage, []() -> absl::StatusOr<int> {
    absl::Status status = status_run();
    if (!status.ok()) return status;
    return 0;
  });
}

int PipelineMainWithExitCode(int argc, char** argv, const std::string& usage,
                             absl::StatusOr<int> (*run)()) {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  gflags::SetUsageMessage(usage);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(wd) != 0) LOG(WARNING) << "cannot chdir to " << wd;
  }
  const absl::StatusOr<int> exit_code = run();
  if (!exit_code.ok()) {
    LOG(ERROR) << exit_code.status().message();
    return 1;
  }
  return *exit_code;
}

std::string ResolveWorkspacePath(const std::string& path) {
  if (path.empty() || path[0] == '/' || access(path.c_str(), R_OK) == 0) return path;
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace == nullptr) return path;
  const std::string candidate = std::string(workspace) + "/" + path;
  return access(candidate.c_str(), R_OK) == 0 ? candidate : path;
}

}  // namespace moco
