// Private to the transform: the pieces of output text it writes by hand — JSON string
// escaping, decimal integers and ISO-8601 UTC instants — into a caller-sized buffer.
//
// Everything here writes through a raw `char*` that the caller has sized beforehand (see the
// *MaxBytes constants), returns the new end, never allocates and never touches the locale.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace loginflow::transform_detail {

// ---- JSON strings ----------------------------------------------------------------------

// For each byte: 0 when it is copied as is, else the letter after the backslash ('u' for the
// \u00XX form). Escaped: '"', '\\' and every control character below 0x20. '/', DEL and every
// byte >= 0x80 (the input is validated UTF-8) are copied unchanged.
inline constexpr std::array<char, 256> kJsonEscape = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = 'u';
  t['\b'] = 'b';
  t['\f'] = 'f';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}();

// The most bytes writeJsonString() writes for an n-byte string: quotes + 6 per byte.
constexpr std::size_t jsonStringMaxBytes(std::size_t n) noexcept { return 2 + 6 * n; }

// Writes `s` as a quoted JSON string. Runs of plain bytes are copied with memcpy.
inline char* writeJsonString(char* out, const char* s, std::size_t n) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  *out++ = '"';
  std::size_t i = 0;
  while (i < n) {
    std::size_t run = i;
    while (run < n && kJsonEscape[static_cast<unsigned char>(s[run])] == 0) ++run;
    std::memcpy(out, s + i, run - i);
    out += run - i;
    i = run;
    if (i == n) break;
    const auto c = static_cast<unsigned char>(s[i++]);
    const char e = kJsonEscape[c];
    *out++ = '\\';
    *out++ = e;
    if (e == 'u') {
      *out++ = '0';
      *out++ = '0';
      *out++ = kHex[c >> 4];
      *out++ = kHex[c & 0xF];
    }
  }
  *out++ = '"';
  return out;
}

// Writes a string already known to need no escaping (digits, dots, letters, IP text).
inline char* writePlainJsonString(char* out, const char* s, std::size_t n) noexcept {
  *out++ = '"';
  std::memcpy(out, s, n);
  out += n;
  *out++ = '"';
  return out;
}

inline char* writeLiteral(char* out, const char* s, std::size_t n) noexcept {
  std::memcpy(out, s, n);
  return out + n;
}

template <std::size_t N>
inline char* writeLiteral(char* out, const char (&s)[N]) noexcept {
  return writeLiteral(out, s, N - 1);
}

// Decimal integer; at most 20 bytes.
inline constexpr std::size_t kIntMaxBytes = 20;
inline char* writeInt(char* out, std::int64_t v) noexcept {
  return std::to_chars(out, out + kIntMaxBytes, v).ptr;
}

// ---- civil time -------------------------------------------------------------------------

struct CivilDate {
  std::int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

// Days since 1970-01-01 → proleptic Gregorian date. Howard Hinnant's `civil_from_days`
// (http://howardhinnant.github.io/date_algorithms.html), exact for every int64 day count that
// does not overflow the 400-year era arithmetic (|days| < 2^62).
constexpr CivilDate civilFromDays(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<std::uint64_t>(z - era * 146097);              // [0, 146096]
  const std::uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const std::uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const std::uint64_t mp = (5 * doy + 2) / 153;                       // [0, 11]
  const auto d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);  // [1, 31]
  const auto m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);     // [1, 12]
  return CivilDate{y + (m <= 2 ? 1 : 0), m, d};
}

inline constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

inline char* write2(char* out, unsigned v) noexcept {
  std::memcpy(out, kTwoDigits + std::size_t{2} * v, 2);
  return out + 2;
}

// The most bytes writeIsoUtc() writes (a year of up to 20 characters, e.g. far-future clocks).
inline constexpr std::size_t kIsoUtcMaxBytes = 20 + 21;

// `ms_since_epoch` as YYYY-MM-DDTHH:MM:SSZ, or YYYY-MM-DDTHH:MM:SS.mmmZ when `with_millis`.
// Years 0..9999 have exactly four digits; others (never produced by valid timestamps) are
// written in full with their sign.
inline char* writeIsoUtc(char* out, std::int64_t ms_since_epoch, bool with_millis) noexcept {
  constexpr std::int64_t kMsPerDay = 86'400'000;
  std::int64_t days = ms_since_epoch / kMsPerDay;
  std::int64_t ms_of_day = ms_since_epoch % kMsPerDay;
  if (ms_of_day < 0) {  // floor, for instants before 1970
    ms_of_day += kMsPerDay;
    --days;
  }
  const CivilDate date = civilFromDays(days);
  if (date.year >= 0 && date.year <= 9999) {
    const auto y = static_cast<unsigned>(date.year);
    out = write2(out, y / 100);
    out = write2(out, y % 100);
  } else {
    out = std::to_chars(out, out + kIntMaxBytes, date.year).ptr;
  }
  *out++ = '-';
  out = write2(out, date.month);
  *out++ = '-';
  out = write2(out, date.day);
  *out++ = 'T';
  const auto secs = static_cast<unsigned>(ms_of_day / 1000);
  out = write2(out, secs / 3600);
  *out++ = ':';
  out = write2(out, secs / 60 % 60);
  *out++ = ':';
  out = write2(out, secs % 60);
  if (with_millis) {
    const auto ms = static_cast<unsigned>(ms_of_day % 1000);
    *out++ = '.';
    *out++ = static_cast<char>('0' + ms / 100);
    out = write2(out, ms % 100);
  }
  *out++ = 'Z';
  return out;
}

}  // namespace loginflow::transform_detail
