// The login-event transform (SPEC "Output" and "Dead letters"). See transform.h for the
// contract; the private helpers live in field_rules.h, json_number.h and text_out.h.
//
// How a record flows through apply():
//   1. cheap byte-level checks on the raw value: null/empty, too_large, a UTF-8 BOM, a raw NUL
//      byte (RapidJSON treats NUL as the end of input and would accept `{}\0junk`);
//   2. the value is copied into a reusable, zero-padded buffer and parsed in situ with
//      RapidJSON's iterative SAX reader (no recursion, so any nesting depth is safe; no DOM).
//      The handler keeps only the top-level members the output needs (offsets into the buffer,
//      last duplicate wins) and checks what RapidJSON 1.1.0 does not: lone low-surrogate
//      escapes and the exact double range of numbers (see json_number.h);
//   3. the dead-letter rules in SPEC's order, then the output JSON, written by hand into a
//      reusable buffer sized up front.
// After the first call has sized the buffers (the constructor does one such call), apply()
// performs no heap allocation for values up to the sizes already seen.

#include "loginflow/transform.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <string_view>

#include "field_rules.h"
#include "json_number.h"
#include "text_out.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOGINFLOW_TRANSFORM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LOGINFLOW_TRANSFORM_ASAN 1
#endif
#ifdef LOGINFLOW_TRANSFORM_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace loginflow {
namespace {

using namespace transform_detail;  // NOLINT(google-build-using-namespace): private helpers

// Iterative: no recursion, no depth limit. ValidateEncoding: invalid UTF-8 is invalid_json.
// Insitu: strings are decoded in place in our own copy of the value, so the handler keeps
// offsets instead of copying. NumbersAsStrings: the handler sees each number's text, to tell
// integers from doubles exactly and to judge the double range itself.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag;

// Zero bytes after the copied value. One is the terminator RapidJSON's streams stop at; the
// rest are needed because RapidJSON 1.1.0's UTF-8 validation takes up to three continuation
// bytes after a lead byte without checking for the terminator, so `"\xF0` at the very end
// reads three bytes past it.
constexpr std::size_t kInputPadding = 16;

// The reader's state stack allocates through operator new, like the rest of the transform,
// so that one allocation counter sees everything (test/unit/transform_alloc_test.cpp).
class NewDeleteAllocator {
 public:
  [[maybe_unused]] static const bool kNeedFree = true;  // RapidJSON allocator concept
  void* Malloc(std::size_t size) { return size == 0 ? nullptr : ::operator new(size); }
  void* Realloc(void* old, std::size_t old_size, std::size_t new_size) {
    if (new_size == 0) {
      Free(old);
      return nullptr;
    }
    if (new_size <= old_size) return old;
    void* fresh = ::operator new(new_size);
    if (old != nullptr) {
      std::memcpy(fresh, old, old_size);
      ::operator delete(old);
    }
    return fresh;
  }
  static void Free(void* p) { ::operator delete(p); }
};

using Reader = rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, NewDeleteAllocator>;

// A byte buffer that only grows; its contents are not kept across growth.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { unpoisonAll(); }

  // A buffer of at least n writable bytes.
  char* prepare(std::size_t n) {
    unpoisonAll();
    if (n > capacity_) {
      const std::size_t grown = std::max({n, capacity_ * 2, std::size_t{4096}});
      data_ = std::make_unique_for_overwrite<char[]>(grown);
      capacity_ = grown;
    }
    return data_.get();
  }

  // Under AddressSanitizer, makes the bytes after the first `used` ones unaddressable, so a
  // read past the value's padding is reported even though the buffer is larger.
  void poisonAfter([[maybe_unused]] std::size_t used) {
#ifdef LOGINFLOW_TRANSFORM_ASAN
    if (used < capacity_) ASAN_POISON_MEMORY_REGION(data_.get() + used, capacity_ - used);
#endif
  }

 private:
  void unpoisonAll() {
#ifdef LOGINFLOW_TRANSFORM_ASAN
    if (capacity_ != 0) ASAN_UNPOISON_MEMORY_REGION(data_.get(), capacity_);
#endif
  }

  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
};

// The `error.detail` sentence, built without allocation (truncated at the capacity).
class Detail {
 public:
  void clear() noexcept { size_ = 0; }
  Detail& operator<<(std::string_view s) noexcept {
    const std::size_t n = std::min(s.size(), buf_.size() - size_);
    std::memcpy(buf_.data() + size_, s.data(), n);
    size_ += n;
    return *this;
  }
  Detail& operator<<(std::uint64_t v) noexcept {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    return *this << std::string_view(digits, static_cast<std::size_t>(end - digits));
  }
  // A piece of input text (digits of a timestamp), shortened when long.
  Detail& excerpt(std::string_view s) noexcept {
    constexpr std::size_t kMaxExcerpt = 32;
    if (s.size() <= kMaxExcerpt) return *this << s;
    return *this << s.substr(0, kMaxExcerpt) << "...";
  }
  std::string_view view() const noexcept { return {buf_.data(), size_}; }

 private:
  std::array<char, 256> buf_{};
  std::size_t size_ = 0;
};

// ---- the SAX handler ---------------------------------------------------------------------

enum class JsonKind : std::uint8_t {
  kAbsent,  // member not present (no event seen)
  kNull,
  kBool,
  kInteger,     // a number without fraction or exponent
  kNonInteger,  // a number with a fraction or an exponent
  kString,
  kObject,
  kArray,
};

enum Field : std::uint8_t {
  kUserId,
  kDeviceId,
  kDeviceType,
  kAppVersion,
  kLocale,
  kIp,
  kTimestamp,
  kFieldCount,
};

// Which output-relevant member a top-level key names, or -1. Keys are compared decoded, so
// "user\u005fid" is user_id, as JSON requires.
int fieldOf(const char* s, std::size_t n) noexcept {
  const std::string_view k(s, n);
  switch (n) {
    case 2: return k == "ip" ? kIp : -1;
    case 6: return k == "locale" ? kLocale : -1;
    case 7: return k == "user_id" ? kUserId : -1;
    case 9: return k == "device_id" ? kDeviceId : k == "timestamp" ? kTimestamp : -1;
    case 11: return k == "device_type" ? kDeviceType : k == "app_version" ? kAppVersion : -1;
    default: return -1;
  }
}

// RapidJSON 1.1.0 rejects an escaped high surrogate without its low half, but turns a lone
// escaped low surrogate ("\udc00") into the three bytes ED B0 80 — not UTF-8. Raw input bytes
// are validated, so ED followed by A0..BF in a decoded string can only come from such an escape.
bool hasEncodedSurrogate(const char* s, std::size_t n) noexcept {
  const char* end = s + n;
  const char* p = s;
  while (p < end) {
    const void* hit = std::memchr(p, 0xED, static_cast<std::size_t>(end - p));
    if (hit == nullptr) return false;
    p = static_cast<const char*>(hit);
    if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
    ++p;
  }
  return false;
}

struct FieldValue {
  JsonKind kind = JsonKind::kAbsent;
  std::uint32_t offset = 0;  // into the parse buffer (strings: decoded bytes; numbers: text)
  std::uint32_t length = 0;
};

class EventHandler {
 public:
  enum class Error : std::uint8_t { kNone, kLoneSurrogate, kNumberOutOfRange, kUnexpected };

  void reset(const char* base) noexcept {
    base_ = base;
    depth_ = 0;
    pending_ = -1;
    root_ = JsonKind::kAbsent;
    fields_.fill(FieldValue{});
    error_ = Error::kNone;
    error_offset_ = 0;
  }

  JsonKind root() const noexcept { return root_; }
  const FieldValue& field(Field f) const noexcept { return fields_[f]; }
  Error error() const noexcept { return error_; }
  std::size_t errorOffset() const noexcept { return error_offset_; }

  // ---- RapidJSON handler concept ----
  bool Null() { return value(JsonKind::kNull, nullptr, 0); }
  bool Bool(bool) { return value(JsonKind::kBool, nullptr, 0); }
  // kParseNumbersAsStringsFlag sends every number to RawNumber(); these are never called.
  bool Int(int) { return unexpected(); }
  bool Uint(unsigned) { return unexpected(); }
  bool Int64(std::int64_t) { return unexpected(); }
  bool Uint64(std::uint64_t) { return unexpected(); }
  bool Double(double) { return unexpected(); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    const std::string_view text(s, n);
    const bool needs_check = jsonNumberNeedsRangeCheck(text);
    if (needs_check && !jsonNumberInDoubleRange(text)) {
      error_ = Error::kNumberOutOfRange;
      error_offset_ = static_cast<std::size_t>(s - base_);
      return false;
    }
    const bool integer = !needs_check || text.find_first_of(".eE") == std::string_view::npos;
    return value(integer ? JsonKind::kInteger : JsonKind::kNonInteger, s, n);
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (hasEncodedSurrogate(s, n)) return loneSurrogate(s);
    return value(JsonKind::kString, s, n);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (hasEncodedSurrogate(s, n)) return loneSurrogate(s);
    if (depth_ == 1) pending_ = fieldOf(s, n);
    return true;
  }
  bool StartObject() {
    value(JsonKind::kObject, nullptr, 0);
    ++depth_;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    return true;
  }
  bool StartArray() {
    value(JsonKind::kArray, nullptr, 0);
    ++depth_;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return true;
  }

 private:
  // A value at depth 0 is the document; at depth 1 inside the root object, the value of the
  // member whose key came last (if it is one we keep). Deeper values are ignored.
  bool value(JsonKind kind, const char* s, std::size_t n) noexcept {
    if (depth_ == 1) {
      if (pending_ >= 0) {
        FieldValue& f = fields_[static_cast<std::size_t>(pending_)];
        f.kind = kind;
        f.offset = s == nullptr ? 0 : static_cast<std::uint32_t>(s - base_);
        f.length = static_cast<std::uint32_t>(n);
        pending_ = -1;
      }
    } else if (depth_ == 0) {
      root_ = kind;
    }
    return true;
  }
  bool loneSurrogate(const char* s) noexcept {
    error_ = Error::kLoneSurrogate;
    error_offset_ = static_cast<std::size_t>(s - base_) - 1;  // the opening quote
    return false;
  }
  bool unexpected() noexcept {
    error_ = Error::kUnexpected;
    return false;
  }

  const char* base_ = nullptr;
  std::uint32_t depth_ = 0;
  int pending_ = -1;
  JsonKind root_ = JsonKind::kAbsent;
  std::array<FieldValue, kFieldCount> fields_{};
  Error error_ = Error::kNone;
  std::size_t error_offset_ = 0;
};

std::string_view kindPhrase(JsonKind kind) noexcept {
  switch (kind) {
    case JsonKind::kArray: return "an array";
    case JsonKind::kString: return "a string";
    case JsonKind::kInteger:
    case JsonKind::kNonInteger: return "a number";
    case JsonKind::kBool: return "a boolean";
    case JsonKind::kNull: return "null";
    case JsonKind::kObject: return "an object";
    case JsonKind::kAbsent: break;
  }
  return "nothing";
}

// The text of the number starting at `offset` in the original value.
std::string_view numberAt(std::string_view value, std::size_t offset) noexcept {
  if (offset >= value.size()) return {};
  std::size_t end = offset;
  while (end < value.size()) {
    const char c = value[end];
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      break;
    }
    ++end;
  }
  return value.substr(offset, end - offset);
}

constexpr std::array<std::string_view, kDlqReasonCount> kDlqReasonNames = {
    "too_large",       "invalid_json",      "not_an_object",    "missing_user_id",
    "invalid_user_id", "missing_timestamp", "invalid_timestamp"};

constexpr std::array<std::string_view, kWarningCount> kWarningNames = {
    "invalid_device_id", "invalid_device_type", "invalid_app_version", "invalid_locale",
    "invalid_ip"};

}  // namespace

// ---- Transformer::Impl ---------------------------------------------------------------------

struct Transformer::Impl {
  Impl() {
    // Size the buffers and the reader's stack on a typical record, so that steady state does
    // not allocate from the very first real record.
    static constexpr std::string_view kWarmUp =
        R"({"user_id":"424cdd21-063a-43a7-b91b-7ca1a833afae","app_version":"2.3.0",)"
        R"("device_type":"android","ip":"199.172.111.135","locale":"RU",)"
        R"("device_id":"593-47-5928","timestamp":1694479551,"x":[[{"y":[1.5]}]]})";
    InputRecord warm;
    warm.value = kWarmUp.data();
    warm.value_len = kWarmUp.size();
    apply(warm, 1'700'000'000'000);
  }

  const Result& apply(const InputRecord& in, std::int64_t now_ms) noexcept;

 private:
  const Result& deadLetter(DlqReason reason) noexcept {
    result_.kind = Result::Kind::kDeadLetter;
    result_.reason = reason;
    result_.detail = detail_.view();
    return result_;
  }
  bool parse(std::string_view value) noexcept;
  const Result& checkAndWrite(std::int64_t now_ms) noexcept;
  std::string_view text(const FieldValue& f) const noexcept {
    return {input_base_ + f.offset, f.length};
  }

  Reader reader_;
  EventHandler handler_;
  Buffer input_;   // the value, copied and zero-padded, decoded in situ by the reader
  Buffer output_;  // the output JSON
  char* input_base_ = nullptr;
  Detail detail_;
  char locale_[3] = {};
  Result result_;
};

bool Transformer::Impl::parse(std::string_view value) noexcept {
  const auto load = [&] {
    input_base_ = input_.prepare(value.size() + kInputPadding);
    std::memcpy(input_base_, value.data(), value.size());
    std::memset(input_base_ + value.size(), 0, kInputPadding);
    input_.poisonAfter(value.size() + kInputPadding);
    handler_.reset(input_base_);
  };
  load();
  rapidjson::InsituStringStream stream(input_base_);
  rapidjson::ParseResult pr = reader_.Parse<kParseFlags>(stream, handler_);

  if (pr.Code() == rapidjson::kParseErrorNumberTooBig &&
      jsonNumberInDoubleRange(numberAt(value, pr.Offset()))) {
    // RapidJSON's estimate was wrong (e.g. "0e400"): parse again with every such number
    // rewritten to an equivalent it accepts (json_number.h). Rare, linear, at most once.
    load();
    neutraliseNumbers(input_base_, value.size());
    rapidjson::InsituStringStream again(input_base_);
    pr = reader_.Parse<kParseFlags>(again, handler_);
  }
  if (!pr.IsError()) return true;

  detail_ << "not valid JSON: ";
  std::size_t offset = pr.Offset();
  switch (pr.Code() == rapidjson::kParseErrorTermination ? handler_.error()
                                                         : EventHandler::Error::kNone) {
    case EventHandler::Error::kLoneSurrogate:
      detail_ << "lone UTF-16 surrogate escape in the string";
      offset = handler_.errorOffset();
      break;
    case EventHandler::Error::kNumberOutOfRange:
      detail_ << "number outside double range";
      offset = handler_.errorOffset();
      break;
    case EventHandler::Error::kUnexpected:
      detail_ << "internal parser error";
      break;
    case EventHandler::Error::kNone:
      detail_ << rapidjson::GetParseError_En(pr.Code());
      break;
  }
  detail_ << " at offset " << static_cast<std::uint64_t>(offset);
  return false;
}

const Result& Transformer::Impl::apply(const InputRecord& in, std::int64_t now_ms) noexcept {
  result_ = Result{};
  detail_.clear();

  if (in.value == nullptr) {
    result_.dlq_value_null = true;
    detail_ << "not valid JSON: the value is null (a tombstone)";
    return deadLetter(DlqReason::kInvalidJson);
  }
  const std::string_view value(in.value, in.value_len);
  result_.original_size = value.size();
  if (value.size() > kMaxValueBytes) {
    result_.dlq_value = value.substr(0, kTooLargeKeepBytes);
    detail_ << "value is " << static_cast<std::uint64_t>(value.size()) << " bytes, over the "
            << static_cast<std::uint64_t>(kMaxValueBytes) << "-byte limit";
    return deadLetter(DlqReason::kTooLarge);
  }
  result_.dlq_value = value;
  if (value.empty()) {
    detail_ << "not valid JSON: the value is empty";
    return deadLetter(DlqReason::kInvalidJson);
  }
  if (value.starts_with("\xEF\xBB\xBF")) {
    detail_ << "not valid JSON: starts with a UTF-8 byte-order mark";
    return deadLetter(DlqReason::kInvalidJson);
  }
  if (const void* nul = std::memchr(value.data(), '\0', value.size()); nul != nullptr) {
    detail_ << "not valid JSON: NUL byte at offset "
            << static_cast<std::uint64_t>(static_cast<const char*>(nul) - value.data());
    return deadLetter(DlqReason::kInvalidJson);
  }
  if (!parse(value)) return deadLetter(DlqReason::kInvalidJson);
  return checkAndWrite(now_ms);
}

const Result& Transformer::Impl::checkAndWrite(std::int64_t now_ms) noexcept {
  if (handler_.root() != JsonKind::kObject) {
    detail_ << "the JSON value is " << kindPhrase(handler_.root()) << ", not an object";
    return deadLetter(DlqReason::kNotAnObject);
  }

  // ---- required fields, in SPEC's precedence ----
  const FieldValue& uid = handler_.field(kUserId);
  if (uid.kind == JsonKind::kAbsent || uid.kind == JsonKind::kNull) {
    detail_ << "user_id is missing";
    return deadLetter(DlqReason::kMissingUserId);
  }
  if (uid.kind != JsonKind::kString) {
    detail_ << "user_id is not a string (it is " << kindPhrase(uid.kind) << ")";
    return deadLetter(DlqReason::kInvalidUserId);
  }
  if (uid.length == 0) {
    detail_ << "user_id is empty";
    return deadLetter(DlqReason::kInvalidUserId);
  }
  if (uid.length > kMaxUserIdBytes) {
    detail_ << "user_id is " << std::uint64_t{uid.length} << " bytes, longer than "
            << static_cast<std::uint64_t>(kMaxUserIdBytes);
    return deadLetter(DlqReason::kInvalidUserId);
  }

  const FieldValue& ts = handler_.field(kTimestamp);
  TimestampCheck check;
  switch (ts.kind) {
    case JsonKind::kAbsent:
    case JsonKind::kNull:
      detail_ << "timestamp is missing";
      return deadLetter(DlqReason::kMissingTimestamp);
    case JsonKind::kString: check = checkTimestampString(text(ts), now_ms); break;
    case JsonKind::kInteger: check = checkTimestampNumber(text(ts), true, now_ms); break;
    default: break;  // doubles, booleans, objects, arrays: kNotInteger
  }
  switch (check.status) {
    case TimestampCheck::Status::kOk: break;
    case TimestampCheck::Status::kNotInteger:
      detail_ << "timestamp is not an integer or a string of digits";
      return deadLetter(DlqReason::kInvalidTimestamp);
    case TimestampCheck::Status::kTooEarly:
      detail_ << "timestamp ";
      detail_.excerpt(text(ts)) << " is before 2000-01-01T00:00:00Z";
      return deadLetter(DlqReason::kInvalidTimestamp);
    case TimestampCheck::Status::kTooLate:
      detail_ << "timestamp ";
      detail_.excerpt(text(ts)) << " is more than 24 h in the future";
      return deadLetter(DlqReason::kInvalidTimestamp);
  }

  // ---- optional fields ----
  std::uint32_t warnings = 0;
  const auto present = [](const FieldValue& f) {
    return f.kind != JsonKind::kAbsent && f.kind != JsonKind::kNull;
  };

  std::string_view device_id;
  bool has_device_id = false;
  if (const FieldValue& f = handler_.field(kDeviceId); f.kind == JsonKind::kString) {
    device_id = text(f);
    has_device_id = true;
  } else if (present(f)) {
    warnings |= warningBit(Warning::kInvalidDeviceId);
  }

  std::string_view device_type;
  bool has_device_type = false;
  if (const FieldValue& f = handler_.field(kDeviceType); f.kind == JsonKind::kString) {
    device_type = trimAscii(text(f));
    if (!device_type.empty()) {
      // The view is into our own copy of the value: lower-case it there.
      char* p = input_base_ + (device_type.data() - input_base_);
      asciiLowerInPlace(p, device_type.size());
      has_device_type = true;
    }
  } else if (present(f)) {
    warnings |= warningBit(Warning::kInvalidDeviceType);
  }

  std::string_view app_version;
  if (const FieldValue& f = handler_.field(kAppVersion); f.kind == JsonKind::kString &&
                                                         isAppVersion(text(f))) {
    app_version = text(f);
  } else if (present(f)) {
    warnings |= warningBit(Warning::kInvalidAppVersion);
  }

  std::string_view locale;
  if (const FieldValue& f = handler_.field(kLocale); f.kind == JsonKind::kString) {
    const std::size_t n = normaliseLocale(text(f), locale_);
    if (n != 0) {
      locale = std::string_view(locale_, n);
    } else {
      warnings |= warningBit(Warning::kInvalidLocale);
    }
  } else if (present(f)) {
    warnings |= warningBit(Warning::kInvalidLocale);
  }

  std::string_view ip;
  if (const FieldValue& f = handler_.field(kIp); f.kind == JsonKind::kString &&
                                                 isIpAddress(text(f))) {
    ip = text(f);
  } else if (present(f)) {
    warnings |= warningBit(Warning::kInvalidIp);
  }

  // ---- the output JSON ----
  const std::string_view user_id = text(uid);
  constexpr std::size_t kFixedBytes = 640;  // names, punctuation, numbers, times, warnings
  const std::size_t need = kFixedBytes + jsonStringMaxBytes(user_id.size()) +
                           jsonStringMaxBytes(device_id.size()) +
                           jsonStringMaxBytes(device_type.size()) + app_version.size() +
                           ip.size();
  char* const begin = output_.prepare(need);
  char* out = begin;
  out = writeLiteral(out, R"({"user_id":)");
  out = writeJsonString(out, user_id.data(), user_id.size());
  out = writeLiteral(out, R"(,"device_id":)");
  out = has_device_id ? writeJsonString(out, device_id.data(), device_id.size())
                      : writeLiteral(out, "null");
  out = writeLiteral(out, R"(,"device_type":)");
  out = has_device_type ? writeJsonString(out, device_type.data(), device_type.size())
                        : writeLiteral(out, "null");
  out = writeLiteral(out, R"(,"app_version":)");
  out = app_version.empty() ? writeLiteral(out, "null")
                            : writePlainJsonString(out, app_version.data(), app_version.size());
  out = writeLiteral(out, R"(,"locale":)");
  out = locale.empty() ? writeLiteral(out, "null")
                       : writePlainJsonString(out, locale.data(), locale.size());
  out = writeLiteral(out, R"(,"ip":)");
  out = ip.empty() ? writeLiteral(out, "null") : writePlainJsonString(out, ip.data(), ip.size());
  out = writeLiteral(out, R"(,"timestamp":)");
  out = writeInt(out, check.ms / 1000);  // valid instants are positive: truncation = floor
  out = writeLiteral(out, R"(,"login_time":")");
  out = writeIsoUtc(out, check.ms, check.millis);
  out = writeLiteral(out, R"(","processed_at":")");
  out = writeIsoUtc(out, now_ms, true);
  out = writeLiteral(out, R"(","warnings":[)");
  bool first = true;
  for (std::size_t w = 0; w < kWarningCount; ++w) {
    if ((warnings & (1U << w)) == 0) continue;
    if (!first) *out++ = ',';
    first = false;
    *out++ = '"';
    out = writeLiteral(out, kWarningNames[w].data(), kWarningNames[w].size());
    *out++ = '"';
  }
  out = writeLiteral(out, "]}");

  result_.kind = Result::Kind::kOutput;
  result_.key = user_id;
  result_.value = std::string_view(begin, static_cast<std::size_t>(out - begin));
  result_.has_device_type = has_device_type;
  result_.device_type = device_type;
  result_.has_locale = !locale.empty();
  result_.locale = locale;
  result_.warnings = warnings;
  result_.dlq_value = {};
  return result_;
}

// ---- public API ----------------------------------------------------------------------------

Transformer::Transformer() : impl_(std::make_unique<Impl>()) {}
Transformer::~Transformer() = default;
Transformer::Transformer(Transformer&&) noexcept = default;
Transformer& Transformer::operator=(Transformer&&) noexcept = default;

const Result& Transformer::apply(const InputRecord& in, std::int64_t now_ms) noexcept {
  return impl_->apply(in, now_ms);
}

std::string_view dlqReasonName(DlqReason reason) noexcept {
  const auto i = static_cast<std::size_t>(reason);
  return i < kDlqReasonNames.size() ? kDlqReasonNames[i] : std::string_view("unknown");
}

std::string_view warningName(Warning warning) noexcept {
  const auto i = static_cast<std::size_t>(warning);
  return i < kWarningNames.size() ? kWarningNames[i] : std::string_view("unknown");
}

std::int64_t wallClockMs() noexcept {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace loginflow
