// Keeps librdkafka 2.0's fetcher going while a backlog is drained.
//
// librdkafka stops fetching once the consumer queue holds queued.max.messages.kbytes (or
// queued.min.messages records) and looks again only when the partition leader's broker thread
// next wakes up: on its 1 s timer, or when it has a request to send. An application that
// drains the queue faster than that waits for the rest of every second (librdkafka#2879;
// fetch.queue.backoff.ms, added after 2.0, makes the wait configurable). On the embedded broker
// that capped loginflow at about one queue's worth of records per second (16 MiB, ~68,000 events).
//
// The waker watches the queue's length. Once it has been near a limit and has drained to half
// of it, wake() sends each leader of the assigned partitions one small request (ListOffsets for
// the end offsets: rd_kafka_offsets_for_times groups the partitions by leader), which makes its
// broker thread decide again, and fetch. At most once per `min_interval`.
//
// Thread-safety: none; the thread that consumes from the queue owns it.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstddef>

namespace loginflow::kafka {

class PrefetchWaker {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    double bytes = 64.0 * 1024 * 1024;  // queued.max.messages.kbytes × 1024
    double messages = 100'000;          // queued.min.messages
  };

  explicit PrefetchWaker(Limits limits, std::chrono::milliseconds min_interval = std::chrono::milliseconds(50))
      : limits_(limits), min_interval_(min_interval) {}

  // The limits a consumer was configured with (librdkafka's defaults where unset).
  static Limits limitsOf(rd_kafka_t* consumer);

  // Feeds the running average of a record's size (its payload, which is what librdkafka counts).
  void noteRecord(std::size_t payload_bytes) {
    avg_bytes_ += (static_cast<double>(payload_bytes) - avg_bytes_) / 1024.0;
  }

  // True when the fetcher should be woken now, given the queue's length.
  bool shouldWake(std::size_t queue_length, Clock::time_point now);

  // Sends the leaders of the consumer's assigned partitions a ListOffsets request; waits for the
  // answers at most `timeout`. Returns false when there was nothing assigned.
  static bool wake(rd_kafka_t* consumer, std::chrono::milliseconds timeout);

  // shouldWake() on the queue's length now, then wake() when it says so. True when it woke.
  bool poll(rd_kafka_t* consumer, rd_kafka_queue_t* queue);

  std::size_t wakes() const noexcept { return wakes_; }

 private:
  Limits limits_;
  std::chrono::milliseconds min_interval_;
  double avg_bytes_ = 256;
  bool was_full_ = false;
  Clock::time_point last_wake_{};
  std::size_t wakes_ = 0;
};

}  // namespace loginflow::kafka
