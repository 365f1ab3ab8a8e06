// Whether LibTorch's bf16 kernels on this machine accumulate their dot products in fp32.
//
// bf16 autocast assumes they do (bf16 operands, fp32 sums). LibTorch 1.13 keeps that promise
// only where it calls oneDNN's bf16 kernels: channels-last convolutions everywhere, and NCHW
// convolutions and matmuls on the CPUs its oneDNN bf16 gemm dispatch accepts (Intel with
// AMX or AVX512-BF16 here). Elsewhere (measured on one AMD EPYC with avx512_bf16; another,
// Zen 5, sums in fp32) its fallback gemm sums in bf16, so a sum of K terms stalls once it
// reaches 256 x the terms' size: the relative error of a K = 1152 product grows from 3e-3 to
// 4e-2.
//
// Each probe computes exact sums of 1024 ones in bf16 with GEMM-sized operands (1024 with fp32
// accumulation, 256 with bf16 accumulation, where 256 + 1 rounds back to 256) and is cached
// after its first call.
#ifndef BACKENDS_TORCH_BF16_ACCUMULATION_H_
#define BACKENDS_TORCH_BF16_ACCUMULATION_H_

#include <string>

#include <torch/torch.h>

namespace moco::torch_backend {

struct Bf16Accumulation {
  bool matmul_fp32 = true;               // torch::mm / linear on bf16 operands
  bool nchw_conv_fp32 = true;            // conv2d on bf16 NCHW tensors
  bool channels_last_conv_fp32 = true;   // conv2d on bf16 channels-last tensors
};

// The measured behaviour on `device` (CPU probes; CUDA reports fp32 everywhere, as cuBLAS and
// cuDNN accumulate bf16 products in fp32).
const Bf16Accumulation& MeasuredBf16Accumulation(const torch::Device& device);

// A warning for a BF16 run with this layout whose kernels sum in bf16 on this machine, naming
// the config field that avoids it; empty when every kernel it uses sums in fp32.
std::string Bf16AccumulationWarning(const Bf16Accumulation& measured, bool channels_last);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_BF16_ACCUMULATION_H_
