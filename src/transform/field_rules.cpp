#include "field_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <limits>

namespace loginflow::transform_detail {
namespace {

constexpr bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }

// Checks a run of ASCII digits (leading zeros allowed) that denotes a non-negative instant.
TimestampCheck checkDigits(std::string_view digits, std::int64_t now_ms) noexcept {
  using Status = TimestampCheck::Status;
  TimestampCheck r;
  std::size_t i = 0;
  while (i < digits.size() && digits[i] == '0') ++i;  // leading zeros
  const std::string_view significant = digits.substr(i);
  // 19 digits always fit in uint64 (< 10^19 < 2^64); anything longer is far in the future.
  if (significant.size() > 19) {
    r.status = Status::kTooLate;
    r.millis = true;
    return r;
  }
  std::uint64_t v = 0;
  for (const char c : significant) v = v * 10 + static_cast<std::uint64_t>(c - '0');

  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t upper = now_ms > kMax - kMaxFutureMs ? kMax : now_ms + kMaxFutureMs;
  r.millis = v >= kMillisThreshold;
  if (v > static_cast<std::uint64_t>(kMax)) {
    r.status = Status::kTooLate;
    return r;
  }
  // Seconds are below 10^12, so seconds * 1000 cannot overflow.
  const auto ms = static_cast<std::int64_t>(r.millis ? v : v * 1000);
  if (ms < kMinTimestampMs) {
    r.status = Status::kTooEarly;
  } else if (ms > upper) {
    r.status = Status::kTooLate;
  } else {
    r.status = Status::kOk;
    r.ms = ms;
  }
  return r;
}

}  // namespace

std::string_view trimAscii(std::string_view s) noexcept {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && isAsciiSpace(s[b])) ++b;
  while (e > b && isAsciiSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

void asciiLowerInPlace(char* s, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (s[i] >= 'A' && s[i] <= 'Z') s[i] = static_cast<char>(s[i] - 'A' + 'a');
  }
}

std::size_t normaliseLocale(std::string_view raw, char out[3]) noexcept {
  const std::string_view t = trimAscii(raw);
  if (t.size() < 2 || t.size() > 3) return 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c < 'A' || c > 'Z') return 0;
    out[i] = c;
  }
  return t.size();
}

bool isAppVersion(std::string_view s) noexcept {
  // One or more digit groups separated by single dots: starts and ends with a digit.
  if (s.empty() || !isDigit(s.front()) || !isDigit(s.back())) return false;
  char prev = '0';
  for (const char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!isDigit(c)) {
      return false;
    }
    prev = c;
  }
  return true;
}

bool isIpAddress(std::string_view s) noexcept {
  constexpr std::size_t kMaxIpText = 63;  // INET6_ADDRSTRLEN is 46; anything longer is wrong
  if (s.empty() || s.size() > kMaxIpText) return false;
  if (std::memchr(s.data(), '\0', s.size()) != nullptr) return false;
  char text[kMaxIpText + 1];
  std::memcpy(text, s.data(), s.size());
  text[s.size()] = '\0';
  unsigned char addr[sizeof(in6_addr)];
  // A colon means IPv6 text; ask only the family that can accept it.
  if (std::memchr(text, ':', s.size()) != nullptr) return inet_pton(AF_INET6, text, addr) == 1;
  return inet_pton(AF_INET, text, addr) == 1;
}

TimestampCheck checkTimestampNumber(std::string_view text, bool integer,
                                    std::int64_t now_ms) noexcept {
  TimestampCheck r;
  if (!integer || text.empty()) return r;  // kNotInteger: 1694479551.0, 1.6e9, ...
  if (text.front() == '-') {
    r.status = TimestampCheck::Status::kTooEarly;  // any negative integer (or -0)
    return r;
  }
  return checkDigits(text, now_ms);
}

TimestampCheck checkTimestampString(std::string_view s, std::int64_t now_ms) noexcept {
  if (s.empty()) return TimestampCheck{};
  for (const char c : s) {
    if (!isDigit(c)) return TimestampCheck{};  // kNotInteger: sign, space, fraction, ...
  }
  return checkDigits(s, now_ms);
}

}  // namespace loginflow::transform_detail
