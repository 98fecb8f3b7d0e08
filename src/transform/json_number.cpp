#include "json_number.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <system_error>

namespace loginflow::transform_detail {
namespace {

constexpr bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }

// Integers of this many digits or more may reach DBL_MAX (10^308 has 309 digits).
constexpr std::size_t kMaxSafeIntegerDigits = 308;

std::size_t digitRun(std::string_view s, std::size_t i) noexcept {
  std::size_t j = i;
  while (j < s.size() && isDigit(s[j])) ++j;
  return j - i;
}

}  // namespace

bool splitJsonNumber(std::string_view text, JsonNumberParts& out) noexcept {
  out = JsonNumberParts{};
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    out.negative = true;
    ++i;
  }
  const std::size_t int_len = digitRun(text, i);
  if (int_len == 0 || (int_len > 1 && text[i] == '0')) return false;  // no leading zeros
  out.int_digits = text.substr(i, int_len);
  i += int_len;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const std::size_t frac_len = digitRun(text, i);
    if (frac_len == 0) return false;
    out.frac_digits = text.substr(i, frac_len);
    i += frac_len;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    out.has_exponent = true;
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
      out.exponent_negative = text[i] == '-';
      ++i;
    }
    const std::size_t exp_len = digitRun(text, i);
    if (exp_len == 0) return false;
    out.exponent_digits = text.substr(i, exp_len);
    i += exp_len;
  }
  return i == text.size();
}

bool jsonNumberNeedsRangeCheck(std::string_view text) noexcept {
  if (text.size() > kMaxSafeIntegerDigits) return true;
  return text.find_first_of(".eE") != std::string_view::npos;
}

bool jsonNumberInDoubleRange(std::string_view text) noexcept {
  JsonNumberParts p;
  if (!splitJsonNumber(text, p)) return false;

  // Decimal exponent of the leading significant digit: value is in [10^e10, 10^(e10+1)).
  std::int64_t lead = 0;
  if (const auto nz = p.int_digits.find_first_not_of('0'); nz != std::string_view::npos) {
    lead = static_cast<std::int64_t>(p.int_digits.size() - 1 - nz);
  } else if (const auto fz = p.frac_digits.find_first_not_of('0');
             fz != std::string_view::npos) {
    lead = -static_cast<std::int64_t>(fz + 1);
  } else {
    return true;  // zero, whatever the exponent
  }
  std::int64_t exp = 0;
  for (const char c : p.exponent_digits) {
    exp = exp * 10 + (c - '0');
    if (exp > 1'000'000'000) break;  // saturate: far beyond any lead the size limit allows
  }
  const std::int64_t e10 = lead + (p.exponent_negative ? -exp : exp);
  if (e10 < 308) return true;   // below 10^308 < DBL_MAX
  if (e10 > 308) return false;  // at least 10^309
  // In [10^308, 10^309): let a correctly rounding conversion decide.
  double d = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  return ec == std::errc{} && ptr == text.data() + text.size() && std::isfinite(d);
}

void neutraliseNumbers(char* buf, std::size_t len) noexcept {
  std::size_t i = 0;
  while (i < len) {
    const char c = buf[i];
    if (c == '"') {  // skip a string, escapes included
      ++i;
      while (i < len) {
        if (buf[i] == '\\') {
          i += 2;
        } else if (buf[i] == '"') {
          ++i;
          break;
        } else {
          ++i;
        }
      }
      continue;
    }
    if (c != '-' && !isDigit(c)) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < len && (isDigit(buf[end]) || buf[end] == '.' || buf[end] == 'e' ||
                         buf[end] == 'E' || buf[end] == '+' || buf[end] == '-')) {
      ++end;
    }
    const std::string_view token(buf + i, end - i);
    JsonNumberParts parts;
    if (splitJsonNumber(token, parts) && jsonNumberInDoubleRange(token)) {
      const bool integer = parts.frac_digits.empty() && !parts.has_exponent;
      if (!integer) {
        if (token.size() == 3) {
          buf[i] = '0';
          buf[i + 1] = 'e';
          buf[i + 2] = '0';
        } else {
          buf[i] = '0';
          buf[i + 1] = '.';
          std::memset(buf + i + 2, '0', token.size() - 2);
        }
      } else if (parts.int_digits.size() > kMaxSafeIntegerDigits) {
        char* digits = buf + i + (parts.negative ? 1 : 0);
        digits[0] = '1';
        std::memset(digits + 1, '0', parts.int_digits.size() - 1);
      }
    }
    i = end;
  }
}

}  // namespace loginflow::transform_detail
