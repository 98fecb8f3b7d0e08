// A small HTTP/1.1 server for the operational endpoints (/metrics, /healthz, /readyz,
// /insights), built on Boost.Beast and run on the control thread's io_context.
//
// It is built to survive hostile clients without touching the pipeline's threads: a bounded
// number of connections (the next one is accepted and closed at once), a deadline on every
// read and write (slow or idle clients are dropped), header fields over 8 KiB in total
// (request line not counted) answered with 431, malformed requests with 400 (or the
// connection closed when it is not HTTP at all, i.e. when the first byte cannot start a
// request line), unknown paths and methods other than GET and HEAD with 404, a request body
// over 64 KiB with 413. Keep-alive and pipelining are supported; io_timeout bounds the whole
// of reading one request (from waiting for its first byte to its last, so an idle connection
// and a client that trickles bytes are both dropped) and the whole of writing one response.
// Handlers run on the io_context's thread and must not block; an exception from a handler is
// answered with 500, and nothing ever escapes into io_context::run().
//
// Thread-safety: construct, use and destroy on the io_context's thread; stop() may be
// posted from elsewhere with boost::asio::post.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace loginflow {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called with the request's path (query string removed). GET and HEAD only.
using HttpHandler = std::function<HttpResponse()>;

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 8080;                       // 0 = an ephemeral port
  std::size_t max_connections = 64;
  std::chrono::milliseconds io_timeout{10'000};    // per read / write
  // Header fields, request line not counted: the bytes of every field line including its
  // line end (CRLF), up to but not including the empty line that ends the header. Exactly
  // max_header_bytes passes; one byte more is answered with 431 and the connection closed.
  std::size_t max_header_bytes = std::size_t{8} * 1024;
  std::size_t max_request_line_bytes = std::size_t{16} * 1024;  // longer request lines: 400, then close
};

class HttpServer {
 public:
  // Binds and starts accepting. Throws std::system_error (with a message naming the address)
  // when the address cannot be bound.
  HttpServer(boost::asio::io_context& io, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers the handler for an exact path ("/metrics"). Call before requests arrive.
  void route(std::string path, HttpHandler handler);

  // The port actually bound (useful with port 0).
  std::uint16_t port() const noexcept;

  // Stops accepting and closes every connection. Idempotent.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace loginflow
