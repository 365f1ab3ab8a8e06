// TensorBoard event files: `events.out.tfevents.<unix seconds>.<hostname>[.suffix]` in a run
// folder, TFRecord-framed Event protos, the first one carrying file_version "brain.Event:2",
// then scalar summaries.
//
//   ASSIGN_OR_RETURN(auto w, EventFileWriter::Create(run_dir));
//   RETURN_IF_ERROR(w->WriteScalars(step, {{"loss", 7.9f}, {"lr", 0.03f}}));
//   RETURN_IF_ERROR(w->Flush());
//   ASSIGN_OR_RETURN(std::vector<Event> events, ReadEventFile(w->path()));
//
// Resume (one file per process start, no step in two files): before a resumed process opens its
// file, TrimEventFilesAfterStep(run_dir, start_step) rewrites (atomically) every training event
// file holding steps > start_step, which an interrupted process wrote after its last checkpoint
// and the resumed one writes again; a record cut short by a crash is dropped too. Files whose
// name ends in ".eval" (AppendEvalScalars) are left alone.
#ifndef MOCO_OBSERVE_EVENTS_EVENT_FILE_H_
#define MOCO_OBSERVE_EVENTS_EVENT_FILE_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/observe/events/event.pb.h"
#include "moco/observe/events/tfrecord.h"

namespace moco {
namespace tfevents {

inline constexpr char kFileVersion[] = "brain.Event:2";
inline constexpr char kEventFilePrefix[] = "events.out.tfevents.";
inline constexpr char kEvalSuffix[] = ".eval";

using Scalars = std::vector<std::pair<std::string, float>>;

// Seconds since the Unix epoch, with sub-second precision.
double WallTimeNow();

class EventFileWriter {
 public:
  // Creates `dir`/events.out.tfevents.<now>.<hostname><suffix> (".1", ".2", ... appended
  // when that name exists) and writes the file_version record. `dir` must exist.
  static absl::StatusOr<std::unique_ptr<EventFileWriter>> Create(const std::string& dir,
                                                                 const std::string& suffix = "");
  ~EventFileWriter();

  // One Event at `step` with one summary value per scalar (wall_time: now, or `wall_time`).
  absl::Status WriteScalars(int64_t step, const Scalars& scalars, double wall_time = 0);
  absl::Status Flush();
  const std::string& path() const { return path_; }

 private:
  EventFileWriter(std::string path, FILE* file);
  std::string path_;
  FILE* file_;
  TfRecordWriter records_;
};

// Every Event of an event file, CRCs checked; a record cut short at the end is ignored.
// Errors name the file (DataLoss for a bad CRC or an undecodable payload).
absl::StatusOr<std::vector<Event>> ReadEventFile(const std::string& path);

// The event files in `dir` (full paths), sorted by name (= by creation time for one host).
// `include_eval`: also the ".eval" files.
std::vector<std::string> ListEventFiles(const std::string& dir, bool include_eval = true);

// See the header comment. Returns the number of events dropped.
absl::StatusOr<int64_t> TrimEventFilesAfterStep(const std::string& dir, int64_t step);

// Writes `scalars` at `step` to a new "<dir>/events.out.tfevents.<now>.<host>.eval" file and
// closes it: for evaluation tools, whose results then show in TensorBoard next to the run's
// curves. Creates `dir` if needed. Tags are used as given (e.g. "eval/knn_top1/LEARNED").
absl::Status AppendEvalScalars(const std::string& dir, int64_t step, const Scalars& scalars);

}  // namespace tfevents
}  // namespace moco

#endif  // MOCO_OBSERVE_EVENTS_EVENT_FILE_H_
