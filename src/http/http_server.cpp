#include "loginflow/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
// Asio's scheduler trips GCC 12's -Wnull-dereference once inlined (a known false positive of
// that flow-sensitive warning); it is not our code to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#pragma GCC diagnostic pop
#include <map>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "header_scanner.h"
#include "loginflow/logging.h"

namespace loginflow {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

// A GET or HEAD carries no meaningful body; one is read (so that keep-alive stays in step)
// up to this size, and a larger one is answered with 413.
constexpr std::size_t kMaxBodyBytes = std::size_t{64} * 1024;
// How long, at most, a connection closed after an error response keeps draining what the
// client still sends, so that closing does not reset the connection before the client has
// read the response.
constexpr std::chrono::milliseconds kMaxLinger{2000};
constexpr std::size_t kMaxLingerBytes = std::size_t{1024} * 1024;
// Back-off after an accept error such as EMFILE, so that the loop does not spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

const beast::error_category& httpErrorCategory() {
  static const beast::error_category& category =
      http::make_error_code(http::error::bad_method).category();
  return category;
}

// "/metrics?x=1" → "/metrics"; an absolute-form target ("http://host/metrics") → its path.
std::string_view requestPath(std::string_view target) {
  const std::size_t scheme = target.find("://");
  if (!target.empty() && target.front() != '/' && scheme != std::string_view::npos) {
    const std::size_t slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  const std::size_t end = target.find_first_of("?#");
  return end == std::string_view::npos ? target : target.substr(0, end);
}

// An IMF-fixdate for the Date header (RFC 9110 §6.6.1: a server with a clock sends one).
std::string httpDate() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  // Names spelled out rather than strftime's %a/%b, which follow the process locale.
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr",
                                                          "May", "Jun", "Jul", "Aug",
                                                          "Sep", "Oct", "Nov", "Dec"};
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                              kDays.at(static_cast<std::size_t>(tm.tm_wday)), tm.tm_mday,
                              kMonths.at(static_cast<std::size_t>(tm.tm_mon)), tm.tm_year + 1900,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
  return std::string(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
}

std::string renderResponse(int status, std::string_view content_type, std::string_view body,
                           bool include_body, bool keep_alive) {
  const auto reason_view = http::obsolete_reason(static_cast<http::status>(status));
  const std::string_view reason(reason_view.data(), reason_view.size());
  std::string out;
  out.reserve(160 + (include_body ? body.size() : 0));
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason;
  out += "\r\nDate: ";
  out += httpDate();
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nCache-Control: no-store\r\nConnection: ";
  out += keep_alive ? "keep-alive" : "close";
  out += "\r\n\r\n";
  if (include_body) out += body;
  return out;
}

}  // namespace

namespace http_detail {

class Session;

// What the server and its connections share. HttpServer::Impl is this (a private nested name
// that the sessions cannot spell).
struct ServerCore : std::enable_shared_from_this<ServerCore> {
  ServerCore(asio::io_context& io_context, HttpServerOptions opts)
      : io(io_context), options(std::move(opts)), acceptor(io_context), retry_timer(io_context) {}

  void accept();
  void onAccept(const beast::error_code& ec, tcp::socket socket);
  void stop() noexcept;

  asio::io_context& io;
  const HttpServerOptions options;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  std::uint16_t port = 0;
  bool stopped = false;
  std::map<std::string, HttpHandler, std::less<>> routes;
  // Live connections. A Session registers itself when it starts and leaves in its destructor;
  // the weak_ptr lets stop() reach it without keeping it alive.
  std::unordered_map<const Session*, std::weak_ptr<Session>> sessions;
  RateLimitedLog accept_error_log;
};

// One connection: reads requests one after another (keep-alive, pipelining), answers each,
// and closes on error, on timeout, on "Connection: close", or when the server stops.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<ServerCore> server, tcp::socket socket)
      : server_(std::move(server)),
        stream_(std::move(socket)),
        buffer_(server_->options.max_request_line_bytes + server_->options.max_header_bytes +
                kMaxBodyBytes + 64),
        scanner_(server_->options.max_request_line_bytes, server_->options.max_header_bytes) {}

  ~Session() { server_->sessions.erase(this); }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    server_->sessions.emplace(this, weak_from_this());
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    startRequest();
  }

  // Closes the connection at once; pending operations complete with operation_aborted.
  void close() noexcept {
    closed_ = true;
    try {
      stream_.close();
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more can be done on close
    }
  }

 private:
  // Every completion handler runs through here: nothing escapes into io_context::run().
  template <typename F>
  void guarded(F&& f) noexcept {
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::debug("http: connection dropped after an internal error: {}", e.what());
      close();
    } catch (...) {
      close();
    }
  }

  std::string_view buffered() const {
    const auto data = buffer_.cdata();
    return {static_cast<const char*>(data.data()), data.size()};
  }

  void startRequest() {
    if (closed_) return;
    // One deadline for the whole request, from waiting for its first byte to its last: an
    // idle keep-alive connection and a client that dribbles bytes (slowloris) are both
    // dropped after io_timeout.
    stream_.expires_after(server_->options.io_timeout);
    // RFC 9112 §2.2: ignore empty lines before a request line.
    std::string_view data = buffered();
    std::size_t skip = 0;
    while (skip < data.size() && (data[skip] == '\r' || data[skip] == '\n')) ++skip;
    buffer_.consume(skip);
    scanner_.reset();
    parser_.emplace();
    // Our scanner has enforced the real limits by the time Beast parses; Beast's limit (request
    // line + fields + line ends) only needs to let those through.
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_request_line_bytes +
                                                     server_->options.max_header_bytes + 8));
    parser_->body_limit(kMaxBodyBytes);
    scanHeader();
  }

  void scanHeader() {
    switch (scanner_.scan(buffered())) {
      case http_detail::HeaderScanner::Result::kNeedMore:
        readMore();
        return;
      case http_detail::HeaderScanner::Result::kComplete:
        readMessage();
        return;
      case http_detail::HeaderScanner::Result::kNotHttp:
        close();
        return;
      case http_detail::HeaderScanner::Result::kRequestLineTooLong:
        respondError(400, "request line too long\n");  // SPEC: malformed requests get 400
        return;
      case http_detail::HeaderScanner::Result::kFieldsTooLarge:
        respondError(431, "request header fields too large\n");
        return;
    }
  }

  void readMore() {
    const std::size_t room = buffer_.max_size() - buffer_.size();
    if (room == 0) {  // cannot happen while the scanner's limits are below the buffer's size
      respondError(431, "request header fields too large\n");
      return;
    }
    stream_.async_read_some(buffer_.prepare(std::min<std::size_t>(room, 4096)),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->guarded([&] {
                                if (ec) {
                                  self->close();  // EOF, reset, timeout, stop()
                                  return;
                                }
                                self->buffer_.commit(n);
                                self->scanHeader();
                              });
                            });
  }

  void readMessage() {
    // The header is already in the buffer; async_read parses it and reads a body if any.
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->guarded([&] { self->onMessage(ec); });
                     });
  }

  void onMessage(const beast::error_code& ec) {
    if (ec == http::error::body_limit) {
      respondError(413, "request body too large\n");
      return;
    }
    if (ec == http::error::header_limit) {
      respondError(431, "request header fields too large\n");
      return;
    }
    if (ec && ec.category() == httpErrorCategory() && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      respondError(400, "bad request\n");
      return;
    }
    if (ec) {
      close();  // EOF mid-body, reset, timeout, stop()
      return;
    }
    const auto& request = parser_->get();
    const bool head = request.method() == http::verb::head;
    const bool keep_alive = request.keep_alive();
    HttpResponse response;
    response.status = 404;
    response.body = "not found\n";
    if (head || request.method() == http::verb::get) {
      const std::string_view target(request.target().data(), request.target().size());
      const auto route = server_->routes.find(requestPath(target));
      if (route != server_->routes.end()) response = callHandler(route->second);
    }
    respond(response.status, response.content_type, response.body, !head, keep_alive);
  }

  static HttpResponse callHandler(const HttpHandler& handler) {
    try {
      return handler();
    } catch (const std::exception& e) {
      spdlog::warn("http: handler failed: {}", e.what());
    } catch (...) {
      spdlog::warn("http: handler failed");
    }
    HttpResponse failed;
    failed.status = 500;
    failed.body = "internal error\n";
    return failed;
  }

  void respondError(int status, std::string_view body) {
    respond(status, "text/plain; charset=utf-8", body, true, false);
  }

  void respond(int status, std::string_view content_type, std::string_view body,
               bool include_body, bool keep_alive) {
    if (closed_) return;
    keep_alive = keep_alive && !server_->stopped;
    response_ = renderResponse(status, content_type, body, include_body, keep_alive);
    stream_.expires_after(server_->options.io_timeout);
    asio::async_write(stream_, asio::buffer(response_),
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->guarded([&] {
                          if (ec) {
                            self->close();
                            return;
                          }
                          if (keep_alive) {
                            self->startRequest();
                          } else {
                            self->lingeringClose();
                          }
                        });
                      });
  }

  // Half-close, then read and discard until the client closes too (bounded in time and
  // bytes): closing a socket with unread input sends a reset, which can destroy the response
  // before the client has read it (e.g. a 431 sent while the client is still sending).
  void lingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      close();
      return;
    }
    buffer_.consume(buffer_.size());
    stream_.expires_after(std::min<std::chrono::milliseconds>(server_->options.io_timeout,
                                                              kMaxLinger));
    drain();
  }

  void drain() {
    if (closed_) return;
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->guarded([&] {
                                self->drained_ += n;
                                if (ec || self->drained_ > kMaxLingerBytes) {
                                  self->close();
                                  return;
                                }
                                self->drain();
                              });
                            });
  }

  std::shared_ptr<ServerCore> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http_detail::HeaderScanner scanner_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string response_;  // alive until its write completes
  std::size_t drained_ = 0;
  bool closed_ = false;
};

void ServerCore::accept() {
  if (stopped) return;
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    try {
      self->onAccept(ec, std::move(socket));
    } catch (const std::exception& e) {
      spdlog::warn("http: accept failed: {}", e.what());
      self->accept();
    } catch (...) {
      self->accept();
    }
  });
}

void ServerCore::onAccept(const beast::error_code& ec, tcp::socket socket) {
  if (stopped) return;
  if (ec) {
    std::uint64_t suppressed = 0;
    if (accept_error_log.shouldLog(suppressed)) {
      spdlog::warn("http: accept failed: {} suppressed={}", ec.message(), suppressed);
    }
    // Out of descriptors or buffers: wait a little rather than spin.
    retry_timer.expires_after(kAcceptRetryDelay);
    retry_timer.async_wait([self = shared_from_this()](beast::error_code timer_ec) {
      if (!timer_ec) self->accept();
    });
    return;
  }
  if (sessions.size() >= options.max_connections) {
    beast::error_code ignored;
    socket.close(ignored);  // over the cap: closed at once
  } else {
    std::make_shared<Session>(shared_from_this(), std::move(socket))->start();
  }
  accept();
}

void ServerCore::stop() noexcept {
  stopped = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  try {
    retry_timer.cancel();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a timer that cannot be cancelled just fires
  }
  // Closing may destroy a session (and erase it from the map) only later, from its handlers;
  // copy first all the same.
  std::vector<std::shared_ptr<Session>> live;
  live.reserve(sessions.size());
  for (auto& [ptr, weak] : sessions) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->close();
}

}  // namespace http_detail

struct HttpServer::Impl : http_detail::ServerCore {
  using ServerCore::ServerCore;
};

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {
  const std::string where =
      impl_->options.address + ":" + std::to_string(impl_->options.port);
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) throw std::system_error(ec, "invalid HTTP address '" + impl_->options.address + "'");
  const tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  const auto check = [&where](const beast::error_code& error) {
    if (error) throw std::system_error(error, "cannot listen for HTTP on " + where);
  };
  acceptor.open(endpoint.protocol(), ec);
  check(ec);
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  check(ec);
  acceptor.bind(endpoint, ec);
  check(ec);
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  check(ec);
  impl_->port = acceptor.local_endpoint(ec).port();
  check(ec);
  impl_->accept();
}

HttpServer::~HttpServer() { impl_->stop(); }

void HttpServer::route(std::string path, HttpHandler handler) {
  impl_->routes.insert_or_assign(std::move(path), std::move(handler));
}

std::uint16_t HttpServer::port() const noexcept { return impl_->port; }

void HttpServer::stop() { impl_->stop(); }

}  // namespace loginflow
