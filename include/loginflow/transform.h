// The login-event transform: one input record in, one output record or one dead letter out.
//
// A pure function of (key, value bytes, source metadata, the current time): no I/O, no
// logging, and — after the first few records have sized its buffers — no heap allocation.
// The rules are SPEC.md's "Output" and "Dead letters" sections, to the letter.
//
// Thread-safety: a Transformer is NOT thread-safe; each worker thread owns one. The views in
// the returned Result point into the Transformer's own buffers (or into the input) and stay
// valid until the next call to apply() on the same Transformer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace loginflow {

// Why a record became a dead letter. The order is SPEC's precedence: when several apply,
// the first one wins.
enum class DlqReason : std::uint8_t {
  kTooLarge = 0,
  kInvalidJson,
  kNotAnObject,
  kMissingUserId,
  kInvalidUserId,
  kMissingTimestamp,
  kInvalidTimestamp,
};
inline constexpr std::size_t kDlqReasonCount = 7;

// The value of the `error.reason` header and of the `reason` metric label ("too_large", ...).
std::string_view dlqReasonName(DlqReason reason) noexcept;

// Warnings on an output record, one bit each, declared in output field order
// (device_id, device_type, app_version, locale, ip), which is the order they are listed in
// the output's "warnings" array.
enum class Warning : std::uint8_t {
  kInvalidDeviceId = 0,
  kInvalidDeviceType,
  kInvalidAppVersion,
  kInvalidLocale,
  kInvalidIp,
};
inline constexpr std::size_t kWarningCount = 5;

// "invalid_device_id", ... — the warning's name in the output and in the metric label.
std::string_view warningName(Warning warning) noexcept;

inline constexpr std::uint32_t warningBit(Warning w) noexcept {
  return 1U << static_cast<unsigned>(w);
}

// SPEC limits.
inline constexpr std::size_t kMaxValueBytes = 1'000'000;   // larger → too_large
inline constexpr std::size_t kTooLargeKeepBytes = 1'024;    // what a too_large dead letter carries
inline constexpr std::size_t kMaxUserIdBytes = 128;

// Where the input record came from (for the dead letter's headers; the transform itself only
// needs it to fill Result::detail where useful).
struct SourceMeta {
  std::string_view topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};

// One input record. `value == nullptr` is a null Kafka value (a tombstone); `key == nullptr`
// a null key.
struct InputRecord {
  const char* key = nullptr;
  std::size_t key_len = 0;
  const char* value = nullptr;
  std::size_t value_len = 0;
  SourceMeta source;
};

struct Result {
  enum class Kind : std::uint8_t { kOutput, kDeadLetter };
  Kind kind = Kind::kOutput;

  // kOutput: the output record. key = the user_id as UTF-8 bytes; value = the compact JSON
  // object of SPEC's Output section.
  std::string_view key;
  std::string_view value;

  // kDeadLetter: the reason and a short human-readable sentence (the `error.detail` header).
  // dlq_value is what the dead letter carries: the whole input value, or for kTooLarge its
  // first kTooLargeKeepBytes bytes; dlq_value_null is true when the input value was null.
  DlqReason reason = DlqReason::kInvalidJson;
  std::string_view detail;
  std::string_view dlq_value;
  bool dlq_value_null = false;
  std::size_t original_size = 0;  // the input value's size (the `error.original_size` header)

  // Facts for the counters (kOutput only). A null device type / locale has has_* == false
  // (counted as "unknown"). device_type is trimmed and lower-cased; locale is upper-cased and
  // 2–3 letters A–Z.
  bool has_device_type = false;
  std::string_view device_type;
  bool has_locale = false;
  std::string_view locale;
  std::uint32_t warnings = 0;  // bit set of warningBit(...)
};

class Transformer {
 public:
  Transformer();
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;
  Transformer(Transformer&&) noexcept;
  Transformer& operator=(Transformer&&) noexcept;

  // Transforms one record. `now_ms` is the current UTC wall clock in milliseconds since the
  // Unix epoch: it bounds `timestamp` (now + 24 h) and is written as `processed_at`.
  // Never throws, never crashes on any input.
  const Result& apply(const InputRecord& in, std::int64_t now_ms) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Milliseconds since the Unix epoch, UTC wall clock.
std::int64_t wallClockMs() noexcept;

}  // namespace loginflow
