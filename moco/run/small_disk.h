// Test helper: a folder whose writes fail once they pass `bytes`, for disk-full tests.
// As root (CI and here) it is a tmpfs of that size, so writes fail with ENOSPC ("No space
// left on device"); where mounting is not allowed it falls back to RLIMIT_FSIZE on this
// process, so writes fail with EFBIG ("File too large"). reason() says which.
#ifndef MOCO_RUN_SMALL_DISK_H_
#define MOCO_RUN_SMALL_DISK_H_

#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <string>

namespace moco {

class SmallDisk {
 public:
  SmallDisk(const std::string& dir, size_t bytes) : dir_(dir) {
    ::mkdir(dir.c_str(), 0755);
    const std::string opts = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    limit_bytes_ = bytes;
  }
  // Call after the files that must fit are written (the limit applies from here).
  void Fill() {
    if (mounted_) return;  // the tmpfs is already small
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lim = old_;
    lim.rlim_cur = limit_bytes_;
    ::setrlimit(RLIMIT_FSIZE, &lim);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    limited_ = true;
  }
  ~SmallDisk() {
    if (limited_) {
      ::setrlimit(RLIMIT_FSIZE, &old_);
      ::signal(SIGXFSZ, old_handler_);
    }
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const char* reason() const { return mounted_ ? "No space left on device" : "File too large"; }

 private:
  std::string dir_;
  bool mounted_ = false, limited_ = false;
  size_t limit_bytes_ = 0;
  rlimit old_{};
  sighandler_t old_handler_ = nullptr;
};

}  // namespace moco

#endif  // MOCO_RUN_SMALL_DISK_H_
