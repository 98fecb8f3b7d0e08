// The commands, and the Service that `run` and `demo` share: the control thread (a Boost.Asio
// io_context with the signals, the timers and the HTTP server) around a Pipeline.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "loginflow/config.h"
#include "loginflow/stats.h"

namespace loginflow {

// Everything after the program name; returns the exit status.
int loginflowMain(int argc, char** argv);

int runCommand(const std::vector<std::string>& args);
int demoCommand(const std::vector<std::string>& args);
int brokerCommand(const std::vector<std::string>& args);
int genCommand(const std::vector<std::string>& args);

class Service {
 public:
  // Builds the pipeline (UsageError for bad Kafka properties) and binds the HTTP endpoint
  // (std::runtime_error when the address cannot be bound).
  explicit Service(const RunConfig& config);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Connects, starts, runs the control loop until the pipeline has stopped (after SIGTERM,
  // SIGINT, requestStop() or a fatal error), and returns the exit status (0 or 1).
  // `on_tick` runs on the control thread once a second with the merged snapshot.
  int run(std::function<void(const StatsSnapshot&)> on_tick = {});

  // Thread-safe.
  void requestStop();
  std::uint16_t httpPort() const;
  const Stats& stats() const;
  // The latest insights JSON (control thread only).
  std::string insightsJson();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loginflow
