// Replays fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer: the corpus test of
// every fuzz target in the normal build, and a way to rerun one crasher under gcc.
//
//   replay FILE_OR_FOLDER...   (folders: every regular file below them, in sorted order)
//
// Exits 0 after replaying every input, 1 if there was none (a missing corpus must not pass);
// an input that crashes the reader ends the process as the crash does. Inputs run on a thread
// with a 1 MiB stack (kStackBytes): recursion that grows with the input overflows it here, as
// it does under the fuzzer's ASan frames, rather than passing on the main thread's 8 MiB.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <pthread.h>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kStackBytes = size_t{1} << 20;

struct Job {
  const std::string* bytes;
};

void* RunOne(void* arg) {
  const std::string& bytes = *static_cast<Job*>(arg)->bytes;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return nullptr;
}

// LLVMFuzzerTestOneInput(bytes) on a thread with a kStackBytes stack.
void ReplayOnSmallStack(const std::string& bytes) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackBytes);
  Job job{&bytes};
  pthread_t thread;
  if (pthread_create(&thread, &attr, RunOne, &job) != 0) {
    std::fprintf(stderr, "replay: cannot start a thread; replaying on the main thread\n");
    RunOne(&job);
  } else {
    pthread_join(thread, nullptr);
  }
  pthread_attr_destroy(&attr);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::error_code error;
    if (std::filesystem::is_directory(argv[i], error)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(argv[i])) {
        if (entry.is_regular_file()) inputs.push_back(entry.path().string());
      }
    } else {
      inputs.push_back(argv[i]);
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs (usage: replay FILE_OR_FOLDER...)\n");
    return 1;
  }
  for (const std::string& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
      return 1;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
    ReplayOnSmallStack(bytes);
  }
  std::fprintf(stderr, "replay: %zu inputs, no crash\n", inputs.size());
  return 0;
}
