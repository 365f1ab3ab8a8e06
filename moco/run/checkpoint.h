// Checkpoint files: a run's named arrays (both encoders, queue and pointer, optimizer state)
// plus the metadata needed to resume it, written atomically and read back with errors that
// say what is wrong with the file.
//
//   Checkpoint ckpt;
//   ckpt.epoch = 3; ckpt.global_step = 1407; ckpt.seed = config.run().seed();
//   ckpt.config_text = ToTextProto(config); ckpt.backend = "torch";
//   ckpt.arrays = backend_state;              // moco::NamedArrays
//   RETURN_IF_ERROR(SaveCheckpointToRunDir(config.run().run_dir(), ckpt));
//   ...
//   ASSIGN_OR_RETURN(Checkpoint resumed, ReadLatestCheckpoint(config.run().run_dir()));
//
// File format, version 1 (all integers little-endian):
//
//   offset 0   8 bytes   magic "MOCOCKPT"
//   offset 8   uint32    format version (1)
//   offset 12  uint64    payload length N
//   offset 20  N bytes   payload: a serialized moco.ckpt.Checkpoint (moco/run/checkpoint.proto)
//   offset 20+N uint32   CRC-32 (zlib's crc32) of the N payload bytes
//
// The file is exactly 24 + N bytes. The explicit length and checksum catch what protobuf alone
// cannot: a file cut at a field boundary parses as a valid, shorter message. The payload is
// limited to 2 GiB - 1 (protobuf's message limit).
#ifndef MOCO_RUN_CHECKPOINT_H_
#define MOCO_RUN_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/core/host_array.h"

namespace moco {

// Everything a run needs to resume: counters, seed, config, backend and its state.
struct Checkpoint {
  int64_t epoch = 0;        // completed epochs
  int64_t global_step = 0;  // completed optimizer steps
  uint64_t seed = 0;
  std::string config_text;  // the ExperimentConfig in text format
  std::string backend;      // backend registry name
  NamedArrays arrays;       // parameters, buffers, queue, optimizer state, ...
  std::map<std::string, std::string> metadata;  // free-form (RNG state, notes, ...)
};

// The current format version written by WriteCheckpoint.
inline constexpr uint32_t kCheckpointFormatVersion = 1;

// Writes `checkpoint` to `path` atomically:
//   1. create a temporary file `.<name>.tmp.XXXXXX` in the same folder (mkstemp);
//   2. write header, payload and checksum; fsync the file; close it;
//   3. rename it over `path` (atomic on POSIX file systems);
//   4. fsync the folder so the rename itself is durable.
// On a failure in steps 1-3 the temporary file is removed and a file already at `path` is
// untouched; the error names the path and the failing step (e.g. "No space left on device").
// If only step 4 fails, the new file is in place but the rename may not survive a power loss;
// the error says so.
absl::Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads a checkpoint written by WriteCheckpoint. Every error names `path`:
//   NotFound          the file does not exist;
//   InvalidArgument   not a moco checkpoint (bad magic), an unsupported format version, or
//                     not a regular file;
//   DataLoss          truncated (shorter than its header says), trailing bytes, checksum
//                     mismatch, or a payload that does not parse or holds inconsistent arrays;
//   Unknown           other I/O errors (permissions, ...), with the system's message.
absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path);

// `run_dir`/checkpoint.ckpt: the latest checkpoint of a run.
std::string CheckpointPath(const std::string& run_dir);

// `run_dir`/checkpoint.prev.ckpt: the checkpoint before the latest one.
std::string PreviousCheckpointPath(const std::string& run_dir);

// `run_dir`/checkpoint.corrupt.ckpt: where ReadLatestCheckpoint moves an unreadable latest.
std::string CorruptCheckpointPath(const std::string& run_dir);

// Saves `checkpoint` as the latest of the run in `run_dir` (which must exist), keeping the one
// it replaces as the previous checkpoint. The sequence, with C = checkpoint.ckpt and
// P = checkpoint.prev.ckpt:
//   0. remove `.checkpoint.ckpt.tmp.*` left in run_dir by killed writes;
//   1. write the new checkpoint to a temporary file in run_dir and fsync it;
//   2. if C exists: hard-link C as a temporary name and rename that over P (P now = old C;
//      C is still there and unchanged);
//   3. rename the temporary file over C;
//   4. fsync run_dir.
// A crash at any point leaves C complete (old or new) and P complete (older or old C). Only if
// the file system cannot hard-link is step 2 a rename of C to P, leaving a short window with
// no C; ReadLatestCheckpoint then falls back to P. If step 1 fails, C and P are untouched.
absl::Status SaveCheckpointToRunDir(const std::string& run_dir, const Checkpoint& checkpoint);

// Reads CheckpointPath(run_dir); if that file is missing or unreadable (any ReadCheckpoint
// error) but PreviousCheckpointPath(run_dir) reads, logs a warning naming the problem and
// returns the previous checkpoint; if the latest exists but is unreadable it is first renamed
// to CorruptCheckpointPath(run_dir), so the next save keeps the good previous one. NotFound only if neither file exists; otherwise the error
// of the latest file (the previous file's code if the latest is missing), with the previous
// file's error appended.
absl::StatusOr<Checkpoint> ReadLatestCheckpoint(const std::string& run_dir);

// Test hook: with MOCO_TEST_CRASH_AT set to after_write (data written, not synced),
// after_fsync (temporary file synced), after_prev (old latest kept as previous) or
// after_rename (new latest in place, folder not synced), a checkpoint write SIGKILLs its own
// process at that point. Unset in normal runs.

}  // namespace moco

#endif  // MOCO_RUN_CHECKPOINT_H_
