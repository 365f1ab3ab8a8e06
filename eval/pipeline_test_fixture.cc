#include "eval/pipeline_test_fixture.h"

#include <random>

#include "data/test_util.h"
#include "moco/config/config_io.h"
#include "moco/core/backend_registry.h"
#include "moco/core/status_macros.h"
#include "moco/run/checkpoint.h"

namespace moco {
namespace eval {

void WriteThreeClassIdxSplit(const std::string& dir, const std::string& prefix, int n,
                             uint32_t seed) {
  std::mt19937 gen(seed);
  std::string images = data::BigEndian32(0x803) + data::BigEndian32(n) + data::BigEndian32(8) +
                       data::BigEndian32(8);
  std::string labels = data::BigEndian32(0x801) + data::BigEndian32(n);
  for (int i = 0; i < n; ++i) {
    const int c = i % 3;
    labels.push_back(static_cast<char>(c));
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        const bool on = y >= 2 && y <= 4 && x >= 3 * c && x < 3 * c + 3;
        images.push_back(static_cast<char>((on ? 180 : 0) + gen() % 60));
      }
    }
  }
  data::WriteFileOrDie(dir + "/" + prefix + "-images-idx3-ubyte", images);
  data::WriteFileOrDie(dir + "/" + prefix + "-labels-idx1-ubyte", labels);
}

ExperimentConfig TinyPretrainConfig(float width) {
  ExperimentConfig c;
  c.mutable_data()->set_dataset(DataConfig::IDX);
  c.mutable_data()->set_image_size(8);
  c.mutable_model()->set_arch("resnet18");
  c.mutable_model()->set_cifar_stem(true);
  c.mutable_model()->set_width_multiplier(width);
  c.mutable_model()->set_in_channels(1);
  c.mutable_model()->set_feature_dim(8);
  return c;
}

absl::Status WriteTinyEvalCheckpoint(const std::string& path, float config_width) {
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                   CreateBackend("torch", BackendOptions{"cpu", 1}));
  ASSIGN_OR_RETURN(std::unique_ptr<Encoder> encoder,
                   backend->CreateEncoder(TinyPretrainConfig(0.0625f).model(), 5));
  Checkpoint ckpt;
  ckpt.epoch = 2;
  ckpt.global_step = 10;
  ckpt.config_text = ToTextProto(TinyPretrainConfig(config_width));
  ckpt.backend = "torch";
  ASSIGN_OR_RETURN(NamedArrays state, encoder->ExportState());
  for (const auto& [name, array] : state) {
    ckpt.arrays["query/" + name] = array;
    ckpt.arrays["key/" + name] = array;
  }
  ckpt.arrays["queue/queue"] = HostArray({16, 8});
  return WriteCheckpoint(path, ckpt);
}

EvalConfig TinyEvalConfig(const std::string& dir, const std::string& checkpoint) {
  EvalConfig c;
  c.set_checkpoint(checkpoint);
  c.mutable_data()->set_dataset(DataConfig::IDX);
  c.mutable_data()->set_train_path(dir);
  c.mutable_data()->set_image_size(8);
  c.mutable_data()->set_num_workers(1);
  c.mutable_data()->mutable_augmentation()->add_normalize_mean(0.5f);
  c.mutable_data()->mutable_augmentation()->add_normalize_std(0.25f);
  c.mutable_knn()->set_k(5);
  c.mutable_linear()->set_mode(LinearConfig::FEATURES);
  c.mutable_linear()->set_epochs(10);
  c.mutable_linear()->set_schedule(LinearConfig::COSINE);
  c.mutable_linear()->set_lr(0.5f);
  c.mutable_linear()->set_batch_size(32);
  c.mutable_linear()->set_standardize_features(true);
  c.set_threads(1);
  c.set_extract_batch_size(64);
  c.set_results_dir(dir + "/results");
  return c;
}

}  // namespace eval
}  // namespace moco
