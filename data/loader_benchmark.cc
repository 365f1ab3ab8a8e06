// Loader throughput: images/s of the full two-view pipeline (read/decode, augment both views,
// assemble float32 NCHW batches) as the training loop sees it (time between Next() calls
// with a consumer that does nothing).
//
//   bazel run -c opt //data:loader_benchmark -- --workers=1,2
//
// Cases: (a) CIFAR-format binary data generated into a temp dir, MoCo v2 recipe at 32x32;
// (b) a JPEG image folder generated into a temp dir (500x375 images, ImageNet-like), MoCo v2
// recipe at 224x224; (c) when installed, Debian's Fashion-MNIST with the quickstart recipe
// (configs/quickstart.pbtxt: CIFAR preset, crop 0.2-1, 1 channel, 28x28, batch 256).
#include <unistd.h>

#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/batch_loader.h"
#include "data/cifar_dataset.h"
#include "data/dataset.h"
#include "data/image_codec.h"
#include "data/image_folder_dataset.h"
#include "data/transform.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "moco/core/status_macros.h"

DEFINE_string(workers, "1,2", "comma-separated worker counts to measure");
DEFINE_int32(cifar_images, 20480, "synthetic CIFAR-format images (32x32 case)");
DEFINE_int32(cifar_batches, 40, "batches of 256 timed in the 32x32 case");
DEFINE_int32(jpeg_images, 512, "generated JPEG files (224x224 case)");
DEFINE_int32(jpeg_batch, 64, "batch size of the 224x224 case");
DEFINE_int32(jpeg_batches, 6, "batches timed in the 224x224 case");
DEFINE_int32(mnist_batches, 60, "batches of 256 timed in the Fashion-MNIST case (0 = skip)");
DEFINE_string(fashion_mnist, "/usr/share/datasets/fashion-mnist", "IDX folder");
DEFINE_string(tmp_dir, "", "where to generate data (default: a fresh folder under /tmp)");

namespace moco {
namespace data {
namespace {

using Clock = std::chrono::steady_clock;

// A smooth random "photo": low-frequency color waves plus mild noise, so JPEG sizes and
// decode costs resemble natural images rather than white noise or flat color.
Image SyntheticPhoto(int h, int w, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(0.f, 1.f);
  float fx[3], fy[3], ph[3];
  for (int c = 0; c < 3; ++c) {
    fx[c] = 2 + 10 * u(rng);
    fy[c] = 2 + 10 * u(rng);
    ph[c] = 6.28f * u(rng);
  }
  Image img;
  img.Reshape(h, w, 3);
  std::normal_distribution<float> noise(0.f, 6.f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const float v = 128 + 90 * std::sin(fx[c] * x / w * 6.28f + ph[c]) *
                                  std::cos(fy[c] * y / h * 6.28f) +
                        noise(rng);
        img.pixels[(y * w + x) * 3 + c] = static_cast<uint8_t>(std::min(255.f, std::max(0.f, v)));
      }
  return img;
}

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot write ", path));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) return absl::InternalError(absl::StrCat("write failed: ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> MakeCifarFile(const std::string& dir, int n) {
  std::mt19937_64 rng(1);
  std::string bytes;
  bytes.reserve(static_cast<size_t>(n) * 3073);
  for (int i = 0; i < n; ++i) {
    const Image img = SyntheticPhoto(32, 32, rng);
    bytes.push_back(static_cast<char>(i % 10));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) bytes.push_back(static_cast<char>(img.pixels[p * 3 + c]));
  }
  const std::string path = dir + "/bench_cifar.bin";
  RETURN_IF_ERROR(WriteFile(path, bytes));
  return path;
}

absl::StatusOr<std::string> MakeJpegFolder(const std::string& dir, int n) {
  const std::string root = dir + "/jpeg_folder";
  std::mt19937_64 rng(2);
  size_t total = 0;
  for (int i = 0; i < n; ++i) {
    const std::string cls = absl::StrCat(root, "/class", i % 10);
    std::filesystem::create_directories(cls);
    const Image img = SyntheticPhoto(375, 500, rng);
    ASSIGN_OR_RETURN(std::string jpg, EncodeJpeg(img, 90));
    total += jpg.size();
    RETURN_IF_ERROR(WriteFile(absl::StrCat(cls, "/img", i, ".jpg"), jpg));
  }
  LOG(INFO) << "wrote " << n << " JPEGs (500x375, mean " << total / n / 1024 << " KiB) to " << root;
  return root;
}

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

std::string LoadAverage() {
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  char buf[64] = {0};
  const bool ok = std::fgets(buf, sizeof(buf), f) != nullptr;
  std::fclose(f);
  std::string s = ok ? buf : "?";
  return s.substr(0, s.find(' '));
}

struct Throughput {
  double wall = 0;  // images per wall-clock second
  double cpu = 0;   // images per CPU-second of the whole process
};

// Times `batches` batches after one warm-up batch.
absl::StatusOr<Throughput> Measure(std::shared_ptr<const Dataset> ds,
                               std::shared_ptr<const Transform> transform, int workers,
                               int batch_size, int batches) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.num_workers = workers;
  o.prefetch_batches = 4;
  o.seed = 7;
  o.max_batches_per_epoch = batches + 1;
  ASSIGN_OR_RETURN(auto loader, BatchLoader::Create(ds, transform, o));
  RETURN_IF_ERROR(loader->StartEpoch(0));
  ASSIGN_OR_RETURN(auto warm, loader->Next());
  if (!warm) return absl::InternalError("no warm-up batch");
  loader->Recycle(std::move(*warm));
  const auto start = Clock::now();
  const double cpu_start = CpuSeconds();
  int64_t images = 0;
  while (true) {
    ASSIGN_OR_RETURN(auto batch, loader->Next());
    if (!batch) break;
    images += static_cast<int64_t>(batch->indices.size());
    loader->Recycle(std::move(*batch));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  if (images == 0) return absl::InvalidArgumentError("no batches timed: the dataset is too small");
  return Throughput{images / seconds, images / cpu};
}

absl::Status Run() {
  std::vector<int> workers;
  for (absl::string_view w : absl::StrSplit(FLAGS_workers, ',')) {
    int v;
    if (!absl::SimpleAtoi(w, &v) || v < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--workers: bad value '", w, "'"));
    }
    workers.push_back(v);
  }
  std::string dir = FLAGS_tmp_dir;
  if (dir.empty()) dir = absl::StrCat("/tmp/loader_benchmark_", getpid());
  std::filesystem::create_directories(dir);
  std::printf("hardware threads: %u\n", std::thread::hardware_concurrency());
  std::printf("load average at start: %s\n", LoadAverage().c_str());
  std::printf("%-44s %8s %6s %12s %14s\n", "case", "workers", "batch", "images/s", "images/CPU-s");
  auto report = [](const char* name, int w, int batch, const Throughput& t) {
    std::printf("%-44s %8d %6d %12.0f %14.0f\n", name, w, batch, t.wall, t.cpu);
    std::fflush(stdout);
  };

  DataConfig v2;
  v2.mutable_augmentation()->set_preset(AugmentationConfig::MOCO_V2);

  {  // (a) 32x32 CIFAR-format, v2 recipe.
    ASSIGN_OR_RETURN(std::string path, MakeCifarFile(dir, FLAGS_cifar_images));
    ASSIGN_OR_RETURN(auto ds, OpenCifarFiles({path}, 10));
    DataConfig c = v2;
    c.set_image_size(32);
    ASSIGN_OR_RETURN(auto t, MakeTrainTransform(c, 3));
    for (int w : workers) {
      ASSIGN_OR_RETURN(Throughput tp, Measure(ds, t, w, 256, FLAGS_cifar_batches));
      report("v2 two views 32x32 (CIFAR binary)", w, 256, tp);
    }
  }
  {  // (b) 224x224 from a JPEG folder, v2 recipe.
    ASSIGN_OR_RETURN(std::string root, MakeJpegFolder(dir, FLAGS_jpeg_images));
    ASSIGN_OR_RETURN(auto ds, OpenImageFolder(root));
    DataConfig c = v2;
    c.set_image_size(224);
    ASSIGN_OR_RETURN(auto t, MakeTrainTransform(c, 3));
    for (int w : workers) {
      ASSIGN_OR_RETURN(Throughput tp, Measure(ds, t, w, FLAGS_jpeg_batch, FLAGS_jpeg_batches));
      report("v2 two views 224x224 (JPEG 500x375 folder)", w, FLAGS_jpeg_batch, tp);
    }
  }
  if (FLAGS_mnist_batches > 0 &&
      std::filesystem::exists(FLAGS_fashion_mnist + "/train-images-idx3-ubyte.gz")) {
    // (c) The quickstart: configs/quickstart.pbtxt's data section.
    DataConfig c;
    c.set_dataset(DataConfig::IDX);
    c.set_train_path(FLAGS_fashion_mnist);
    c.set_image_size(28);
    AugmentationConfig* a = c.mutable_augmentation();
    a->set_preset(AugmentationConfig::CIFAR);
    a->set_crop_scale_min(0.2f);
    a->add_normalize_mean(0.2860f);
    a->add_normalize_std(0.3530f);
    ASSIGN_OR_RETURN(auto ds, OpenDataset(c, Split::kTrain));
    ASSIGN_OR_RETURN(auto t, MakeTrainTransform(c, 1));
    for (int w : workers) {
      ASSIGN_OR_RETURN(Throughput tp, Measure(ds, t, w, 256, FLAGS_mnist_batches));
      report("quickstart two views 28x28 (Fashion-MNIST)", w, 256, tp);
    }
  }
  std::printf("load average at end: %s\n", LoadAverage().c_str());
  if (FLAGS_tmp_dir.empty()) std::filesystem::remove_all(dir);
  return absl::OkStatus();
}

}  // namespace
}  // namespace data
}  // namespace moco

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const absl::Status status = moco::data::Run();
  if (!status.ok()) {
    LOG(ERROR) << status;
    return 1;
  }
  return 0;
}
