#include "moco/observe/events/event_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace moco {
namespace tfevents {
namespace {

namespace fs = std::filesystem;

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

absl::Status ErrnoError(const std::string& what) {
  return absl::UnknownError(absl::StrCat(what, ": ", std::strerror(errno)));
}

bool IsEventFileName(const std::string& name) { return absl::StartsWith(name, kEventFilePrefix); }

}  // namespace

double WallTimeNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

EventFileWriter::EventFileWriter(std::string path, FILE* file)
    : path_(std::move(path)), file_(file), records_(file, path_) {}

EventFileWriter::~EventFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::StatusOr<std::unique_ptr<EventFileWriter>> EventFileWriter::Create(
    const std::string& dir, const std::string& suffix) {
  const double now = WallTimeNow();
  const std::string base = absl::StrCat(dir, "/", kEventFilePrefix, static_cast<int64_t>(now), ".",
                                        HostName());
  std::string path = absl::StrCat(base, suffix);
  for (int i = 1; fs::exists(path); ++i) path = absl::StrCat(base, ".", i, suffix);
  // "x": never reuse a file another process created in the meantime.
  FILE* f = std::fopen(path.c_str(), "wbx");
  if (f == nullptr) return ErrnoError(absl::StrCat("cannot create event file ", path));
  std::unique_ptr<EventFileWriter> writer(new EventFileWriter(path, f));
  Event version;
  version.set_wall_time(now);
  version.set_file_version(kFileVersion);
  absl::Status s = writer->records_.Write(version.SerializeAsString());
  if (s.ok()) s = writer->Flush();
  if (!s.ok()) return s;
  return writer;
}

absl::Status EventFileWriter::WriteScalars(int64_t step, const Scalars& scalars,
                                           double wall_time) {
  Event event;
  event.set_wall_time(wall_time > 0 ? wall_time : WallTimeNow());
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    SummaryValue* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(value);
  }
  return records_.Write(event.SerializeAsString());
}

absl::Status EventFileWriter::Flush() { return records_.Flush(); }

absl::StatusOr<std::vector<Event>> ReadEventFile(const std::string& path) {
  absl::StatusOr<TfRecords> records = ReadTfRecordFile(path);
  if (!records.ok()) return records.status();
  std::vector<Event> events;
  events.reserve(records->payloads.size());
  for (size_t i = 0; i < records->payloads.size(); ++i) {
    Event e;
    if (!e.ParseFromString(records->payloads[i])) {
      return absl::DataLossError(
          absl::StrCat(path, ": record ", i, " is not an Event (undecodable protobuf)"));
    }
    events.push_back(std::move(e));
  }
  return events;
}

std::vector<std::string> ListEventFiles(const std::string& dir, bool include_eval) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file() || !IsEventFileName(name)) continue;
    if (absl::EndsWith(name, ".tmp")) continue;
    if (!include_eval && absl::EndsWith(name, kEvalSuffix)) continue;
    files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::StatusOr<int64_t> TrimEventFilesAfterStep(const std::string& dir, int64_t step) {
  int64_t dropped_total = 0;
  for (const std::string& path : ListEventFiles(dir, /*include_eval=*/false)) {
    absl::StatusOr<TfRecords> records = ReadTfRecordFile(path);
    if (!records.ok()) return records.status();
    std::string kept;
    int64_t dropped = 0;
    for (size_t i = 0; i < records->payloads.size(); ++i) {
      Event e;
      if (!e.ParseFromString(records->payloads[i])) {
        return absl::DataLossError(absl::StrCat(path, ": record ", i, " is not an Event"));
      }
      if (e.step() > step) {
        ++dropped;
      } else {
        kept += FrameTfRecord(records->payloads[i]);
      }
    }
    if (dropped == 0 && records->incomplete_tail_bytes == 0) continue;
    const std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) return ErrnoError(absl::StrCat("cannot rewrite event file ", path));
    bool ok = std::fwrite(kept.data(), 1, kept.size(), f) == kept.size();
    ok = std::fflush(f) == 0 && ok;
    ok = ::fsync(fileno(f)) == 0 && ok;
    ok = std::fclose(f) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::remove(tmp.c_str());
      return ErrnoError(absl::StrCat("cannot rewrite event file ", path));
    }
    dropped_total += dropped;
  }
  return dropped_total;
}

absl::Status AppendEvalScalars(const std::string& dir, int64_t step, const Scalars& scalars) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::UnknownError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  absl::StatusOr<std::unique_ptr<EventFileWriter>> w = EventFileWriter::Create(dir, kEvalSuffix);
  if (!w.ok()) return w.status();
  absl::Status s = (*w)->WriteScalars(step, scalars);
  if (s.ok()) s = (*w)->Flush();
  return s;
}

}  // namespace tfevents
}  // namespace moco
