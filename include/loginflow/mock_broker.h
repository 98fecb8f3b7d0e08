// The embedded broker: librdkafka's mock cluster, a real Kafka-protocol server on 127.0.0.1
// (ephemeral ports) running in this process on librdkafka's threads. Serves `demo`, `broker`
// and the integration tests.
//
// Limits of the mock (librdkafka 2.0.2): each partition keeps only about 5 MiB / 100,000
// batches and trims older data; transactions are accepted but not honoured.
//
// Thread-safety: the fault-injection calls may come from any thread.
#pragma once

#include <librdkafka/rdkafka.h>
// clang-format off: rdkafka_mock.h must follow rdkafka.h
#include <librdkafka/rdkafka_mock.h>

#include <string>

#include "loginflow/kafka.h"

namespace loginflow {

class MockBroker {
 public:
  // Starts a cluster of `brokers` brokers. Throws std::runtime_error on failure.
  explicit MockBroker(int brokers = 1);
  ~MockBroker();
  MockBroker(const MockBroker&) = delete;
  MockBroker& operator=(const MockBroker&) = delete;

  // "127.0.0.1:PORT[,127.0.0.1:PORT…]"
  const std::string& bootstrap() const noexcept { return bootstrap_; }

  // Creates a topic; throws std::runtime_error on failure.
  void createTopic(const std::string& name, int partitions, int replication = 1);

  // The cluster, for fault injection (rd_kafka_mock_push_request_errors, broker_set_down…).
  rd_kafka_mock_cluster_t* cluster() const noexcept { return cluster_; }

 private:
  // Order matters: the cluster must be destroyed before the handle it was created from.
  kafka::HandlePtr handle_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

}  // namespace loginflow
