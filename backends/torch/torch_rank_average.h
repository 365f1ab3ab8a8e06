// Data parallelism on the torch backend: an encoder's gradients or BN running statistics
// averaged over the ranks of a Communicator, in place (Backend::AverageAcrossRanks).
//
//   RETURN_IF_ERROR(AverageTorchEncoderAcrossRanks(encoder, RankAveraged::kGradients, comm));
//
// The tensors are packed into one flat contiguous float32 bucket (parameter order), all-reduced
// once, and copied back: one collective per call, not overlapped with the backward. Parameters
// whose gradient is undefined (never reached by the backward) are left out, identically on
// every rank since every rank runs the same graph.
#ifndef BACKENDS_TORCH_TORCH_RANK_AVERAGE_H_
#define BACKENDS_TORCH_TORCH_RANK_AVERAGE_H_

#include "absl/status/status.h"
#include "backends/torch/torch_encoder.h"
#include "moco/core/backend.h"
#include "moco/core/communicator.h"

namespace moco::torch_backend {

absl::Status AverageTorchEncoderAcrossRanks(TorchEncoder& encoder, RankAveraged what,
                                            Communicator& communicator);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_RANK_AVERAGE_H_
