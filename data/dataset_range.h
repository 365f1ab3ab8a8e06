// A contiguous range [begin, end) of another dataset, seen as a dataset of its own: index i of
// the range is index begin + i of the base. Labels, classes, channels and file names are the
// base's. Used to give each rank of a data-parallel group its shard of an evaluation split.
//
//   auto shard = std::make_shared<DatasetRange>(test_set, 5000, 10000);  // shard->size() 5000
#ifndef DATA_DATASET_RANGE_H_
#define DATA_DATASET_RANGE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "data/dataset_interface.h"

namespace moco {
namespace data {

class DatasetRange final : public Dataset {
 public:
  // Requires 0 <= begin <= end <= base->size() (clamped into that range otherwise).
  DatasetRange(std::shared_ptr<const Dataset> base, int64_t begin, int64_t end);

  int64_t size() const override { return end_ - begin_; }
  int num_classes() const override { return base_->num_classes(); }
  int channels() const override { return base_->channels(); }
  int label(int64_t index) const override { return base_->label(begin_ + index); }
  absl::Status ReadImage(int64_t index, Image* out) const override {
    return base_->ReadImage(begin_ + index, out);
  }
  std::string Describe(int64_t index) const override { return base_->Describe(begin_ + index); }

 private:
  std::shared_ptr<const Dataset> base_;
  int64_t begin_;
  int64_t end_;
};

}  // namespace data
}  // namespace moco

#endif  // DATA_DATASET_RANGE_H_
