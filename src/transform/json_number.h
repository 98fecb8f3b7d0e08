// Private to the transform: exact "is this JSON number inside double range" decisions.
//
// SPEC: a number outside double range makes the value invalid_json. RapidJSON 1.1.0 decides
// this approximately: it rejects some numbers that are in range ("0e400", whose value is 0;
// integers just below DBL_MAX whose running double estimate crosses DBL_MAX/10) and, in
// kParseNumbersAsStringsFlag mode, accepts some that are not ("99e307"). So the transform
// decides itself, on the number's text:
//   - every number RapidJSON accepts is checked with jsonNumberInDoubleRange() (cheaply: only
//     numbers with a fraction, an exponent or over 308 digits need the check);
//   - when RapidJSON rejects a number that is in fact in range, neutraliseNumbers() rewrites
//     every such number in a fresh copy of the input to an equivalent RapidJSON accepts, and
//     the copy is parsed again.
#pragma once

#include <cstddef>
#include <string_view>

namespace loginflow::transform_detail {

// The parts of a JSON number's text (RFC 8259 grammar: -?int(.frac)?([eE][+-]?digits)?).
struct JsonNumberParts {
  bool negative = false;
  std::string_view int_digits;
  std::string_view frac_digits;  // empty when there is no fraction
  bool has_exponent = false;
  bool exponent_negative = false;
  std::string_view exponent_digits;
};

// Splits `text` into its parts; false when `text` is not exactly one JSON number.
bool splitJsonNumber(std::string_view text, JsonNumberParts& out) noexcept;

// True when the JSON number `text` (already known to be grammatical) rounds to a finite
// double, i.e. its magnitude is below DBL_MAX + half an ulp. Underflow (1e-400 → 0) is in
// range, as in every mainstream JSON parser.
bool jsonNumberInDoubleRange(std::string_view text) noexcept;

// True when a grammatical number needs jsonNumberInDoubleRange() at all (has a fraction or an
// exponent, or more than 308 integer digits); plain integers below 10^308 are always in range.
bool jsonNumberNeedsRangeCheck(std::string_view text) noexcept;

// Rewrites, in place and keeping every length and offset, each number outside strings in the
// JSON text [buf, buf+len) that is in double range but that RapidJSON 1.1.0 might reject, to
// one it accepts with the same integer/non-integer form: an integer becomes 1 followed by
// zeros, a non-integer "0." followed by zeros ("0e0" when only three bytes long). Strings,
// structure and everything else are untouched, so the parse result is the same apart from
// those numbers' values, which the transform never uses (they are either not timestamps or
// invalid timestamps either way).
void neutraliseNumbers(char* buf, std::size_t len) noexcept;

}  // namespace loginflow::transform_detail
