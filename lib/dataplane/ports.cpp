#include "dataplane/ports.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <string>

namespace segx::dataplane {
namespace {

std::string errstr(int ret) {
  return rte_strerror(ret < 0 ? -ret : ret);
}

}  // namespace

Result<uint16_t> configure_port(const config::PortConfig& port, rte_mempool* pool) {
  const std::string what = "port '" + port.name + "' (" + port.device + "): ";
  uint16_t id = 0;
  if (rte_eth_dev_get_port_by_name(port.device.c_str(), &id) != 0) {
    return Error{what +
                 "no such DPDK device; a vdev must be in eal.vdevs, a PCI device in "
                 "eal.pci_allow and bound to vfio-pci (dpdk-devbind.py --status)"};
  }
  rte_eth_dev_info info{};
  if (int ret = rte_eth_dev_info_get(id, &info); ret != 0) {
    return Error{what + "cannot read device information: " + errstr(ret)};
  }
  if (port.rx_queues > info.max_rx_queues) {
    return Error{what + std::to_string(port.rx_queues) + " rx queues requested, the device has " +
                 std::to_string(info.max_rx_queues)};
  }
  if (port.tx_queues > info.max_tx_queues) {
    return Error{what + std::to_string(port.tx_queues) + " tx queues requested, the device has " +
                 std::to_string(info.max_tx_queues)};
  }
  if (port.mtu < info.min_mtu || port.mtu > info.max_mtu) {
    return Error{what + "MTU " + std::to_string(port.mtu) + " is outside the device's range " +
                 std::to_string(info.min_mtu) + ".." + std::to_string(info.max_mtu)};
  }

  rte_eth_conf conf{};
  conf.rxmode.mtu = port.mtu;
  // Frames longer than one mbuf need scattered receive into chained mbufs.
  const uint32_t frame = port.mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 2 * RTE_VLAN_HLEN;
  const uint32_t room = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
  if (frame > room) {
    if (!(info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)) {
      return Error{what + "MTU " + std::to_string(port.mtu) + " needs frames of " +
                   std::to_string(frame) + " bytes, more than one mbuf holds (" +
                   std::to_string(room) +
                   "), and the device cannot scatter; raise "
                   "pipeline.mempool.data_room"};
    }
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
  }
  // Several rx queues: RSS spreads flows over them. The key repeats 0x6d5a, which makes
  // Toeplitz hashing symmetric, so both directions of a flow land on the same queue (and
  // later on the same flow table).
  uint8_t rss_key[64];
  if (port.rx_queues > 1 && info.flow_type_rss_offloads != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_SCTP) &
        info.flow_type_rss_offloads;
    const uint8_t key_len =
        info.hash_key_size > 0 && info.hash_key_size <= sizeof rss_key ? info.hash_key_size : 40;
    for (uint8_t i = 0; i < key_len; ++i)
      rss_key[i] = i % 2 == 0 ? 0x6d : 0x5a;
    conf.rx_adv_conf.rss_conf.rss_key = rss_key;
    conf.rx_adv_conf.rss_conf.rss_key_len = key_len;
  }
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  }
  if (int ret = rte_eth_dev_configure(id, port.rx_queues, port.tx_queues, &conf); ret != 0) {
    return Error{what + "configure failed: " + errstr(ret)};
  }
  uint16_t rx_desc = port.rx_descriptors, tx_desc = port.tx_descriptors;
  if (int ret = rte_eth_dev_adjust_nb_rx_tx_desc(id, &rx_desc, &tx_desc); ret != 0) {
    return Error{what + "descriptor counts refused: " + errstr(ret)};
  }
  int socket = rte_eth_dev_socket_id(id);
  if (socket < 0) socket = 0;
  for (uint16_t q = 0; q < port.rx_queues; ++q) {
    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.offloads = conf.rxmode.offloads;
    if (int ret =
            rte_eth_rx_queue_setup(id, q, rx_desc, static_cast<unsigned>(socket), &rxconf, pool);
        ret != 0) {
      return Error{what + "rx queue " + std::to_string(q) + " setup failed: " + errstr(ret)};
    }
  }
  for (uint16_t q = 0; q < port.tx_queues; ++q) {
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    if (int ret = rte_eth_tx_queue_setup(id, q, tx_desc, static_cast<unsigned>(socket), &txconf);
        ret != 0) {
      return Error{what + "tx queue " + std::to_string(q) + " setup failed: " + errstr(ret)};
    }
  }
  return id;
}

}  // namespace segx::dataplane
