// What this CPU can do, read from the kernel (/proc/cpuinfo), not guessed from the model name:
// the config validator refuses backend.precision BF16 on a CPU without bf16 instructions.
#ifndef MOCO_CORE_CPU_FEATURES_H_
#define MOCO_CORE_CPU_FEATURES_H_

#include <set>
#include <string>

namespace moco {

// The words of the first "flags" line of `cpuinfo_text` (/proc/cpuinfo's format).
std::set<std::string> ParseCpuFlags(const std::string& cpuinfo_text);

// This machine's flags (/proc/cpuinfo, read once); empty when unreadable.
const std::set<std::string>& CpuFlags();

// "" when `flags` include native bf16 matrix math (avx512_bf16 or amx_bf16), else why not, as
// a phrase ("needs a CPU with avx512_bf16 or amx_bf16; this one has neither").
std::string Bf16CpuProblem(const std::set<std::string>& flags);

// Why backend.precision FP16 cannot run on this CPU, as a phrase; never "": LibTorch 1.13 has no
// CPU fp16 convolution or GEMM kernels, whatever the CPU (avx512_fp16 included). Says whether
// `flags` have avx512_fp16 and which precision to use instead (BF16 where Bf16CpuProblem is "").
std::string Fp16CpuProblem(const std::set<std::string>& flags);

}  // namespace moco

#endif  // MOCO_CORE_CPU_FEATURES_H_
