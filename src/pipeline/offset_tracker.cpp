#include "loginflow/offset_tracker.h"

namespace loginflow {

void OffsetTracker::assign(std::int32_t partition) {
  if (parts_.count(partition)) return;
  Partition p;
  p.generation = next_generation_++;
  p.ring.resize(64);
  parts_.emplace(partition, std::move(p));
}

void OffsetTracker::revoke(std::int32_t partition) {
  auto it = parts_.find(partition);
  if (it == parts_.end()) return;
  in_flight_ -= static_cast<std::size_t>(it->second.tail_seq - it->second.head_seq);
  parts_.erase(it);
}

bool OffsetTracker::resumeAt(std::int32_t partition, std::int64_t next_offset) {
  auto it = parts_.find(partition);
  if (it == parts_.end() || it->second.tail_seq != 0 || next_offset < 0) return false;
  it->second.last_offset = next_offset - 1;
  it->second.committable = next_offset;
  return true;
}

bool OffsetTracker::assigned(std::int32_t partition) const { return parts_.count(partition) != 0; }

std::optional<OffsetTracker::Handle> OffsetTracker::track(std::int32_t partition, std::int64_t offset) {
  auto it = parts_.find(partition);
  if (it == parts_.end()) return std::nullopt;
  Partition& p = it->second;
  if (offset <= p.last_offset) return std::nullopt;
  std::uint64_t size = p.tail_seq - p.head_seq;
  if (size == p.ring.size()) {
    // Grow: copy the outstanding entries into a ring twice the size, same seq numbering.
    std::vector<Entry> bigger(p.ring.size() * 2);
    const std::uint64_t old_mask = p.ring.size() - 1, new_mask = bigger.size() - 1;
    for (std::uint64_t s = p.head_seq; s != p.tail_seq; ++s) bigger[s & new_mask] = p.ring[s & old_mask];
    p.ring.swap(bigger);
  }
  const std::uint64_t seq = p.tail_seq++;
  p.ring[seq & (p.ring.size() - 1)] = Entry{offset, false};
  p.last_offset = offset;
  ++in_flight_;
  return Handle{partition, p.generation, seq};
}

bool OffsetTracker::done(const Handle& h) {
  auto it = parts_.find(h.partition);
  if (it == parts_.end()) return false;
  Partition& p = it->second;
  if (p.generation != h.generation || h.seq < p.head_seq || h.seq >= p.tail_seq) return false;
  const std::uint64_t mask = p.ring.size() - 1;
  Entry& e = p.ring[h.seq & mask];
  if (e.done) return false;
  e.done = true;
  while (p.head_seq != p.tail_seq && p.ring[p.head_seq & mask].done) {
    p.committable = p.ring[p.head_seq & mask].offset + 1;
    ++p.head_seq;
    --in_flight_;
  }
  return true;
}

std::int64_t OffsetTracker::committable(std::int32_t partition) const {
  auto it = parts_.find(partition);
  return it == parts_.end() ? -1 : it->second.committable;
}

void OffsetTracker::markCommitted(std::int32_t partition, std::int64_t offset) {
  auto it = parts_.find(partition);
  if (it != parts_.end() && offset > it->second.committed) it->second.committed = offset;
}

std::int64_t OffsetTracker::committed(std::int32_t partition) const {
  auto it = parts_.find(partition);
  return it == parts_.end() ? -1 : it->second.committed;
}

std::vector<std::pair<std::int32_t, std::int64_t>> OffsetTracker::pendingCommits() const {
  std::vector<std::pair<std::int32_t, std::int64_t>> out;
  for (const auto& [id, p] : parts_)
    if (p.committable > p.committed) out.emplace_back(id, p.committable);
  return out;
}

std::size_t OffsetTracker::inFlight(std::int32_t partition) const {
  auto it = parts_.find(partition);
  return it == parts_.end() ? 0 : static_cast<std::size_t>(it->second.tail_seq - it->second.head_seq);
}

std::vector<std::int32_t> OffsetTracker::partitions() const {
  std::vector<std::int32_t> out;
  out.reserve(parts_.size());
  for (const auto& [id, p] : parts_) out.push_back(id);
  return out;
}

}  // namespace loginflow
