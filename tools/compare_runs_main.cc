// bazel run //tools:compare_runs -- runs/a runs/b [...] [--out=compare.html]
// One HTML page with the runs' curves overlaid and their configs diffed field by field
// (moco/observe/compare.h). Relative folders are taken from where `bazel run` was started.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gflags/gflags.h"
#include "moco/observe/compare.h"
#include "moco/observe/report.h"
#include "moco/observe/run_data.h"

DEFINE_string(out, "compare.html", "the page to write");

namespace {

std::string FromWorkingDirectory(const std::string& path) {
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (wd == nullptr || path.empty() || path[0] == '/') return path;
  return (std::filesystem::path(wd) / path).string();
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("compare_runs RUN_DIR RUN_DIR [...] [--out=compare.html]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc < 3) {
    std::fprintf(stderr, "usage: compare_runs RUN_DIR RUN_DIR [...] [--out=FILE]\n");
    return 2;
  }
  std::vector<moco::observe::RunData> runs;
  for (int i = 1; i < argc; ++i) {
    auto data = moco::observe::LoadRunData(FromWorkingDirectory(argv[i]));
    if (!data.ok()) {
      std::fprintf(stderr, "compare_runs: %s\n", std::string(data.status().message()).c_str());
      return 1;
    }
    data->run_dir = argv[i];
    runs.push_back(*std::move(data));
  }
  const std::string out = FromWorkingDirectory(FLAGS_out);
  const absl::Status s =
      moco::observe::WriteFileAtomically(out, moco::observe::RenderComparison(runs));
  if (!s.ok()) {
    std::fprintf(stderr, "compare_runs: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("wrote %s (%zu runs)\n", out.c_str(), runs.size());
  return 0;
}
