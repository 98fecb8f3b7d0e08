// Private to the transform: SPEC's per-field rules (Output table), on already-decoded strings.
// Pure functions, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace loginflow::transform_detail {

// SPEC: "Trimmed" = ASCII white space (space, tab, LF, CR, FF, VT) removed at both ends.
constexpr bool isAsciiSpace(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
std::string_view trimAscii(std::string_view s) noexcept;

// Lower-cases ASCII letters in place (other bytes unchanged).
void asciiLowerInPlace(char* s, std::size_t n) noexcept;

// locale: trimmed, upper-cased, then 2–3 letters A–Z. On success writes the upper-cased
// letters to out[0..n) and returns n (2 or 3); returns 0 when invalid.
std::size_t normaliseLocale(std::string_view raw, char out[3]) noexcept;

// app_version: ^[0-9]+(\.[0-9]+)*$ on the whole string.
bool isAppVersion(std::string_view s) noexcept;

// ip: IPv4 or IPv6 text as inet_pton accepts it (no zone id, no white space; strings with a
// NUL byte or over 63 bytes are rejected before inet_pton is asked).
bool isIpAddress(std::string_view s) noexcept;

// ---- timestamp ---------------------------------------------------------------------------

inline constexpr std::int64_t kMinTimestampMs = 946'684'800'000;  // 2000-01-01T00:00:00Z
inline constexpr std::int64_t kMaxFutureMs = 86'400'000;          // now + 24 h
inline constexpr std::uint64_t kMillisThreshold = 1'000'000'000'000;  // >= 10^12 → ms

struct TimestampCheck {
  enum class Status : std::uint8_t { kOk, kNotInteger, kTooEarly, kTooLate };
  Status status = Status::kNotInteger;
  bool millis = false;      // the input was milliseconds (>= 10^12)
  std::int64_t ms = 0;      // the instant, kOk only
};

// A timestamp given as a JSON number (its text; `integer` false when it has a fraction or
// exponent) or as a JSON string (its decoded bytes), checked against [2000-01-01, now + 24 h].
TimestampCheck checkTimestampNumber(std::string_view text, bool integer,
                                    std::int64_t now_ms) noexcept;
TimestampCheck checkTimestampString(std::string_view s, std::int64_t now_ms) noexcept;

}  // namespace loginflow::transform_detail
