#include "header_scanner.h"

#include <string_view>

namespace loginflow::http_detail {

bool isTokenChar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void HeaderScanner::reset() noexcept {
  fields_start_ = kNone;
  line_start_ = 0;
  scanned_ = 0;
  header_bytes_ = 0;
  field_bytes_ = 0;
}

HeaderScanner::Result HeaderScanner::scan(std::string_view data) noexcept {
  if (data.empty()) return Result::kNeedMore;
  if (!isTokenChar(data[0])) return Result::kNotHttp;

  while (true) {
    const std::size_t lf = data.find('\n', scanned_);
    if (lf == std::string_view::npos) {
      scanned_ = data.size();
      const std::size_t pending = data.size() - line_start_;
      if (fields_start_ == kNone) {
        // The request line so far; one more byte may be the CR of its line end.
        if (pending > max_request_line_ + 1) return Result::kRequestLineTooLong;
      } else {
        // Fields so far; the last byte may be the CR of the empty line that ends them, so
        // they hold at least all bytes but one.
        const std::size_t at_least = data.size() - fields_start_;
        if (at_least > max_field_bytes_ + 1) {
          field_bytes_ = at_least - 1;
          return Result::kFieldsTooLarge;
        }
      }
      return Result::kNeedMore;
    }
    scanned_ = lf + 1;
    std::size_t line_length = lf - line_start_;
    if (line_length > 0 && data[lf - 1] == '\r') --line_length;
    if (fields_start_ == kNone) {
      if (line_length > max_request_line_) return Result::kRequestLineTooLong;
      fields_start_ = lf + 1;
    } else if (line_length == 0) {
      field_bytes_ = line_start_ - fields_start_;
      if (field_bytes_ > max_field_bytes_) return Result::kFieldsTooLarge;
      header_bytes_ = lf + 1;
      return Result::kComplete;
    } else if (lf + 1 - fields_start_ > max_field_bytes_) {
      field_bytes_ = lf + 1 - fields_start_;
      return Result::kFieldsTooLarge;
    }
    line_start_ = lf + 1;
  }
}

}  // namespace loginflow::http_detail
