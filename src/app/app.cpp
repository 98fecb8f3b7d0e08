// The Service: the control thread around a Pipeline (see include/loginflow/app.h), and `run`.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "loginflow/app.h"
#include "loginflow/http_server.h"
#include "loginflow/insights.h"
#include "loginflow/metrics.h"
#include "loginflow/pipeline.h"
#include "loginflow/transform.h"

namespace loginflow {

struct Service::Impl {
  explicit Impl(const RunConfig& c)
      : cfg(c),
        stats(c.workers),
        metrics(LOGINFLOW_VERSION),
        insights(c.instance_id, wallClockMs()),
        signals(io, SIGINT, SIGTERM),
        tick(io),
        insights_timer(io) {
    pipeline = std::make_unique<Pipeline>(cfg, stats);
    HttpServerOptions o;
    o.address = cfg.http_address;
    o.port = cfg.http_port;
    http = std::make_unique<HttpServer>(io, o);
    http->route("/metrics", [this] {
      return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics.serialize()};
    });
    http->route("/healthz", [this] {
      std::string why;
      if (pipeline->healthy(&why)) return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
      return HttpResponse{503, "text/plain; charset=utf-8", "unhealthy: " + why + "\n"};
    });
    http->route("/readyz", [this] {
      if (pipeline->ready()) return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
      return HttpResponse{503, "text/plain; charset=utf-8", "not ready: not (yet) a member of the consumer group, or stopping\n"};
    });
    http->route("/insights", [this] {
      return HttpResponse{200, "application/json", insights.latest(stats.snapshot(), wallClockMs()) + "\n"};
    });
  }

  void armSignals() {
    signals.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (++signals_seen == 1) {
        spdlog::info("received {}, stopping gracefully (within {} ms); send it again to exit at once",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.shutdown_timeout.count());
        pipeline->requestStop();
        armSignals();
      } else {
        spdlog::warn("second signal: exiting at once; records not committed will be processed again on restart");
        spdlog::default_logger()->flush();
        std::_Exit(1);
      }
    });
  }

  void armTick() {
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      StatsSnapshot snap = stats.snapshot();
      metrics.update(snap);
      if (on_tick) on_tick(snap);
      armTick();
    });
  }

  void armInsights() {
    insights_timer.expires_after(cfg.insights_interval);
    insights_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::string json = insights.roll(stats.snapshot(), wallClockMs());
      spdlog::info("insights {}", json);
      pipeline->publishInsights(insights.instance(), json);
      armInsights();
    });
  }

  RunConfig cfg;
  Stats stats;
  MetricsExporter metrics;
  Insights insights;
  // The io_context outlives everything that uses it (declared before them).
  boost::asio::io_context io;
  boost::asio::signal_set signals;
  boost::asio::steady_timer tick;
  boost::asio::steady_timer insights_timer;
  std::unique_ptr<HttpServer> http;
  // The pipeline is destroyed (its threads joined) before the HTTP server and the io_context.
  std::unique_ptr<Pipeline> pipeline;
  std::function<void(const StatsSnapshot&)> on_tick;
  int signals_seen = 0;
};

Service::Service(const RunConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Service::~Service() = default;

int Service::run(std::function<void(const StatsSnapshot&)> on_tick) {
  Impl& s = *impl_;
  s.on_tick = std::move(on_tick);
  s.armSignals();
  s.pipeline->connect();
  s.pipeline->start([&s] { boost::asio::post(s.io, [&s] { s.io.stop(); }); });
  s.armTick();
  s.armInsights();
  s.io.run();
  int code = s.pipeline->join();
  StatsSnapshot last = s.stats.snapshot();
  s.metrics.update(last);
  spdlog::info("final insights {}", s.insights.roll(last, wallClockMs()));
  s.http->stop();
  s.signals.cancel();
  return code;
}

void Service::requestStop() { impl_->pipeline->requestStop(); }
std::uint16_t Service::httpPort() const { return impl_->http->port(); }
const Stats& Service::stats() const { return impl_->stats; }
std::string Service::insightsJson() { return impl_->insights.latest(impl_->stats.snapshot(), wallClockMs()); }

int runCommand(const std::vector<std::string>& args) {
  RunConfig cfg = parseRunArgs(args, processEnvironment());
  setupLogging(cfg.log_level, cfg.log_format);
  Service service(cfg);  // validates the Kafka properties (exit 2) before anything is logged
  spdlog::info("loginflow {} starting: brokers {}, group {}, {} → {} (dead letters → {}), http {}:{}", LOGINFLOW_VERSION,
               cfg.brokers, cfg.group_id, cfg.input_topic, cfg.output_topic, cfg.dlq_topic, cfg.http_address,
               service.httpPort());
  const int code = service.run();
  if (code != 0) {
    // An incomplete stop (brokers gone, say): destroying the Kafka clients would wait for the
    // brokers again, without a time limit, past --shutdown-timeout. What was not committed is
    // processed again on restart, so exit now without running the destructors.
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(code);
  }
  return code;
}

}  // namespace loginflow
