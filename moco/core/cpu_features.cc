#include "moco/core/cpu_features.h"

#include <fstream>
#include <sstream>

namespace moco {

std::set<std::string> ParseCpuFlags(const std::string& cpuinfo_text) {
  std::istringstream lines(cpuinfo_text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (key != "flags") continue;
    std::istringstream words(line.substr(colon + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

const std::set<std::string>& CpuFlags() {
  static const std::set<std::string>* const flags = [] {
    std::ifstream in("/proc/cpuinfo");
    std::stringstream text;
    text << in.rdbuf();
    return new std::set<std::string>(ParseCpuFlags(text.str()));
  }();
  return *flags;
}

std::string Bf16CpuProblem(const std::set<std::string>& flags) {
  if (flags.count("avx512_bf16") || flags.count("amx_bf16")) return "";
  if (flags.empty()) return "needs a CPU with avx512_bf16 or amx_bf16; /proc/cpuinfo lists no flags";
  return "needs a CPU with avx512_bf16 or amx_bf16; this one has neither (see /proc/cpuinfo)";
}

std::string Fp16CpuProblem(const std::set<std::string>& flags) {
  const std::string has_fp16 = flags.count("avx512_fp16")
                                   ? "this CPU has avx512_fp16, but no LibTorch 1.13 kernel uses it"
                                   : "this CPU has no avx512_fp16 either";
  const std::string instead = Bf16CpuProblem(flags).empty()
                                  ? "use BF16 (this CPU has bf16 matrix instructions)"
                                  : "use FP32 (this CPU has no bf16 matrix instructions)";
  return "needs backend.device \"cuda\": LibTorch 1.13 has no fp16 convolution or matrix "
         "multiply for the CPU (" + has_fp16 + "); " + instead;
}

}  // namespace moco
