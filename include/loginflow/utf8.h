// UTF-8 well-formedness (RFC 3629) for text that leaves the process: log lines, insights JSON,
// metric label values. Input data can hold any bytes; these never let an ill-formed sequence
// through. (The transform has its own, faster validation on the hot path.)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace loginflow {

// Length of the well-formed UTF-8 sequence at s[i] (1 for ASCII), or 0 when it is not one:
// stray continuation bytes, overlong forms, surrogates, code points above U+10FFFF, or a
// sequence cut short by the end of s.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i) noexcept;

bool validUtf8(std::string_view s) noexcept;

// s with every byte that does not start a well-formed sequence replaced by U+FFFD; with
// `controls_too`, also the ASCII control characters (0x00-0x1F and 0x7F).
std::string sanitizeUtf8(std::string_view s, bool controls_too = false);

}  // namespace loginflow
