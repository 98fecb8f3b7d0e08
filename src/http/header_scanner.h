// Finds where an HTTP/1.x request header ends in the bytes received so far and enforces the
// size limits before Boost.Beast parses it.
//
// Why not Beast's own limit: its header_limit counts the request line together with the
// fields, while SPEC limits the header FIELDS alone ("over 8 KiB in total, request line not
// counted"). How the fields are counted: every byte after the request line's line end up to,
// not including, the empty line that ends the header — that is, each field line with its
// CRLF (or bare LF). A request with no fields has 0 bytes of fields.
//
// Incremental: feed it the same growing buffer after every read; it resumes where it left
// off, so a client that sends one byte at a time costs O(n), not O(n²). Not thread-safe; one
// per connection, reset() before each request.
#pragma once

#include <cstddef>
#include <string_view>

namespace loginflow::http_detail {

class HeaderScanner {
 public:
  enum class Result {
    kNeedMore,            // the header has not ended yet and no limit is exceeded
    kComplete,            // header_bytes() bytes hold the whole header; limits are kept
    kNotHttp,             // the first byte cannot start an HTTP request line
    kRequestLineTooLong,  // over max_request_line bytes before the line end
    kFieldsTooLarge,      // over max_field_bytes bytes of fields
  };

  HeaderScanner(std::size_t max_request_line, std::size_t max_field_bytes) noexcept
      : max_request_line_(max_request_line), max_field_bytes_(max_field_bytes) {}

  void reset() noexcept;

  // `data` starts at the first byte of the request and only grows between calls (until
  // reset()).
  Result scan(std::string_view data) noexcept;

  // After kComplete: the header's length including the final empty line.
  std::size_t headerBytes() const noexcept { return header_bytes_; }
  // After kComplete or kFieldsTooLarge: the field bytes counted (at least, for the latter).
  std::size_t fieldBytes() const noexcept { return field_bytes_; }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t max_request_line_;
  std::size_t max_field_bytes_;
  std::size_t fields_start_ = kNone;  // index just after the request line's LF
  std::size_t line_start_ = 0;        // start of the line being scanned
  std::size_t scanned_ = 0;           // bytes already searched for an LF
  std::size_t header_bytes_ = 0;
  std::size_t field_bytes_ = 0;
};

// True for the characters of an HTTP token (RFC 9110 tchar), which start a request line.
bool isTokenChar(char c) noexcept;

}  // namespace loginflow::http_detail
