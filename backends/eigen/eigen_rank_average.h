// Data parallelism on the Eigen backend: an encoder's gradients or BN running statistics
// averaged over the ranks of a Communicator, in place (Backend::AverageAcrossRanks).
//
//   RETURN_IF_ERROR(AverageEigenEncoderAcrossRanks(encoder, RankAveraged::kGradients, comm));
//
// Gradients: every parameter gradient is packed into one flat float32 bucket (parameter
// order), all-reduced once and copied back (one collective per call, after the backward).
// BN statistics: the encoder exposes its buffers only as named arrays, so they go through
// ExportState / ImportState (a copy of the whole state each way; cheap next to a step).
#ifndef BACKENDS_EIGEN_EIGEN_RANK_AVERAGE_H_
#define BACKENDS_EIGEN_EIGEN_RANK_AVERAGE_H_

#include "absl/status/status.h"
#include "backends/eigen/eigen_encoder.h"
#include "moco/core/backend.h"
#include "moco/core/communicator.h"

namespace moco {
namespace eigen_backend {

absl::Status AverageEigenEncoderAcrossRanks(EigenEncoder& encoder, RankAveraged what,
                                            Communicator& communicator);

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_RANK_AVERAGE_H_
