// MlpHead<T>: a projector or predictor head of a moco::HeadSpec (moco/core/model_spec.h) on the
// Eigen layer functions, with its backward pass. v1/v2 heads: Linear (with bias), ReLU between
// layers. v3 heads: bias-free Linear, BatchNorm1d + ReLU after each hidden layer, and for the
// projector a BatchNorm1d without affine parameters after the last (its gamma is fixed at 1 and
// beta at 0; they are neither parameters nor state, as in torch's affine=False).
// Initialization: torch's Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight (then
// bias), drawn from the network's generator in layer order; BN weight 1, bias 0.
//
//   MlpHead<float> head = MlpHead<float>::Make(spec.projector, &rng);
//   const Blob<float>& z = head.Forward(features, bn_options, &cache);
//   head.Backward(features, dz, &cache, &d_features);   // accumulates into the grads
#ifndef BACKENDS_EIGEN_MLP_HEAD_H_
#define BACKENDS_EIGEN_MLP_HEAD_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backends/eigen/batch_norm.h"
#include "backends/eigen/blob.h"
#include "backends/eigen/elementwise.h"
#include "backends/eigen/linear.h"
#include "backends/eigen/params.h"
#include "glog/logging.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace eigen_backend {

// One forward's activations of an MlpHead, and its backward scratch.
template <typename T>
struct MlpHeadCache {
  std::vector<Blob<T>> linear_out;  // per layer: the Linear output (before BN) when it has a BN
  std::vector<Blob<T>> out;         // per layer: the layer output (after BN and ReLU)
  std::vector<BatchNormCache<T>> bn;
  std::vector<Blob<T>> d_out, d_linear;
  std::vector<T> unused_grad;  // affine-free BN's gamma/beta gradients land here
};

template <typename T>
class MlpHead {
 public:
  static MlpHead Make(const HeadSpec& spec, std::mt19937_64* rng);

  // x (N, in_dim) -> (N, out_dim), the last entry of cache->out. `bn` as the backbone's (train
  // mode uses batch statistics; splits must be 1 for heads with BN, see EncoderSpecForEncoder).
  const Blob<T>& Forward(const Blob<T>& x, const BatchNormOptions& bn, MlpHeadCache<T>* cache);
  // Given the Forward's input x and dy = d(loss)/d(output), accumulates the parameter gradients
  // and writes d(loss)/d(x) into dx. dy may alias nothing in the cache.
  void Backward(const Blob<T>& x, const Blob<T>& dy, MlpHeadCache<T>* cache, Blob<T>* dx);

  void AddParameters(std::vector<StateRef<T>>* out);
  void AddBuffers(std::vector<StateRef<T>>* out);
  // Each layer's output named as HeadSpec::OutputName.
  void AddOutputs(const MlpHeadCache<T>& cache,
                  std::vector<std::pair<std::string, const Blob<T>*>>* out) const;

  const HeadSpec& spec() const { return spec_; }

 private:
  struct Layer {
    LinearParams<T> linear;
    bool has_norm = false;
    bool affine = true;
    BatchNormParams<T> bn;
    bool relu = false;
  };

  HeadSpec spec_;
  std::vector<Layer> layers_;
};

// ---------------------------------------------------------------------------------------------
// Implementation.

template <typename T>
MlpHead<T> MlpHead<T>::Make(const HeadSpec& spec, std::mt19937_64* rng) {
  MlpHead head;
  head.spec_ = spec;
  for (int i = 0; i < spec.num_layers(); ++i) {
    Layer layer;
    LinearParams<T>& l = layer.linear;
    l.in = spec.widths[i];
    l.out = spec.widths[i + 1];
    l.weight.Init({l.out, l.in});
    const double bound = 1.0 / std::sqrt(static_cast<double>(l.in));
    std::uniform_real_distribution<double> dist(-bound, bound);
    for (T& v : l.weight.value) v = static_cast<T>(dist(*rng));
    if (spec.has_bias()) {
      l.bias.Init({l.out});
      for (T& v : l.bias.value) v = static_cast<T>(dist(*rng));
    }
    layer.has_norm = spec.HasNorm(i);
    layer.relu = i + 1 < spec.num_layers();
    layer.affine = layer.relu;  // only the projector's last BN is affine-free
    if (layer.has_norm) layer.bn.Init(l.out);
    head.layers_.push_back(std::move(layer));
  }
  return head;
}

template <typename T>
const Blob<T>& MlpHead<T>::Forward(const Blob<T>& x, const BatchNormOptions& bn,
                                   MlpHeadCache<T>* c) {
  const size_t n = layers_.size();
  c->out.resize(n);
  c->linear_out.resize(n);
  c->bn.resize(n);
  const Blob<T>* h = &x;
  for (size_t i = 0; i < n; ++i) {
    Layer& layer = layers_[i];
    LinearParams<T>& l = layer.linear;
    const T* bias = spec_.has_bias() ? l.bias.value.data() : nullptr;
    if (!layer.has_norm) {
      LinearForward(*h, l.weight.value.data(), bias, l.out, &c->out[i]);
    } else {
      LinearForward(*h, l.weight.value.data(), bias, l.out, &c->linear_out[i]);
      BatchNormForward(c->linear_out[i], layer.bn.weight.value.data(), layer.bn.bias.value.data(),
                       layer.bn.running_mean.data(), layer.bn.running_var.data(), bn, &c->out[i],
                       &c->bn[i]);
      if (bn.train && bn.update_running) layer.bn.num_batches_tracked[0] += T(1);
    }
    if (layer.relu) ReluInPlace(&c->out[i]);
    h = &c->out[i];
  }
  return *h;
}

template <typename T>
void MlpHead<T>::Backward(const Blob<T>& x, const Blob<T>& dy, MlpHeadCache<T>* c, Blob<T>* dx) {
  const size_t n = layers_.size();
  CHECK(dy.shape == c->out.back().shape);
  c->d_out.resize(n);
  c->d_linear.resize(n);
  const Blob<T>* d_in = &dy;  // gradient w.r.t. layer i's output
  Blob<T>* d = nullptr;       // the same, once it lives in scratch (masked in place by ReLU)
  for (size_t i = n; i-- > 0;) {
    Layer& layer = layers_[i];
    LinearParams<T>& l = layer.linear;
    if (layer.relu) ReluBackwardInPlace(c->out[i], d);
    const Blob<T>* d_linear = d == nullptr ? d_in : d;
    if (layer.has_norm) {
      T* dgamma = layer.bn.weight.grad.data();
      T* dbeta = layer.bn.bias.grad.data();
      if (!layer.affine) {
        c->unused_grad.assign(2 * static_cast<size_t>(l.out), T(0));
        dgamma = c->unused_grad.data();
        dbeta = dgamma + l.out;
      }
      BatchNormBackward(c->linear_out[i], layer.bn.weight.value.data(), c->bn[i], *d_linear,
                        &c->d_linear[i], dgamma, dbeta);
      d_linear = &c->d_linear[i];
    }
    const Blob<T>& in = i == 0 ? x : c->out[i - 1];
    Blob<T>* d_x = i == 0 ? dx : &c->d_out[i];
    LinearBackward(in, l.weight.value.data(), *d_linear, d_x, l.weight.grad.data(),
                   spec_.has_bias() ? l.bias.grad.data() : nullptr);
    d = d_x;
  }
}

template <typename T>
void MlpHead<T>::AddParameters(std::vector<StateRef<T>>* out) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = layers_[i];
    const std::string name = spec_.LinearName(static_cast<int>(i));
    AddParam(name + ".weight", &layer.linear.weight, out);
    if (spec_.has_bias()) AddParam(name + ".bias", &layer.linear.bias, out);
    if (layer.has_norm && layer.affine) {
      const std::string bn = spec_.NormName(static_cast<int>(i));
      AddParam(bn + ".weight", &layer.bn.weight, out);
      AddParam(bn + ".bias", &layer.bn.bias, out);
    }
  }
}

template <typename T>
void MlpHead<T>::AddBuffers(std::vector<StateRef<T>>* out) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = layers_[i];
    if (!layer.has_norm) continue;
    const std::string bn = spec_.NormName(static_cast<int>(i));
    const int64_t c = layer.linear.out;
    AddBuffer(bn + ".running_mean", {c}, &layer.bn.running_mean, out);
    AddBuffer(bn + ".running_var", {c}, &layer.bn.running_var, out);
    AddBuffer(bn + ".num_batches_tracked", {}, &layer.bn.num_batches_tracked, out);
  }
}

template <typename T>
void MlpHead<T>::AddOutputs(const MlpHeadCache<T>& cache,
                            std::vector<std::pair<std::string, const Blob<T>*>>* out) const {
  for (size_t i = 0; i < layers_.size(); ++i) {
    out->emplace_back(spec_.OutputName(static_cast<int>(i)), &cache.out[i]);
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_MLP_HEAD_H_
