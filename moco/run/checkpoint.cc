#include "moco/run/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "moco/core/status_macros.h"
#include "moco/run/checkpoint.pb.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoint arrays are stored as little-endian float32 bytes");
static_assert(sizeof(float) == 4, "float must be IEEE-754 binary32");

namespace moco {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'C', 'O', 'C', 'K', 'P', 'T'};
constexpr size_t kHeaderBytes = 8 + 4 + 8;  // magic, version, payload length
constexpr size_t kTrailerBytes = 4;         // CRC-32

std::string ErrnoText(int err) { return std::strerror(err); }

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}
uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

uint32_t Crc32(const char* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (size > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk;
    size -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

// Builds the whole file image: header, payload, checksum.
absl::StatusOr<std::string> EncodeCheckpoint(const std::string& path, const Checkpoint& c) {
  ckpt::Checkpoint proto;
  proto.set_epoch(c.epoch);
  proto.set_global_step(c.global_step);
  proto.set_seed(c.seed);
  proto.set_config_text(c.config_text);
  proto.set_backend(c.backend);
  for (const auto& [name, array] : c.arrays) {
    ckpt::Array* a = proto.add_arrays();
    a->set_name(name);
    for (int64_t d : array.shape()) a->add_shape(d);
    std::string* bytes = a->mutable_data();
    bytes->resize(array.data().size() * sizeof(float));
    if (!array.data().empty()) std::memcpy(bytes->data(), array.data().data(), bytes->size());
  }
  for (const auto& [key, value] : c.metadata) {
    ckpt::MetadataEntry* e = proto.add_metadata();
    e->set_key(key);
    e->set_value(value);
  }
  const size_t payload_bytes = proto.ByteSizeLong();
  if (payload_bytes > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write checkpoint ", path, ": payload of ", payload_bytes,
                     " bytes exceeds the format's 2 GiB limit"));
  }
  std::string file(kHeaderBytes + payload_bytes + kTrailerBytes, '\0');
  std::memcpy(file.data(), kMagic, sizeof(kMagic));
  PutU32(kCheckpointFormatVersion, file.data() + 8);
  PutU64(payload_bytes, file.data() + 12);
  char* payload = file.data() + kHeaderBytes;
  proto.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(payload));
  PutU32(Crc32(payload, payload_bytes), payload + payload_bytes);
  return file;
}

absl::Status WriteAll(int fd, const std::string& bytes, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnknownError(absl::StrCat("cannot write ", what, ": ", ErrnoText(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Fsyncs a folder so that renames and links in it are durable. File systems that cannot sync
// folders (EINVAL) are accepted.
absl::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnknownError(absl::StrCat("cannot open folder ", dir, " to sync it: ",
                                           ErrnoText(errno)));
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) {
    return absl::UnknownError(absl::StrCat("cannot sync folder ", dir, ": ", ErrnoText(err),
                                           " (the new checkpoint is in place but may not "
                                           "survive a power loss)"));
  }
  return absl::OkStatus();
}

// Test hook: MOCO_TEST_CRASH_AT=<point> kills the process with SIGKILL at that point of a
// checkpoint write (after_write, after_fsync, after_prev, after_rename), as kill -9 would.
void MaybeCrashAt(const char* point) {
  const char* want = std::getenv("MOCO_TEST_CRASH_AT");
  if (want != nullptr && std::strcmp(want, point) == 0) ::kill(::getpid(), SIGKILL);
}

// Removes what killed writes leave in `dir`: `.<base>.tmp.*` temporaries and the
// `.checkpoint.prev.ckpt.link` of an interrupted save. Best effort (errors are ignored).
void RemoveStaleTemporaries(const std::string& dir, const std::string& base) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  const std::string prefix = absl::StrCat(".", base, ".tmp.");
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) == 0) stale.push_back(name);
  }
  ::closedir(d);
  for (const std::string& name : stale) {
    LOG(WARNING) << "removing " << dir << "/" << name << ", left by an interrupted checkpoint write";
    ::unlink(absl::StrCat(dir, "/", name).c_str());
  }
}

// Writes `bytes` to a new temporary file beside `path`, fsynced and closed. On failure nothing
// is left behind.
absl::StatusOr<std::string> WriteTempFile(const std::string& path, const std::string& bytes) {
  std::string temp = absl::StrCat(DirName(path), "/.", BaseName(path), ".tmp.XXXXXX");
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) {
    return absl::UnknownError(absl::StrCat("cannot write checkpoint ", path,
                                           ": cannot create a temporary file in ",
                                           DirName(path), ": ", ErrnoText(errno)));
  }
  temp.assign(name.data());
  absl::Status status = WriteAll(fd, bytes, absl::StrCat("checkpoint ", path, " (temporary file ",
                                                         temp, ")"));
  if (status.ok()) MaybeCrashAt("after_write");
  if (status.ok() && ::fchmod(fd, 0644) != 0) {
    status = absl::UnknownError(
        absl::StrCat("cannot set permissions of temporary file ", temp, ": ", ErrnoText(errno)));
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = absl::UnknownError(absl::StrCat("cannot write checkpoint ", path,
                                             ": fsync of temporary file failed: ",
                                             ErrnoText(errno)));
  }
  if (status.ok()) MaybeCrashAt("after_fsync");
  if (::close(fd) != 0 && status.ok()) {
    status = absl::UnknownError(absl::StrCat("cannot write checkpoint ", path,
                                             ": close of temporary file failed: ",
                                             ErrnoText(errno)));
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return temp;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

absl::Status DataLoss(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat("checkpoint ", path, " ", what));
}

}  // namespace

absl::Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint) {
  absl::StatusOr<std::string> file = EncodeCheckpoint(path, checkpoint);
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> temp = WriteTempFile(path, *file);
  if (!temp.ok()) return temp.status();
  file->clear();
  file->shrink_to_fit();
  if (::rename(temp->c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp->c_str());
    return absl::UnknownError(absl::StrCat("cannot write checkpoint ", path, ": rename of ",
                                           *temp, " failed: ", ErrnoText(err)));
  }
  return SyncDir(DirName(path));
}

namespace {

// The whole file, as it is on disk now.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("checkpoint ", path, " does not exist"));
    }
    return absl::UnknownError(
        absl::StrCat("cannot open checkpoint ", path, ": ", ErrnoText(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::UnknownError(absl::StrCat("cannot read checkpoint ", path, ": ", ErrnoText(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", path, " is not a regular file (a folder?)"));
  }
  std::string file(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < file.size()) {
    const ssize_t n = ::read(fd, file.data() + done, file.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) break;  // shrank while reading: handled as truncation below
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::UnknownError(
          absl::StrCat("cannot read checkpoint ", path, ": ", ErrnoText(err)));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  file.resize(done);
  return file;

}

// Checks magic, version, announced size and checksum; returns the payload inside `file`.
absl::StatusOr<absl::string_view> CheckFraming(const std::string& path, const std::string& file) {
  const size_t magic_seen = std::min(file.size(), sizeof(kMagic));
  if (std::memcmp(file.data(), kMagic, magic_seen) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", path, " is not a moco checkpoint (bad magic bytes)"));
  }
  if (file.size() < kHeaderBytes) {
    return DataLoss(path, absl::StrCat("is truncated: ", file.size(),
                                       " bytes, shorter than the ", kHeaderBytes,
                                       "-byte header"));
  }
  const uint32_t version = GetU32(file.data() + 8);
  if (version != kCheckpointFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", path, " has unsupported format version ", version,
                     " (this build reads version ", kCheckpointFormatVersion, ")"));
  }
  const uint64_t payload_bytes = GetU64(file.data() + 12);
  const uint64_t available = file.size() - kHeaderBytes;
  if (payload_bytes > static_cast<uint64_t>(INT_MAX) ||
      available < payload_bytes + kTrailerBytes) {
    return DataLoss(path, absl::StrCat("is truncated: ", file.size(),
                                       " bytes, but its header announces a ", payload_bytes,
                                       "-byte payload (file size ",
                                       kHeaderBytes + payload_bytes + kTrailerBytes, ")"));
  }
  if (available > payload_bytes + kTrailerBytes) {
    return DataLoss(path, absl::StrCat("is corrupt: ", available - payload_bytes - kTrailerBytes,
                                       " unexpected bytes after the checksum"));
  }
  const char* payload = file.data() + kHeaderBytes;
  const uint32_t stored_crc = GetU32(payload + payload_bytes);
  const uint32_t crc = Crc32(payload, payload_bytes);
  if (crc != stored_crc) {
    return DataLoss(path, absl::StrCat("is corrupt or truncated: payload checksum mismatch "
                                       "(stored ",
                                       stored_crc, ", computed ", crc, ")"));
  }

  return absl::string_view(payload, payload_bytes);
}

// Moves the payload's arrays into `c`, checking each one's size against its shape.
absl::Status MoveArrays(const std::string& path, ckpt::Checkpoint& proto, Checkpoint& c) {
  for (ckpt::Array& a : *proto.mutable_arrays()) {
    std::vector<int64_t> shape(a.shape().begin(), a.shape().end());
    const absl::StatusOr<int64_t> checked_numel = HostArray::NumElements(shape);
    if (!checked_numel.ok()) {
      return DataLoss(path, absl::StrCat("is corrupt: array '", a.name(), "': ",
                                         checked_numel.status().message()));
    }
    const int64_t numel = *checked_numel;
    if (a.data().size() / sizeof(float) != static_cast<uint64_t>(numel) ||
        a.data().size() % sizeof(float) != 0) {
      return DataLoss(path, absl::StrCat("is corrupt: array '", a.name(), "' holds ",
                                         a.data().size(), " bytes but its shape needs ",
                                         numel * sizeof(float)));
    }
    HostArray array(std::move(shape));
    if (numel > 0) std::memcpy(array.mutable_data().data(), a.data().data(), a.data().size());
    a.clear_data();
    if (!c.arrays.emplace(a.name(), std::move(array)).second) {
      return DataLoss(path, absl::StrCat("is corrupt: array '", a.name(), "' appears twice"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> FromProto(const std::string& path, ckpt::Checkpoint& proto) {
  Checkpoint c;
  c.epoch = proto.epoch();
  c.global_step = proto.global_step();
  c.seed = proto.seed();
  c.config_text = proto.config_text();
  c.backend = proto.backend();
  RETURN_IF_ERROR(MoveArrays(path, proto, c));
  for (const ckpt::MetadataEntry& e : proto.metadata()) {
    if (!c.metadata.emplace(e.key(), e.value()).second) {
      return DataLoss(path, absl::StrCat("is corrupt: metadata key '", e.key(),
                                         "' appears twice"));
    }
  }
  return c;
}

}  // namespace

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(std::string file, ReadWholeFile(path));
  ASSIGN_OR_RETURN(absl::string_view payload, CheckFraming(path, file));
  ckpt::Checkpoint proto;
  if (!proto.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return DataLoss(path, "is corrupt: the payload is not a valid moco.ckpt.Checkpoint");
  }
  file.clear();  // the arrays are copied out of `proto`; one copy of the bytes at a time
  file.shrink_to_fit();
  return FromProto(path, proto);
}

std::string CheckpointPath(const std::string& run_dir) {
  return absl::StrCat(run_dir, "/checkpoint.ckpt");
}

std::string PreviousCheckpointPath(const std::string& run_dir) {
  return absl::StrCat(run_dir, "/checkpoint.prev.ckpt");
}

std::string CorruptCheckpointPath(const std::string& run_dir) {
  return absl::StrCat(run_dir, "/checkpoint.corrupt.ckpt");
}

absl::Status SaveCheckpointToRunDir(const std::string& run_dir, const Checkpoint& checkpoint) {
  const std::string latest = CheckpointPath(run_dir);
  const std::string previous = PreviousCheckpointPath(run_dir);
  // 0. Leftovers of killed writes (each the size of a checkpoint) go first: they would fill
  // the disk over many kills.
  RemoveStaleTemporaries(run_dir, BaseName(latest));
  // 1. The new checkpoint, complete and synced, under a temporary name.
  absl::StatusOr<std::string> file = EncodeCheckpoint(latest, checkpoint);
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> temp = WriteTempFile(latest, *file);
  if (!temp.ok()) return temp.status();
  file->clear();
  file->shrink_to_fit();
  // 2. The current latest becomes the previous one, without ever removing the latest.
  if (Exists(latest)) {
    const std::string link_name = absl::StrCat(run_dir, "/.checkpoint.prev.ckpt.link");
    ::unlink(link_name.c_str());  // a leftover of an earlier crash
    bool moved = false;
    if (::link(latest.c_str(), link_name.c_str()) == 0) {
      moved = ::rename(link_name.c_str(), previous.c_str()) == 0;
      // Gone after a real rename; still there if the rename failed, or if P was already a
      // link to C (a crash between steps 2 and 3), when rename does nothing.
      ::unlink(link_name.c_str());
    }
    if (!moved) {
      // No hard links here: rename instead (ReadLatestCheckpoint covers the gap).
      if (::rename(latest.c_str(), previous.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp->c_str());
        return absl::UnknownError(absl::StrCat("cannot keep ", latest, " as ", previous, ": ",
                                               ErrnoText(err)));
      }
    }
  }
  MaybeCrashAt("after_prev");
  // 3. The new checkpoint becomes the latest.
  if (::rename(temp->c_str(), latest.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp->c_str());
    return absl::UnknownError(absl::StrCat("cannot write checkpoint ", latest, ": rename of ",
                                           *temp, " failed: ", ErrnoText(err)));
  }
  MaybeCrashAt("after_rename");
  // 4. Make the renames durable.
  return SyncDir(run_dir);
}

absl::StatusOr<Checkpoint> ReadLatestCheckpoint(const std::string& run_dir) {
  const std::string latest = CheckpointPath(run_dir);
  const std::string previous = PreviousCheckpointPath(run_dir);
  absl::StatusOr<Checkpoint> c = ReadCheckpoint(latest);
  if (c.ok()) return c;
  absl::StatusOr<Checkpoint> p = ReadCheckpoint(previous);
  if (p.ok()) {
    LOG(WARNING) << "using the previous checkpoint " << previous << " because "
                 << c.status().message();
    if (!absl::IsNotFound(c.status())) {
      // The next save would rotate the known-bad latest into P and lose the good one: move it
      // aside (kept for inspection, replacing an older corrupt one).
      const std::string aside = CorruptCheckpointPath(run_dir);
      if (::rename(latest.c_str(), aside.c_str()) == 0) {
        LOG(WARNING) << "moved the unreadable " << latest << " to " << aside;
      } else {
        return absl::Status(c.status().code(),
                            absl::StrCat(c.status().message(), "; and it cannot be moved to ",
                                         aside, ": ", ErrnoText(errno)));
      }
    }
    return p;
  }
  if (absl::IsNotFound(c.status()) && absl::IsNotFound(p.status())) {
    return absl::NotFoundError(absl::StrCat("no checkpoint in ", run_dir, ": neither ", latest,
                                            " nor ", previous, " exists"));
  }
  if (absl::IsNotFound(p.status())) return c.status();
  // The latest is missing or bad and the previous one exists but is bad too: report both,
  // never NotFound (a caller must not mistake this for "no checkpoint, start afresh").
  const absl::StatusCode code =
      absl::IsNotFound(c.status()) ? p.status().code() : c.status().code();
  return absl::Status(code, absl::StrCat(c.status().message(),
                                                      "; previous checkpoint: ",
                                                      p.status().message()));
}

}  // namespace moco
