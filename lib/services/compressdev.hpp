#pragma once
// Internal: the `compress` service's DPDK compressdev engine. Each service instance (one per
// worker lcore and chain entry) owns one queue pair of a compressdev, private xforms, an op
// pool and a pool of destination mbufs, all set up at start; the device itself (configure,
// start, stop, close) is shared by every instance naming it. Per packet it only gets and puts
// mempool objects and enqueues and dequeues ops: no allocation, lock or exception.

#include <rte_mbuf.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "payload.hpp"

struct rte_comp_op;
struct rte_mempool;

namespace segx::services {

/// What compressing a segment's payloads came to: the counts of the `compress` result.
struct CompressTotals {
  uint64_t in_bytes;        ///< payload bytes
  uint64_t out_bytes;       ///< bytes after compression, each payload at most its own size
  uint32_t packets;         ///< packets with a payload
  uint32_t incompressible;  ///< payloads that did not shrink (counted at their own size)
  uint32_t verify_failed;   ///< outputs that did not decompress to their input
  uint32_t errors;          ///< payloads the device failed on or never returned (compressdev)
};

/// Ops one queue pair has in flight at most: the data plane's burst.
inline constexpr uint16_t compressdev_depth = 32;

/// The largest L4 payload an IP packet can carry (IPv6: 65535 bytes of payload length, less
/// an 8-byte UDP header); destination buffers hold this much, so no payload is too large.
inline constexpr uint32_t compressdev_max_payload = 65535;

/// How long a burst may wait for the device to return its ops before the worker gives up
/// on them (they are reaped when they come back; meanwhile payloads count as errors).
inline constexpr uint32_t compressdev_timeout_ms = 10;

/// One queue pair of a compressdev doing stateless DEFLATE (raw, no zlib or gzip wrapper).
class CompressdevEngine {
 public:
  struct Setup {
    std::string device;        ///< compressdev name: a vdev (compress_zlib0) or a PMD's name
    int level = 6;             ///< DEFLATE level, 1 (fastest) to 9 (smallest)
    bool verify = false;       ///< decompress each compressed output and compare
    uint16_t queue_pairs = 1;  ///< queue pairs to configure when the device is first opened
  };

  /// Takes the next free queue pair of the device, configuring and starting the device on
  /// first use with setup.queue_pairs queue pairs. Fails with a message naming the device:
  /// no compressdev of that name (the ones there are listed), no stateless DEFLATE, fewer
  /// queue pairs than needed, all queue pairs taken, or a setup call's errno.
  static Result<std::unique_ptr<CompressdevEngine>> open(const Setup& setup);
  ~CompressdevEngine();
  CompressdevEngine(const CompressdevEngine&) = delete;
  CompressdevEngine& operator=(const CompressdevEngine&) = delete;

  /// Compresses the payload of each packet on its own and adds what it came to to `t`.
  /// Packets are only read. Returns when every op came back or the timeout passed.
  void run(rte_mbuf* const* pkts, uint16_t n, CompressTotals& t);

  uint8_t device_id() const { return dev_; }
  uint16_t queue_pair() const { return qp_; }
  /// Ops handed to the device that have not come back (non-zero only after a timeout).
  uint32_t outstanding() const { return outstanding_; }
  /// A look at each compressed output: the packet, its payload range and the output (its
  /// first `produced` bytes), before verification, which a test may provoke by changing it.
  using Tap = void (*)(void* ctx, const rte_mbuf* pkt, Range payload, rte_mbuf* out,
                       uint32_t produced);
  /// Sets the tap (tests only; null, the default, calls nothing).
  void set_tap(Tap tap, void* ctx) {
    tap_ = tap;
    tap_ctx_ = ctx;
  }
  /// Names of this queue pair's op pool and mbuf pool (tests look them up).
  static std::string op_pool_name(uint8_t dev, uint16_t qp);
  static std::string mbuf_pool_name(uint8_t dev, uint16_t qp);

 private:
  struct Slot {
    rte_mbuf* pkt;
    Range range;
  };
  CompressdevEngine() = default;
  void compress(uint16_t k, CompressTotals& t);
  void verify(uint16_t v, CompressTotals& t);
  uint16_t exchange(rte_comp_op** ops, uint16_t k);
  void hold_packets(uint16_t ready, uint16_t got);
  void release(rte_comp_op* op);
  void reap();
  bool same_bytes(const rte_mbuf* out, const Slot& s) const;

  uint8_t dev_ = 0;
  uint16_t qp_ = 0;
  bool sgl_in_ = false;  // the device reads chained source mbufs
  bool verify_ = false;
  uint64_t timeout_tsc_ = 0;
  uint32_t outstanding_ = 0;
  Tap tap_ = nullptr;
  void* tap_ctx_ = nullptr;
  rte_mempool* op_pool_ = nullptr;
  rte_mempool* mbuf_pool_ = nullptr;
  // Shared xforms belong to the device; own ones (non-shareable devices) to this engine.
  void* compress_xform_[compressdev_depth] = {};
  void* decompress_xform_[compressdev_depth] = {};
  bool own_xforms_ = false;
  Slot slots_[compressdev_depth] = {};
  rte_comp_op* ops_[compressdev_depth] = {};
  rte_comp_op* done_[compressdev_depth] = {};
  rte_mbuf* mbufs_[compressdev_depth] = {};
};

}  // namespace segx::services
