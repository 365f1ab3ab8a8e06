#include "backends/distributed/gloo_communicator.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/eigen/eigen_tensor.h"
#include "backends/torch/torch_tensor.h"
#include "moco/core/status_macros.h"

namespace moco::distributed {
namespace {

using c10d::ProcessGroupGloo;

std::string ErrorText(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

double Seconds(std::chrono::milliseconds ms) { return ms.count() / 1000.0; }

// A float32 torch view of `t`'s memory: the torch tensor itself, or an Eigen tensor's host
// array through from_blob (no copy).
absl::StatusOr<at::Tensor> View(const Tensor& t, const char* what) {
  if (t.backend_name() == torch_backend::BackendName()) {
    ASSIGN_OR_RETURN(torch::Tensor x, torch_backend::Unwrap(t));
    if (x.scalar_type() != torch::kFloat32 || !x.is_contiguous()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the tensor must be contiguous float32"));
    }
    return x;
  }
  if (t.backend_name() == eigen_backend::EigenBackendName()) {
    auto* e = const_cast<eigen_backend::EigenTensor*>(
        dynamic_cast<const eigen_backend::EigenTensor*>(&t));
    if (e == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": not an EigenTensor"));
    return torch::from_blob(e->mutable_array().mutable_data().data(), e->shape(),
                            torch::kFloat32);
  }
  return absl::UnimplementedError(
      absl::StrCat(what, ": no communicator support for backend '", t.backend_name(), "'"));
}

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(int rank, int world, c10::intrusive_ptr<ProcessGroupGloo> group)
      : rank_(rank), world_(world), group_(std::move(group)) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  absl::Status AllReduceSum(Tensor& tensor) override {
    ASSIGN_OR_RETURN(at::Tensor x, View(tensor, "AllReduceSum"));
    return Run("AllReduceSum", [&] { return AllReduce(x); });
  }

  absl::StatusOr<std::unique_ptr<PendingCollective>> StartAllReduceSum(Tensor& tensor) override {
    ASSIGN_OR_RETURN(at::Tensor x, View(tensor, "StartAllReduceSum"));
    c10::intrusive_ptr<c10d::Work> work;
    RETURN_IF_ERROR(Run("StartAllReduceSum", [&] {
      std::vector<at::Tensor> tensors = {x};
      work = group_->allreduce(tensors);
    }));
    return std::unique_ptr<PendingCollective>(new PendingGlooWork(this, std::move(work)));
  }

  absl::Status AllReduceAverage(Tensor& tensor) override {
    ASSIGN_OR_RETURN(at::Tensor x, View(tensor, "AllReduceAverage"));
    return Run("AllReduceAverage", [&] {
      AllReduce(x);
      torch::NoGradGuard no_grad;
      x.div_(static_cast<double>(world_));
    });
  }

  absl::StatusOr<TensorPtr> AllGather(const TensorPtr& tensor) override {
    if (tensor == nullptr) return absl::InvalidArgumentError("AllGather: null tensor");
    ASSIGN_OR_RETURN(at::Tensor x, View(*tensor, "AllGather"));
    if (x.dim() < 1) return absl::InvalidArgumentError("AllGather: a 0-d tensor");
    std::vector<int64_t> shape = x.sizes().vec();
    const int64_t rows = shape[0];
    shape[0] *= world_;
    TensorPtr out;
    at::Tensor gathered;
    if (tensor->backend_name() == torch_backend::BackendName()) {
      gathered = torch::empty(shape, x.options());
      out = torch_backend::Wrap(gathered);
    } else {
      std::shared_ptr<eigen_backend::EigenTensor> e = eigen_backend::MakeEigenTensor(HostArray(shape));
      ASSIGN_OR_RETURN(gathered, View(*e, "AllGather"));
      out = std::move(e);
    }
    RETURN_IF_ERROR(Run("AllGather", [&] {
      std::vector<at::Tensor> inputs = {x};
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (int r = 0; r < world_; ++r) outputs[0].push_back(gathered.narrow(0, r * rows, rows));
      group_->allgather(outputs, inputs)->wait();
    }));
    return out;
  }

  absl::Status Broadcast(Tensor& tensor, int root) override {
    if (root < 0 || root >= world_) {
      return absl::InvalidArgumentError(
          absl::StrCat("Broadcast root (", root, ") must be in [0, ", world_, ")"));
    }
    ASSIGN_OR_RETURN(at::Tensor x, View(tensor, "Broadcast"));
    return Run("Broadcast", [&] {
      std::vector<at::Tensor> tensors = {x};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      group_->broadcast(tensors, opts)->wait();
    });
  }

  absl::Status Barrier() override {
    return Run("Barrier", [&] { group_->barrier()->wait(); });
  }

  absl::Status AllReduceSumHost(absl::Span<float> values) override {
    if (values.empty()) return absl::OkStatus();
    at::Tensor x = torch::from_blob(values.data(), {static_cast<int64_t>(values.size())},
                                    torch::kFloat32);
    return Run("AllReduceSumHost", [&] { AllReduce(x); });
  }

  absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t value) override {
    at::Tensor x = torch::full({1}, value, torch::kInt64);
    at::Tensor gathered = torch::empty({world_}, torch::kInt64);
    RETURN_IF_ERROR(Run("AllGatherHost", [&] {
      std::vector<at::Tensor> inputs = {x};
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (int r = 0; r < world_; ++r) outputs[0].push_back(gathered.narrow(0, r, 1));
      group_->allgather(outputs, inputs)->wait();
    }));
    const int64_t* p = gathered.data_ptr<int64_t>();
    return std::vector<int64_t>(p, p + world_);
  }

  absl::StatusOr<std::vector<float>> AllGatherHostFloats(absl::Span<const float> values) override {
    const int64_t n = static_cast<int64_t>(values.size());
    std::vector<float> all(static_cast<size_t>(n * world_));
    if (n == 0) return all;
    at::Tensor x = torch::from_blob(const_cast<float*>(values.data()), {n}, torch::kFloat32);
    at::Tensor gathered = torch::from_blob(all.data(), {n * world_}, torch::kFloat32);
    RETURN_IF_ERROR(Run("AllGatherHostFloats", [&] {
      std::vector<at::Tensor> inputs = {x};
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (int r = 0; r < world_; ++r) outputs[0].push_back(gathered.narrow(0, r * n, n));
      group_->allgather(outputs, inputs)->wait();
    }));
    return all;
  }

  double blocked_seconds() const override { return blocked_seconds_; }

 private:
  // A started all-reduce; Wait() blocks on it and reports errors as Run does.
  class PendingGlooWork final : public PendingCollective {
   public:
    PendingGlooWork(GlooCommunicator* owner, c10::intrusive_ptr<c10d::Work> work)
        : owner_(owner), work_(std::move(work)) {}
    absl::Status Wait() override {
      return owner_->Run("StartAllReduceSum (wait)", [&] { work_->wait(); });
    }

   private:
    GlooCommunicator* owner_;
    c10::intrusive_ptr<c10d::Work> work_;
  };

  void AllReduce(at::Tensor& x) {
    std::vector<at::Tensor> tensors = {x};
    group_->allreduce(tensors)->wait();
  }

  template <typename Fn>
  absl::Status Run(const char* op, Fn&& fn) {
    const auto start = std::chrono::steady_clock::now();
    struct AddBlocked {  // on every exit, error or not
      std::chrono::steady_clock::time_point start;
      double& total;
      ~AddBlocked() {
        total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    } add_blocked{start, blocked_seconds_};
    try {
      fn();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      const std::string text = ErrorText(e);
      const bool timed_out = absl::StrContains(text, "imed out") || absl::StrContains(text, "imeout");
      // In a world of two the peer is known; beyond, the launcher (or the scheduler) names the
      // rank that died.
      const std::string peer =
          world_ == 2 ? absl::StrCat("rank ", 1 - rank_) : std::string("a peer rank");
      const std::string message =
          absl::StrCat(op, " failed on rank ", rank_, " of ", world_, " (", peer,
                       timed_out ? " stopped responding): " : " exited or lost its connection): ",
                       text);
      return timed_out ? absl::DeadlineExceededError(message) : absl::UnavailableError(message);
    }
  }

  const int rank_;
  const int world_;
  c10::intrusive_ptr<ProcessGroupGloo> group_;
  double blocked_seconds_ = 0;  // only the thread that runs the step calls collectives
};

bool IsLoopback(const std::string& addr) {
  return addr == "localhost" || absl::StartsWith(addr, "127.") || addr == "::1";
}

absl::StatusOr<c10::intrusive_ptr<c10d::Store>> ConnectStore(const DistributedEnv& env,
                                                             const GlooOptions& options) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(env.master_port);
  store_options.isServer = env.rank == 0;
  store_options.numWorkers = env.world_size;
  store_options.waitWorkers = false;  // we wait ourselves, to name the missing ranks
  store_options.timeout = options.timeout;
  try {
    return c10::intrusive_ptr<c10d::Store>(
        c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options));
  } catch (const std::exception& e) {
    const std::string text = ErrorText(e);
    if (env.rank == 0) {
      return absl::UnavailableError(absl::StrCat(
          "rank 0 cannot host the rendezvous on MASTER_PORT (", env.master_port,
          "): the port is already in use or cannot be bound (set another MASTER_PORT): ", text));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "rank ", env.rank, " cannot reach the rendezvous at MASTER_ADDR:MASTER_PORT (",
        env.master_addr, ":", env.master_port, ") within ", Seconds(options.timeout),
        " s; is rank 0 running?: ", text));
  }
}

std::string Key(int rank) { return absl::StrCat("moco/join/", rank); }

// Every rank's published "<WORLD_SIZE> <tag>" against this rank's.
absl::Status CompareJoined(c10d::Store& store, const DistributedEnv& env, const std::string& mine,
                           const std::string& tag) {
  try {
    for (int r = 0; r < env.world_size; ++r) {
      const std::vector<uint8_t> value = store.get(Key(r));
      const std::string theirs(value.begin(), value.end());
      if (theirs == mine) continue;
      const std::string their_world = theirs.substr(0, theirs.find(' '));
      if (their_world != std::to_string(env.world_size)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "rank ", r, " was started with WORLD_SIZE ", their_world, ", rank ", env.rank,
            " with ", env.world_size, ": every rank must be started with the same WORLD_SIZE"));
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "rank ", r, " was started with another configuration than rank ", env.rank,
          " (config hash ", theirs.substr(their_world.size() + 1), " vs ", tag,
          "): every rank must run the same config"));
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", env.rank, ": rendezvous failed: ",
                                               ErrorText(e)));
  }
  return absl::OkStatus();
}

// Every rank publishes "<WORLD_SIZE> <tag>" and waits for all the others; a rank missing after
// the timeout, or one with another WORLD_SIZE or tag, is named.
absl::Status Join(c10d::Store& store, const DistributedEnv& env, const GlooOptions& options) {
  const std::string mine = absl::StrCat(env.world_size, " ", options.rendezvous_tag);
  std::vector<std::string> keys;
  try {
    store.set(Key(env.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
    for (int r = 0; r < env.world_size; ++r) keys.push_back(Key(r));
    store.wait(keys, options.timeout);
  } catch (const std::exception& e) {
    std::vector<int> missing;
    try {
      for (int r = 0; r < env.world_size; ++r) {
        if (!store.check({Key(r)})) missing.push_back(r);
      }
    } catch (const std::exception&) {
    }
    if (missing.empty()) {
      return absl::UnavailableError(absl::StrCat("rank ", env.rank, ": rendezvous failed: ",
                                                 ErrorText(e)));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "rank ", env.rank, ": rank(s) ", absl::StrJoin(missing, ", "), " of WORLD_SIZE ",
        env.world_size, " did not join the rendezvous at ", env.master_addr, ":",
        env.master_port, " within ", Seconds(options.timeout), " s"));
  }
  absl::Status verdict = CompareJoined(store, env, mine, options.rendezvous_tag);
  // Rank 0 hosts the store: it stays until every rank has read (or the timeout), so a refused
  // rank reads the reason instead of a broken pipe.
  try {
    store.add("moco/checked", 1);
    if (env.rank == 0) {
      const auto deadline = std::chrono::steady_clock::now() + options.timeout;
      while (store.add("moco/checked", 0) < env.world_size &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  } catch (const std::exception& e) {
    if (verdict.ok()) {
      return absl::UnavailableError(absl::StrCat("rank ", env.rank, ": rendezvous failed: ",
                                                 ErrorText(e)));
    }
  }
  return verdict;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(const DistributedEnv& env,
                                                                     const GlooOptions& options) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("RANK (", env.rank, ") must be in [0, WORLD_SIZE (",
                                                   env.world_size, "))"));
  }
  ASSIGN_OR_RETURN(c10::intrusive_ptr<c10d::Store> store, ConnectStore(env, options));
  RETURN_IF_ERROR(Join(*store, env, options));
  try {
    auto gloo_options = ProcessGroupGloo::Options::create(options.timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && *ifname != '\0') {
      gloo_options->devices.push_back(ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (IsLoopback(env.master_addr)) {
      gloo_options->devices.push_back(ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo_options->devices.push_back(ProcessGroupGloo::createDefaultDevice());
    }
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("moco/gloo", store);
    auto group = c10::make_intrusive<ProcessGroupGloo>(prefixed, env.rank, env.world_size,
                                                       gloo_options);
    return std::unique_ptr<Communicator>(
        new GlooCommunicator(env.rank, env.world_size, std::move(group)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", env.rank, " of ", env.world_size,
                                               ": creating the Gloo process group failed: ",
                                               ErrorText(e)));
  }
}

std::string RendezvousTagOf(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a, 64 bit
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace moco::distributed
