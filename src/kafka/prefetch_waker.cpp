#include "loginflow/prefetch_waker.h"

#include "loginflow/kafka.h"

namespace loginflow::kafka {

PrefetchWaker::Limits PrefetchWaker::limitsOf(rd_kafka_t* consumer) {
  Limits l;
  l.bytes = 1024.0 * static_cast<double>(intProperty(consumer, "queued.max.messages.kbytes", 65536));
  l.messages = static_cast<double>(intProperty(consumer, "queued.min.messages", 100000));
  return l;
}

bool PrefetchWaker::shouldWake(std::size_t queue_length, Clock::time_point now) {
  const double len = static_cast<double>(queue_length);
  const double bytes = len * avg_bytes_;
  // Near a limit: the fetcher has stopped, or is about to.
  if (bytes >= 0.75 * limits_.bytes || len >= 0.75 * limits_.messages) {
    was_full_ = true;
    return false;
  }
  if (!was_full_ || bytes > 0.5 * limits_.bytes || len > 0.5 * limits_.messages) return false;
  if (now - last_wake_ < min_interval_) return false;
  last_wake_ = now;
  was_full_ = false;
  return true;
}

bool PrefetchWaker::wake(rd_kafka_t* consumer, std::chrono::milliseconds timeout) {
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR || !assigned) return false;
  PartitionListPtr list(assigned);
  if (list->cnt == 0) return false;
  for (int i = 0; i < list->cnt; ++i) list->elems[i].offset = RD_KAFKA_OFFSET_END;  // timestamp -1: the end
  // The answer does not matter (a timeout included): sending the requests is what wakes.
  rd_kafka_offsets_for_times(consumer, list.get(), static_cast<int>(timeout.count()));
  return true;
}

bool PrefetchWaker::poll(rd_kafka_t* consumer, rd_kafka_queue_t* queue) {
  if (!shouldWake(rd_kafka_queue_length(queue), Clock::now())) return false;
  if (!wake(consumer, min_interval_)) return false;
  ++wakes_;
  return true;
}

}  // namespace loginflow::kafka
