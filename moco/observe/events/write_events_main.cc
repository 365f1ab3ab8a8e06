// Test helper for the python3-protobuf interop test: writes a fixed event file into DIR and
// prints its path. Usage: write_events DIR
#include <cstdio>

#include "moco/observe/events/event_file.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  auto w = moco::tfevents::EventFileWriter::Create(argv[1]);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.status().ToString().c_str());
    return 1;
  }
  absl::Status s = (*w)->WriteScalars(50, {{"loss", 8.25f}, {"top1", 0.125f}});
  if (s.ok()) s = (*w)->WriteScalars(100, {{"loss", 7.5f}, {"knn_top1", 71.25f}});
  if (s.ok()) s = (*w)->Flush();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s\n", (*w)->path().c_str());
  return 0;
}
