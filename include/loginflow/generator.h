// A generator of realistic user-login events, like the data generator users of the original
// Python consumer know: UUID user ids, android/iOS devices (about 5% without device_type),
// two-letter US-state locales, IPv4 and some IPv6 addresses, app versions, SSN-like device
// ids, timestamps mostly as integer seconds and sometimes as digit strings or milliseconds.
// With a chosen probability an event is malformed, cycling through every dead-letter kind.
//
// Deterministic: the same seed and base time give the same sequence.
// Thread-safety: not thread-safe; one generator per thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "loginflow/transform.h"

namespace loginflow {

struct GeneratedEvent {
  std::string key;    // the user_id (empty with key_null)
  bool key_null = false;
  std::string value;
  bool value_null = false;
  bool bad = false;                     // malformed: expected to become a dead letter
  DlqReason expected_reason = DlqReason::kInvalidJson;  // when bad
};

class EventGenerator {
 public:
  // `base_time_s`: the instant events are stamped around (seconds since the epoch).
  // `users`: the number of distinct user ids (keys repeat, as in real traffic).
  EventGenerator(std::uint64_t seed, double bad_fraction, std::int64_t base_time_s,
                 std::size_t users = 10'000, bool include_too_large = true);

  void next(GeneratedEvent& out);

 private:
  void good(GeneratedEvent& out);
  void bad(GeneratedEvent& out);
  std::mt19937_64 rng_;
  double bad_fraction_;
  std::int64_t base_time_s_;
  std::vector<std::string> users_;
  bool include_too_large_;
  std::uint64_t bad_count_ = 0;
};

}  // namespace loginflow
