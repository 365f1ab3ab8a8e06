// What every fuzz target checks about a dataset a reader accepted: its images read, with the
// shape and label range it promises. A violation aborts (a crash for libFuzzer).
#ifndef FUZZ_DATASET_CHECK_H_
#define FUZZ_DATASET_CHECK_H_

#include "data/dataset_interface.h"

namespace moco {
namespace fuzz {

// Reads up to `max_images` images of `dataset` (the first and the last ones) and checks each.
void CheckDataset(const data::Dataset& dataset, int max_images = 8);

}  // namespace fuzz
}  // namespace moco

#endif  // FUZZ_DATASET_CHECK_H_
