#include "process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace loginflow::metrics_detail {

namespace {

// The boot time (seconds since the epoch) from /proc/stat's "btime" line; 0 when unknown.
double bootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double btime = 0;
      in >> btime;
      return btime;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

double countOpenFds() {
  std::error_code ec;
  double n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  // The iterator's own descriptor is counted too, as the Go client does.
  return n;
}

}  // namespace

std::optional<ProcessSample> readProcessSample() try {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat;
  if (!std::getline(stat_file, stat)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces or ')': the fields that
  // follow start after the LAST ')'.
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 1));
  // Field 3 (state) is the first one after ')'; utime and stime are fields 14 and 15,
  // starttime is 22 (all in clock ticks).
  std::string field;
  double utime = 0;
  double stime = 0;
  double starttime = 0;
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index == 14) utime = std::stod(field);
    if (index == 15) stime = std::stod(field);
    if (index == 22) starttime = std::stod(field);
  }
  if (!fields) return std::nullopt;

  std::ifstream statm("/proc/self/statm");
  double size_pages = 0;
  double resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return std::nullopt;

  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  if (ticks <= 0 || page <= 0) return std::nullopt;

  ProcessSample s;
  s.cpu_seconds = (utime + stime) / static_cast<double>(ticks);
  s.resident_memory_bytes = resident_pages * static_cast<double>(page);
  s.virtual_memory_bytes = size_pages * static_cast<double>(page);
  const double boot = bootTimeSeconds();
  s.start_time_seconds = boot > 0 ? boot + starttime / static_cast<double>(ticks) : 0;
  s.open_fds = countOpenFds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    s.max_fds = static_cast<double>(limit.rlim_cur);
  }
  return s;
} catch (const std::exception&) {
  // A /proc field that does not parse (std::stod): no sample this time.
  return std::nullopt;
}

}  // namespace loginflow::metrics_detail
