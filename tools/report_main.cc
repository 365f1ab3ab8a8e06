// bazel run //tools:report -- runs/x [runs/y ...]
// Rebuilds runs/x/report.html from the run folder's files (metrics.csv, event files,
// config.pbtxt, eval results), e.g. for a run from before report.html existed, or after
// evaluating a checkpoint. Status, wall time and ETA of a live process are not known here.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "moco/observe/report.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: report RUN_DIR [RUN_DIR ...]\n");
    return 2;
  }
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  for (int i = 1; i < argc; ++i) {
    std::string dir = argv[i];
    if (wd != nullptr && !dir.empty() && dir[0] != '/') dir = (std::filesystem::path(wd) / dir).string();
    const absl::Status s = moco::observe::WriteReport(dir, moco::observe::ReportStatus());
    if (!s.ok()) {
      std::fprintf(stderr, "report: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    std::printf("wrote %s/report.html\n", argv[i]);
  }
  return 0;
}
