#include "moco/interop/zip_archive.h"

#include <zlib.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace moco {
namespace interop {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr size_t kEndSize = 22;
constexpr size_t kLocalSize = 30;
constexpr size_t kCentralSize = 46;

uint16_t U16(absl::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) |
                               (static_cast<uint8_t>(b[at + 1]) << 8));
}
uint32_t U32(absl::string_view b, size_t at) {
  return static_cast<uint32_t>(U16(b, at)) | (static_cast<uint32_t>(U16(b, at + 2)) << 16);
}
void Put16(std::string& o, uint32_t v) {
  o.push_back(static_cast<char>(v & 0xff));
  o.push_back(static_cast<char>((v >> 8) & 0xff));
}
void Put32(std::string& o, uint32_t v) {
  Put16(o, v & 0xffff);
  Put16(o, v >> 16);
}
uint32_t Crc(absl::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < data.size()) {
    const size_t n = std::min<size_t>(data.size() - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + done), static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

absl::StatusOr<ZipReader> ZipReader::Open(absl::string_view bytes, std::string label) {
  ZipReader r;
  r.bytes_ = bytes;
  r.label_ = std::move(label);
  auto bad = [&r](const std::string& what) {
    return absl::DataLossError(absl::StrCat(r.label_, ": not a readable zip archive: ", what));
  };
  if (bytes.size() < kEndSize) return bad("shorter than an end-of-directory record");
  // The end record is in the last 22 + 65535 (comment) bytes.
  size_t end = std::string::npos;
  const size_t lowest = bytes.size() > kEndSize + 65535 ? bytes.size() - kEndSize - 65535 : 0;
  for (size_t at = bytes.size() - kEndSize + 1; at-- > lowest;) {
    if (U32(bytes, at) == kEndSig) {
      end = at;
      break;
    }
  }
  if (end == std::string::npos) return bad("no end-of-central-directory record (truncated?)");
  const uint16_t count = U16(bytes, end + 10);
  const uint32_t dir_size = U32(bytes, end + 12);
  const uint32_t dir_offset = U32(bytes, end + 16);
  if (count == 0xffff || dir_offset == 0xffffffffu) return bad("ZIP64 archives are not supported");
  if (static_cast<uint64_t>(dir_offset) + dir_size > end) {
    return bad("central directory lies outside the file");
  }
  size_t at = dir_offset;
  for (uint16_t i = 0; i < count; ++i) {
    if (at + kCentralSize > end || U32(bytes, at) != kCentralSig) {
      return bad(absl::StrCat("central directory entry ", i, " is corrupt"));
    }
    Entry e;
    e.method = U16(bytes, at + 10);
    e.crc = U32(bytes, at + 16);
    e.compressed = U32(bytes, at + 20);
    e.size = U32(bytes, at + 24);
    const uint16_t name_len = U16(bytes, at + 28);
    const uint16_t extra_len = U16(bytes, at + 30);
    const uint16_t comment_len = U16(bytes, at + 32);
    e.local_offset = U32(bytes, at + 42);
    if (U16(bytes, at + 8) & 1) return bad("encrypted entries are not supported");
    const size_t next = at + kCentralSize + name_len + extra_len + comment_len;
    if (next > end) return bad(absl::StrCat("central directory entry ", i, " is cut off"));
    e.name = std::string(bytes.substr(at + kCentralSize, name_len));
    if (e.compressed == 0xffffffffu || e.size == 0xffffffffu || e.local_offset == 0xffffffffu) {
      return bad(absl::StrCat("entry '", e.name, "' needs ZIP64 (not supported)"));
    }
    if (e.method != 0 && e.method != 8) {
      return bad(absl::StrCat("entry '", e.name, "' uses compression method ", e.method,
                              " (only stored and deflate are supported)"));
    }
    if (e.local_offset + kLocalSize > bytes.size()) {
      return bad(absl::StrCat("entry '", e.name, "' starts past the end of the file"));
    }
    r.names_.push_back(e.name);
    r.entries_.push_back(std::move(e));
    at = next;
  }
  return r;
}

bool ZipReader::Has(absl::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return true;
  }
  return false;
}

absl::StatusOr<std::string> ZipReader::Read(absl::string_view name) const {
  const Entry* e = nullptr;
  for (const Entry& candidate : entries_) {
    if (candidate.name == name) e = &candidate;
  }
  if (e == nullptr) {
    return absl::NotFoundError(absl::StrCat(label_, ": zip archive has no entry '", name, "'"));
  }
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(label_, ": zip entry '", e->name, "': ", what));
  };
  const size_t at = e->local_offset;
  if (U32(bytes_, at) != kLocalSig) return bad("local header is corrupt");
  const size_t data_at = at + kLocalSize + U16(bytes_, at + 26) + U16(bytes_, at + 28);
  if (data_at > bytes_.size() || e->compressed > bytes_.size() - data_at) {
    return bad(absl::StrCat("data (", e->compressed, " bytes) runs past the end of the file"));
  }
  const absl::string_view raw = bytes_.substr(data_at, e->compressed);
  std::string out;
  if (e->method == 0) {
    if (e->compressed != e->size) return bad("stored entry with differing sizes");
    out = std::string(raw);
  } else {
    // Deflate: the declared size bounds the output; a ratio beyond 1032:1 (deflate's
    // maximum) is a lie, so a tiny entry cannot make us allocate gigabytes.
    if (e->size / 1032 > e->compressed + 1) return bad("declared size is impossible for deflate");
    out.resize(e->size);
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return bad("inflateInit failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_FINISH);
    const uint64_t produced = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != e->size) return bad("deflate data is corrupt");
  }
  if (Crc(out) != e->crc) return bad("CRC-32 mismatch (corrupt file)");
  return out;
}

void ZipWriter::Add(const std::string& name, absl::string_view data) {
  CHECK_LE(out_.size() + data.size() + name.size() + 200, std::numeric_limits<uint32_t>::max())
      << "archive too large for a non-ZIP64 zip";
  Entry e{name, Crc(data), static_cast<uint32_t>(data.size()),
          static_cast<uint32_t>(out_.size())};
  // Pad the extra field so the data starts at a multiple of 64 (torch's alignment).
  const size_t header_end = out_.size() + kLocalSize + name.size();
  size_t pad = (64 - (header_end + 4) % 64) % 64;
  Put32(out_, kLocalSig);
  Put16(out_, 20);  // version needed
  Put16(out_, 0);   // flags
  Put16(out_, 0);   // method: stored
  Put16(out_, 0);   // time
  Put16(out_, 0);   // date
  Put32(out_, e.crc);
  Put32(out_, e.size);
  Put32(out_, e.size);
  Put16(out_, static_cast<uint32_t>(name.size()));
  Put16(out_, static_cast<uint32_t>(pad + 4));
  out_ += name;
  Put16(out_, 0x4246);  // "FB": torch's padding extra-field id
  Put16(out_, static_cast<uint32_t>(pad));
  out_.append(pad, 'Z');
  out_.append(data.data(), data.size());
  entries_.push_back(std::move(e));
}

std::string ZipWriter::Finish() {
  const uint32_t dir_offset = static_cast<uint32_t>(out_.size());
  for (const Entry& e : entries_) {
    Put32(out_, kCentralSig);
    Put16(out_, 20);  // made by
    Put16(out_, 20);  // needed
    Put16(out_, 0);
    Put16(out_, 0);
    Put16(out_, 0);
    Put16(out_, 0);
    Put32(out_, e.crc);
    Put32(out_, e.size);
    Put32(out_, e.size);
    Put16(out_, static_cast<uint32_t>(e.name.size()));
    Put16(out_, 0);  // extra
    Put16(out_, 0);  // comment
    Put16(out_, 0);  // disk
    Put16(out_, 0);  // internal attributes
    Put32(out_, 0);  // external attributes
    Put32(out_, e.offset);
    out_ += e.name;
  }
  const uint32_t dir_size = static_cast<uint32_t>(out_.size()) - dir_offset;
  Put32(out_, kEndSig);
  Put16(out_, 0);
  Put16(out_, 0);
  Put16(out_, static_cast<uint32_t>(entries_.size()));
  Put16(out_, static_cast<uint32_t>(entries_.size()));
  Put32(out_, dir_size);
  Put32(out_, dir_offset);
  Put16(out_, 0);
  std::string result;
  result.swap(out_);
  entries_.clear();
  return result;
}

}  // namespace interop
}  // namespace moco
