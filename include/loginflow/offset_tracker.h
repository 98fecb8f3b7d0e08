// Per-partition tracking of in-flight offsets, for committing only what is safe.
//
// Workers finish the records of one partition in any order; the committable offset of a
// partition only moves to (the highest offset below which every tracked record is done) + 1.
// A partition's state is tagged with a generation: after revoke() (or a re-assign), handles
// from the old generation are refused, so a late delivery report for a revoked partition can
// never move its commit point.
//
// Thread-safety: none; the poller thread owns it. No allocation once its rings have grown to
// the in-flight maximum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace loginflow {

class OffsetTracker {
 public:
  struct Handle {
    std::int32_t partition = -1;
    std::uint32_t generation = 0;
    std::uint64_t seq = 0;
  };

  // Starts tracking a partition (a new generation). Idempotent for a partition already tracked.
  void assign(std::int32_t partition);
  // Forgets a partition; its outstanding handles are refused from now on.
  void revoke(std::int32_t partition);
  bool assigned(std::int32_t partition) const;
  // For a partition just assigned with nothing tracked yet: every record below `next_offset` is
  // known to be done (output by this member before it lost the partition), so next_offset is
  // committable, and tracking continues above it. False when the partition is not assigned or
  // already has records tracked.
  bool resumeAt(std::int32_t partition, std::int64_t next_offset);

  // Registers an offset, which must be above every offset tracked before for the partition.
  // nullopt when the partition is not assigned or the offset goes backwards.
  std::optional<Handle> track(std::int32_t partition, std::int64_t offset);

  // Marks a record done. False when the handle is stale (partition revoked or re-assigned)
  // or already done.
  bool done(const Handle& h);

  // The offset to commit (the next offset to consume), or -1 when nothing has completed yet.
  std::int64_t committable(std::int32_t partition) const;
  // Records that `offset` has been committed for the partition.
  void markCommitted(std::int32_t partition, std::int64_t offset);
  std::int64_t committed(std::int32_t partition) const;

  // (partition, committable) for every partition whose committable offset is ahead of its
  // committed one.
  std::vector<std::pair<std::int32_t, std::int64_t>> pendingCommits() const;

  std::size_t inFlight(std::int32_t partition) const;
  std::size_t inFlight() const noexcept { return in_flight_; }
  std::vector<std::int32_t> partitions() const;

 private:
  struct Entry {
    std::int64_t offset;
    bool done;
  };
  struct Partition {
    std::uint32_t generation = 0;
    std::vector<Entry> ring;  // capacity a power of two
    std::uint64_t head_seq = 0;  // seq of the oldest outstanding entry
    std::uint64_t tail_seq = 0;  // seq the next tracked entry gets
    std::int64_t last_offset = -1;
    std::int64_t committable = -1;
    std::int64_t committed = -1;
  };
  std::unordered_map<std::int32_t, Partition> parts_;
  std::uint32_t next_generation_ = 1;
  std::size_t in_flight_ = 0;
};

}  // namespace loginflow
