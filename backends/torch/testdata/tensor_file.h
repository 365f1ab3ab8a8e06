// The golden tensor lists the scripts in this folder write (make_param_names.py describes the
// MOCOTNS1 format), for the torch backend's tests.
#ifndef BACKENDS_TORCH_TESTDATA_TENSOR_FILE_H_
#define BACKENDS_TORCH_TESTDATA_TENSOR_FILE_H_

#include <map>
#include <string>

#include <torch/torch.h>

namespace moco::torch_backend {

// backends/torch/testdata/<name> inside a Bazel test's runfiles (or from the repository root).
std::string TestDataPath(const std::string& name);

// Name -> tensor (float16 entries widened to float32). Throws std::runtime_error naming the
// file if it cannot be read, is not MOCOTNS1, is truncated or has trailing bytes.
std::map<std::string, torch::Tensor> ReadTensorFile(const std::string& path);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TESTDATA_TENSOR_FILE_H_
