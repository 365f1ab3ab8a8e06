// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, and the "masked" form
// that TFRecord files store (a rotation plus a constant, so that a CRC of data holding CRCs
// stays well distributed).
//
//   uint32_t c = Crc32c(payload.data(), payload.size());
//   uint32_t stored = MaskCrc32c(c);   // what a TFRecord file holds
#ifndef MOCO_OBSERVE_EVENTS_CRC32C_H_
#define MOCO_OBSERVE_EVENTS_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace moco {
namespace tfevents {

// CRC-32C of `size` bytes at `data`, continuing `crc` (the CRC of the bytes before them; 0 to
// start). Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

// ((crc >> 15) | (crc << 17)) + 0xA282EAD8, and its inverse.
uint32_t MaskCrc32c(uint32_t crc);
uint32_t UnmaskCrc32c(uint32_t masked);

}  // namespace tfevents
}  // namespace moco

#endif  // MOCO_OBSERVE_EVENTS_CRC32C_H_
