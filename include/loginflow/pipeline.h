// The pipeline: one poller thread owning the consumer, N worker threads fed through bounded
// lock-free single-producer/single-consumer queues, one shared idempotent producer, and a
// delivery thread serving its reports. At-least-once: an input offset is committed only after
// the output or dead letter of it, and of every earlier offset of its partition, has been
// acknowledged (see docs/ARCHITECTURE.md).
//
// Lifecycle (control thread): construct → connect() → start() → … requestStop() (any thread)
// → on_finished runs (on the poller thread) → join() returns the exit status.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "loginflow/config.h"
#include "loginflow/stats.h"

namespace loginflow {

class Pipeline {
 public:
  // Builds the Kafka clients. Throws UsageError when librdkafka rejects a property (exit 2),
  // std::runtime_error when a client cannot be created.
  Pipeline(const RunConfig& config, Stats& stats);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Waits until the brokers answer, at most config.connect_timeout. Throws
  // std::runtime_error naming the brokers and the error when they do not.
  void connect();

  // Subscribes and starts the threads. `on_finished` is called once, from the poller thread,
  // when the pipeline has stopped (after a requestStop() or a fatal error).
  void start(std::function<void()> on_finished);

  // Starts the graceful stop: stop fetching, finish in-flight records, commit, leave the
  // group, flush. Thread-safe, idempotent.
  void requestStop() noexcept;

  // Joins every thread; 0 when everything consumed was acknowledged and committed,
  // 1 when the shutdown timeout passed first or a fatal error stopped the pipeline.
  int join();

  // /healthz: the poller, every worker and the delivery thread made progress or were
  // idle-waiting in the last 10 s. `why` names the first one that did not.
  bool healthy(std::string* why) const;
  // /readyz: connected and a member of the group, and not stopping.
  bool ready() const;

  // Publishes one insights snapshot to the insights topic (best effort; never blocks).
  void publishInsights(const std::string& key, const std::string& value);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loginflow
