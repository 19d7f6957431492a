// The compress service's compressdev engine (compressdev.hpp). Every piece of DPDK state is
// made at start: the device is configured with one queue pair per engine that names it
// (every worker's instance of every chain entry), each engine gets an op pool, an mbuf pool
// for destination (and staging and verification) buffers and private xforms: one xform
// shared by all ops where the device says so (RTE_COMP_FF_SHAREABLE_PRIV_XFORM), otherwise
// one per op in flight, as the compressdev API asks. The last engine to go stops and closes
// the device.

#include "compressdev.hpp"

#include <rte_comp.h>
#include <rte_compressdev.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace segx::services {
namespace {

/// A device's private xforms for one level, when the device lets ops share them.
struct SharedXforms {
  int level;
  void* compress = nullptr;
  void* decompress = nullptr;
};

/// What an engine closed with ops still on the device leaves behind: freed only once the
/// device is stopped, so the device never writes into freed memory.
struct Leftover {
  rte_mempool* ops = nullptr;
  rte_mempool* mbufs = nullptr;
  std::vector<void*> xforms;
};

/// A compressdev in use by this process's engines.
struct Device {
  uint8_t id = 0;
  uint16_t queue_pairs = 0;
  uint16_t next_qp = 0;
  unsigned users = 0;
  bool shareable = false;
  bool sgl_in = false;
  uint8_t window = 15;
  rte_comp_huffman huffman = RTE_COMP_HUFFMAN_DEFAULT;
  std::vector<SharedXforms> shared;
  std::vector<Leftover> leftovers;
};

// Engines are opened and closed by the main lcore at start and shutdown only; the lock keeps
// that honest and is never taken per packet. Recursive: an engine that fails half-way
// through open() is destroyed with the lock held.
std::recursive_mutex registry_mutex;
std::map<std::string, Device, std::less<>> registry;

std::string errno_text(int rc) {
  return std::string(rte_strerror(rc < 0 ? -rc : rc));
}

// The compressdevs there are. Ids are given out from 0 as EAL probes devices and segx never
// detaches one, so they are 0 to count - 1 (rte_compressdev_name_get does not check an id).
std::string device_list() {
  std::string names;
  for (unsigned id = 0; id < rte_compressdev_count(); ++id) {
    const char* name = rte_compressdev_name_get(static_cast<uint8_t>(id));
    if (name == nullptr) continue;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  return names.empty() ? "none" : names;
}

rte_comp_xform compress_xform(const Device& d, int level) {
  rte_comp_xform x{};
  x.type = RTE_COMP_COMPRESS;
  x.compress.algo = RTE_COMP_ALGO_DEFLATE;
  x.compress.deflate.huffman = d.huffman;
  x.compress.level = level;
  x.compress.window_size = d.window;
  x.compress.chksum = RTE_COMP_CHECKSUM_NONE;
  x.compress.hash_algo = RTE_COMP_HASH_ALGO_NONE;
  return x;
}

rte_comp_xform decompress_xform(const Device& d) {
  rte_comp_xform x{};
  x.type = RTE_COMP_DECOMPRESS;
  x.decompress.algo = RTE_COMP_ALGO_DEFLATE;
  x.decompress.chksum = RTE_COMP_CHECKSUM_NONE;
  x.decompress.window_size = d.window;
  x.decompress.hash_algo = RTE_COMP_HASH_ALGO_NONE;
  return x;
}

Result<void*> make_xform(const Device& d, const rte_comp_xform& x, const std::string& name) {
  rte_comp_xform copy = x;
  void* handle = nullptr;
  const int rc = rte_compressdev_private_xform_create(d.id, &copy, &handle);
  if (rc < 0 || handle == nullptr) {
    return Error{"compressdev '" + name + "': cannot create a " +
                 (x.type == RTE_COMP_COMPRESS ? std::string("DEFLATE compression")
                                              : std::string("DEFLATE decompression")) +
                 " transform: " + errno_text(rc)};
  }
  return handle;
}

// Finds the device, checks it does stateless DEFLATE, configures it with `queue_pairs`
// queue pairs and starts it.
Result<Device> start_device(const std::string& name, uint16_t queue_pairs) {
  const int id = rte_compressdev_get_dev_id(name.c_str());
  if (id < 0) {
    return Error{"no compressdev named '" + name + "' (compressdevs: " + device_list() +
                 "); a software PMD is a vdev in eal.vdevs (compress_zlib0, compress_isal0), a "
                 "hardware one appears when its PCI device is in eal.pci_allow"};
  }
  Device d;
  d.id = static_cast<uint8_t>(id);
  rte_compressdev_info info{};
  rte_compressdev_info_get(d.id, &info);
  const std::string driver = info.driver_name ? info.driver_name : "?";
  const rte_compressdev_capabilities* cap =
      rte_compressdev_capability_get(d.id, RTE_COMP_ALGO_DEFLATE);
  if (cap == nullptr) {
    return Error{"compressdev '" + name + "' (driver " + driver + ") does not offer DEFLATE"};
  }
  // Stateless is every compressdev's baseline; what a device may lack is a Huffman mode.
  const uint64_t ff = cap->comp_feature_flags;
  if (!(ff & (RTE_COMP_FF_HUFFMAN_DYNAMIC | RTE_COMP_FF_HUFFMAN_FIXED))) {
    return Error{"compressdev '" + name + "' (driver " + driver +
                 ") offers neither dynamic nor fixed Huffman DEFLATE"};
  }
  d.huffman =
      (ff & RTE_COMP_FF_HUFFMAN_DYNAMIC) ? RTE_COMP_HUFFMAN_DYNAMIC : RTE_COMP_HUFFMAN_FIXED;
  d.window = cap->window_size.max;  // 15 (32 KiB) on every PMD of DPDK 22.11
  d.shareable = (ff & RTE_COMP_FF_SHAREABLE_PRIV_XFORM) != 0;
  d.sgl_in = (ff & RTE_COMP_FF_OOP_SGL_IN_LB_OUT) != 0;
  d.queue_pairs = queue_pairs;
  if (info.max_nb_queue_pairs != 0 && info.max_nb_queue_pairs < queue_pairs) {
    return Error{"compressdev '" + name + "' has " + std::to_string(info.max_nb_queue_pairs) +
                 " queue pairs; " + std::to_string(queue_pairs) +
                 " are needed (one per worker lcore and compress entry using it)"};
  }
  int socket = rte_compressdev_socket_id(d.id);
  if (socket < 0) socket = SOCKET_ID_ANY;
  rte_compressdev_config conf{};
  conf.socket_id = socket;
  conf.nb_queue_pairs = queue_pairs;
  // Shared: a compress and a decompress xform per level; own: one per op in flight.
  const uint32_t xforms = d.shareable ? 2u * queue_pairs : 2u * compressdev_depth * queue_pairs;
  conf.max_nb_priv_xforms = static_cast<uint16_t>(std::min<uint32_t>(xforms, UINT16_MAX));
  conf.max_nb_streams = 0;
  if (int rc = rte_compressdev_configure(d.id, &conf); rc < 0)
    return Error{"compressdev '" + name + "': configure failed: " + errno_text(rc)};
  for (uint16_t qp = 0; qp < queue_pairs; ++qp) {
    if (int rc = rte_compressdev_queue_pair_setup(d.id, qp, compressdev_depth, socket); rc < 0) {
      rte_compressdev_close(d.id);
      return Error{"compressdev '" + name + "': queue pair " + std::to_string(qp) +
                   " setup failed: " + errno_text(rc)};
    }
  }
  if (int rc = rte_compressdev_start(d.id); rc < 0) {
    rte_compressdev_close(d.id);
    return Error{"compressdev '" + name + "': start failed: " + errno_text(rc)};
  }
  return d;
}

// Stops and closes the device once nobody uses it, and frees what was kept for that.
void stop_device(Device& d) {
  rte_compressdev_stop(d.id);
  // Private xforms live in the PMD's memory, which close frees: free them first.
  for (SharedXforms& s : d.shared) {
    if (s.compress) rte_compressdev_private_xform_free(d.id, s.compress);
    if (s.decompress) rte_compressdev_private_xform_free(d.id, s.decompress);
  }
  for (Leftover& l : d.leftovers) {
    for (void* x : l.xforms)
      rte_compressdev_private_xform_free(d.id, x);
  }
  rte_compressdev_close(d.id);
  for (Leftover& l : d.leftovers) {
    rte_mempool_free(l.ops);
    rte_mempool_free(l.mbufs);
  }
}

/// The op's slot in its burst, kept in the op's user area.
uint32_t& slot_of(rte_comp_op* op) {
  return *reinterpret_cast<uint32_t*>(op + 1);
}

}  // namespace

std::string CompressdevEngine::op_pool_name(uint8_t dev, uint16_t qp) {
  return "segx_cdop_" + std::to_string(dev) + "_" + std::to_string(qp);
}

std::string CompressdevEngine::mbuf_pool_name(uint8_t dev, uint16_t qp) {
  return "segx_cdmb_" + std::to_string(dev) + "_" + std::to_string(qp);
}

Result<std::unique_ptr<CompressdevEngine>> CompressdevEngine::open(const Setup& setup) {
  std::lock_guard lock(registry_mutex);
  auto it = registry.find(setup.device);
  if (it == registry.end()) {
    auto started = start_device(setup.device, std::max<uint16_t>(setup.queue_pairs, 1));
    if (!started) return Error{started.error()};
    it = registry.emplace(setup.device, std::move(started).value()).first;
  }
  Device& d = it->second;
  if (d.next_qp >= d.queue_pairs) {
    return Error{"compressdev '" + setup.device + "': all " + std::to_string(d.queue_pairs) +
                 " queue pairs are taken (the device was configured for that many users)"};
  }
  std::unique_ptr<CompressdevEngine> e(new CompressdevEngine());
  e->dev_ = d.id;
  e->qp_ = d.next_qp++;
  e->sgl_in_ = d.sgl_in;
  e->verify_ = setup.verify;
  e->timeout_tsc_ = rte_get_timer_hz() * compressdev_timeout_ms / 1000;
  ++d.users;  // from here on, ~CompressdevEngine undoes whatever was set up

  if (d.shareable) {
    auto s = std::find_if(d.shared.begin(), d.shared.end(),
                          [&](const SharedXforms& x) { return x.level == setup.level; });
    if (s == d.shared.end()) {
      d.shared.push_back(SharedXforms{setup.level});
      s = d.shared.end() - 1;
    }
    if (s->compress == nullptr) {
      auto x = make_xform(d, compress_xform(d, setup.level), setup.device);
      if (!x) return Error{x.error()};
      s->compress = x.value();
    }
    if (setup.verify && s->decompress == nullptr) {
      auto x = make_xform(d, decompress_xform(d), setup.device);
      if (!x) return Error{x.error()};
      s->decompress = x.value();
    }
    std::fill(std::begin(e->compress_xform_), std::end(e->compress_xform_), s->compress);
    std::fill(std::begin(e->decompress_xform_), std::end(e->decompress_xform_), s->decompress);
  } else {
    e->own_xforms_ = true;
    for (uint16_t i = 0; i < compressdev_depth; ++i) {
      auto x = make_xform(d, compress_xform(d, setup.level), setup.device);
      if (!x) return Error{x.error()};
      e->compress_xform_[i] = x.value();
      if (!setup.verify) continue;
      auto y = make_xform(d, decompress_xform(d), setup.device);
      if (!y) return Error{y.error()};
      e->decompress_xform_[i] = y.value();
    }
  }

  int socket = rte_compressdev_socket_id(d.id);
  if (socket < 0) socket = SOCKET_ID_ANY;
  // One op per payload in flight; verification reuses the op that compressed.
  e->op_pool_ = rte_comp_op_pool_create(op_pool_name(e->dev_, e->qp_).c_str(), compressdev_depth, 0,
                                        sizeof(uint32_t), socket);
  if (e->op_pool_ == nullptr) {
    return Error{"compressdev '" + setup.device +
                 "': cannot create an op pool: " + errno_text(rte_errno)};
  }
  // A destination per op; a second buffer per op for verification, or to copy a payload
  // spread over chained mbufs for a device that reads only flat sources. Each buffer holds
  // the largest payload (the headroom is not used: data_off is 0).
  const bool second = setup.verify || !d.sgl_in;
  e->mbuf_pool_ =
      rte_pktmbuf_pool_create(mbuf_pool_name(e->dev_, e->qp_).c_str(),
                              compressdev_depth * (second ? 2u : 1u), 0, 0, UINT16_MAX, socket);
  if (e->mbuf_pool_ == nullptr) {
    return Error{"compressdev '" + setup.device + "': cannot create a buffer pool of " +
                 std::to_string(compressdev_depth * (second ? 2u : 1u)) +
                 " 64 KiB mbufs: " + errno_text(rte_errno) + " (raise eal.memory?)"};
  }
  return e;
}

CompressdevEngine::~CompressdevEngine() {
  // Ops still on the device after a timeout: give them a last chance to come back.
  const uint64_t deadline = rte_get_timer_cycles() + rte_get_timer_hz();
  while (outstanding_ > 0 && rte_get_timer_cycles() < deadline) {
    reap();
    if (outstanding_ > 0) rte_pause();
  }
  std::lock_guard lock(registry_mutex);
  auto it = std::find_if(registry.begin(), registry.end(),
                         [&](const auto& kv) { return kv.second.id == dev_; });
  if (it == registry.end()) return;
  Device& d = it->second;
  Leftover mine;
  if (own_xforms_) {
    for (void* x : compress_xform_)
      if (x) mine.xforms.push_back(x);
    for (void* x : decompress_xform_)
      if (x) mine.xforms.push_back(x);
  }
  if (outstanding_ == 0) {
    for (void* x : mine.xforms)
      rte_compressdev_private_xform_free(dev_, x);
    mine.xforms.clear();
    rte_mempool_free(op_pool_);
    rte_mempool_free(mbuf_pool_);
  } else {
    mine.ops = op_pool_;
    mine.mbufs = mbuf_pool_;
    d.leftovers.push_back(std::move(mine));
  }
  if (--d.users == 0) {
    stop_device(d);
    registry.erase(it);
  }
}

void CompressdevEngine::run(rte_mbuf* const* pkts, uint16_t n, CompressTotals& t) {
  if (outstanding_ > 0) reap();
  uint16_t i = 0;
  while (i < n) {
    uint16_t k = 0;
    for (; i < n && k < compressdev_depth; ++i) {
      const Range r = payload_range(pkts[i]);
      if (r.length == 0) continue;
      ++t.packets;
      t.in_bytes += r.length;
      if (r.length < 2 || outstanding_ > 0) {
        // One byte cannot shrink; with ops stuck on the device nothing more is sent to it.
        ++t.incompressible;
        t.out_bytes += r.length;
        t.errors += outstanding_ > 0;
        continue;
      }
      slots_[k++] = Slot{pkts[i], r};
    }
    if (k > 0) compress(k, t);
  }
}

// Room for a payload's output: DEFLATE's worst case (stored or fixed-Huffman blocks, at
// most 9 bits a byte, and a dynamic header), at most a whole buffer. A smaller destination
// would end incompressible payloads by "out of space" instead, which some PMDs (ISA-L) log
// at error level: a log line per packet. The buffer is at least the largest payload, so an
// output that does not fit would not have shrunk either.
namespace {
uint32_t output_room(uint32_t len) {
  return std::min<uint32_t>(len + len / 8 + 512, UINT16_MAX);
}
}  // namespace

// Compresses slots_[0..k), each into one destination mbuf.
void CompressdevEngine::compress(uint16_t k, CompressTotals& t) {
  const auto fail_all = [&] {
    for (uint16_t s = 0; s < k; ++s) {
      ++t.incompressible;
      ++t.errors;
      t.out_bytes += slots_[s].range.length;
    }
  };
  if (rte_comp_op_bulk_alloc(op_pool_, ops_, k) == 0) return fail_all();
  if (rte_pktmbuf_alloc_bulk(mbuf_pool_, mbufs_, k) != 0) {
    rte_comp_op_bulk_free(ops_, k);
    return fail_all();
  }
  uint16_t ready = 0;
  for (uint16_t s = 0; s < k; ++s) {
    const Slot& slot = slots_[s];
    const uint32_t len = slot.range.length;
    rte_mbuf* src = slot.pkt;
    uint32_t offset = slot.range.offset;
    if (!sgl_in_ && offset + len > rte_pktmbuf_data_len(src)) {
      // The device reads flat sources only: copy the payload out of the chain.
      rte_mbuf* flat = rte_pktmbuf_alloc(mbuf_pool_);
      if (flat == nullptr) {
        rte_pktmbuf_free(mbufs_[s]);
        rte_comp_op_free(ops_[s]);
        ++t.incompressible;
        ++t.errors;
        t.out_bytes += len;
        continue;
      }
      flat->data_off = 0;
      uint8_t* to = rte_pktmbuf_mtod(flat, uint8_t*);
      const void* from = rte_pktmbuf_read(slot.pkt, offset, len, to);
      if (from != to) std::memcpy(to, from, len);
      flat->data_len = static_cast<uint16_t>(len);
      flat->pkt_len = len;
      src = flat;
      offset = 0;
    }
    rte_mbuf* dst = mbufs_[s];
    dst->data_off = 0;
    dst->data_len = static_cast<uint16_t>(output_room(len));
    dst->pkt_len = output_room(len);
    rte_comp_op* op = ops_[s];
    op->op_type = RTE_COMP_OP_STATELESS;
    op->private_xform = compress_xform_[ready];
    op->m_src = src;
    op->m_dst = dst;
    op->src.offset = offset;
    op->src.length = len;
    op->dst.offset = 0;
    op->flush_flag = RTE_COMP_FLUSH_FINAL;
    op->status = RTE_COMP_OP_STATUS_NOT_PROCESSED;
    slot_of(op) = s;
    ops_[ready++] = op;
  }
  const uint16_t got = exchange(ops_, ready);
  if (got < ready) hold_packets(ready, got);
  uint16_t v = 0;
  for (uint16_t j = 0; j < got; ++j) {
    rte_comp_op* op = done_[j];
    const uint32_t len = slots_[slot_of(op)].range.length;
    if (op->m_src->pool == mbuf_pool_) rte_pktmbuf_free(op->m_src);  // a flat copy, done with
    op->m_src = nullptr;
    const bool ok = op->status == RTE_COMP_OP_STATUS_SUCCESS;
    if (ok && op->produced < len) {
      t.out_bytes += op->produced;
      if (tap_)
        tap_(tap_ctx_, slots_[slot_of(op)].pkt, slots_[slot_of(op)].range, op->m_dst, op->produced);
      if (verify_) {
        ops_[v++] = op;  // kept, with its output, for verification
        continue;
      }
    } else {
      ++t.incompressible;
      t.out_bytes += len;
      t.errors += !ok && op->status != RTE_COMP_OP_STATUS_OUT_OF_SPACE_TERMINATED &&
                  op->status != RTE_COMP_OP_STATUS_OUT_OF_SPACE_RECOVERABLE;
    }
    release(op);
  }
  if (v > 0) verify(v, t);
}

// Decompresses the outputs of ops_[0..v) (each op is reused) and compares with the payloads.
void CompressdevEngine::verify(uint16_t v, CompressTotals& t) {
  if (rte_pktmbuf_alloc_bulk(mbuf_pool_, mbufs_, v) != 0) {
    for (uint16_t j = 0; j < v; ++j) {
      ++t.errors;
      release(ops_[j]);
    }
    return;
  }
  for (uint16_t j = 0; j < v; ++j) {
    rte_comp_op* op = ops_[j];
    const uint32_t len = slots_[slot_of(op)].range.length;
    rte_mbuf* compressed = op->m_dst;
    compressed->data_len = static_cast<uint16_t>(op->produced);
    compressed->pkt_len = op->produced;
    rte_mbuf* back = mbufs_[j];
    back->data_off = 0;
    back->data_len = static_cast<uint16_t>(len);  // more than the payload would not fit
    back->pkt_len = len;
    op->private_xform = decompress_xform_[j];
    op->m_src = compressed;
    op->m_dst = back;
    op->src.offset = 0;
    op->src.length = op->produced;
    op->dst.offset = 0;
    op->flush_flag = RTE_COMP_FLUSH_FINAL;
    op->consumed = 0;
    op->produced = 0;
    op->status = RTE_COMP_OP_STATUS_NOT_PROCESSED;
  }
  const uint16_t got = exchange(ops_, v);
  for (uint16_t j = 0; j < got; ++j) {
    rte_comp_op* op = done_[j];
    const Slot& slot = slots_[slot_of(op)];
    if (op->status == RTE_COMP_OP_STATUS_NOT_PROCESSED) {
      ++t.errors;  // never reached the device
    } else if (op->status != RTE_COMP_OP_STATUS_SUCCESS || op->produced != slot.range.length ||
               !same_bytes(op->m_dst, slot)) {
      ++t.verify_failed;
    }
    release(op);
  }
}

// Enqueues ops[0..k) and polls until they are all back in done_, or the timeout passed.
// Returns how many are in done_: those the device returned, then those it never took
// (status still NOT_PROCESSED). The rest stay on the device, counted in outstanding_.
uint16_t CompressdevEngine::exchange(rte_comp_op** ops, uint16_t k) {
  uint16_t enqueued = 0, dequeued = 0;
  uint64_t deadline = 0;
  while (dequeued < k) {
    if (enqueued < k)
      enqueued += rte_compressdev_enqueue_burst(dev_, qp_, ops + enqueued, k - enqueued);
    if (enqueued > dequeued) {
      dequeued += rte_compressdev_dequeue_burst(dev_, qp_, done_ + dequeued,
                                                static_cast<uint16_t>(enqueued - dequeued));
    }
    if (dequeued == k) break;
    const uint64_t now = rte_get_timer_cycles();
    if (deadline == 0) {
      deadline = now + timeout_tsc_;
    } else if (now > deadline) {
      break;
    }
    rte_pause();
  }
  outstanding_ += enqueued - dequeued;
  uint16_t got = dequeued;
  for (uint16_t j = enqueued; j < k; ++j) {
    ops[j]->status = RTE_COMP_OP_STATUS_NOT_PROCESSED;
    done_[got++] = ops[j];
  }
  return got;
}

// The device kept some of ops_[0..ready) past the timeout: those reading a packet take a
// reference to each of its segments, so that the packet, sent on and freed meanwhile, stays
// valid until the op comes back (reap() drops the reference).
void CompressdevEngine::hold_packets(uint16_t ready, uint16_t got) {
  bool back[compressdev_depth] = {};
  for (uint16_t j = 0; j < got; ++j)
    back[slot_of(done_[j])] = true;
  for (uint16_t j = 0; j < ready; ++j) {
    rte_comp_op* op = ops_[j];
    if (back[slot_of(op)] || op->m_src->pool == mbuf_pool_) continue;
    for (rte_mbuf* seg = op->m_src; seg != nullptr; seg = seg->next)
      rte_mbuf_refcnt_update(seg, 1);
  }
}

// Returns an op and the mbufs it still refers to to their pools: the engine's own, or a
// packet the op held a reference to (a compress op that came back late). A compress op
// that came back in time has its source cleared first: the packet is the data plane's.
void CompressdevEngine::release(rte_comp_op* op) {
  if (op->m_src != nullptr) rte_pktmbuf_free(op->m_src);
  if (op->m_dst != nullptr) rte_pktmbuf_free(op->m_dst);
  rte_comp_op_free(op);
}

// Frees ops that came back after their burst timed out; their payloads were counted then.
void CompressdevEngine::reap() {
  rte_comp_op* late[compressdev_depth];
  const uint16_t n = rte_compressdev_dequeue_burst(
      dev_, qp_, late, static_cast<uint16_t>(std::min<uint32_t>(outstanding_, compressdev_depth)));
  for (uint16_t j = 0; j < n; ++j)
    release(late[j]);
  outstanding_ -= n;
}

bool CompressdevEngine::same_bytes(const rte_mbuf* out, const Slot& s) const {
  const uint8_t* back = rte_pktmbuf_mtod(out, const uint8_t*);
  bool same = true;
  for_each_chunk(s.pkt, s.range, [&](const uint8_t* bytes, uint32_t n) {
    same = same && std::memcmp(back, bytes, n) == 0;
    back += n;
  });
  return same;
}

}  // namespace segx::services
