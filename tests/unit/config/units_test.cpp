#include "config/units.hpp"

#include <gtest/gtest.h>

namespace segx::config {
namespace {

using namespace std::chrono_literals;

TEST(Duration, ParsesUnitsAndSequences) {
  EXPECT_EQ(parse_duration("250ms").value(), Duration(250ms));
  EXPECT_EQ(parse_duration("5s").value(), Duration(5s));
  EXPECT_EQ(parse_duration("1m30s").value(), Duration(90s));
  EXPECT_EQ(parse_duration("14d").value(), Duration(std::chrono::hours(14 * 24)));
  EXPECT_EQ(parse_duration("10us").value(), Duration(10us));
  EXPECT_EQ(parse_duration("7ns").value(), Duration(7ns));
  EXPECT_EQ(parse_duration("0s").value(), Duration(0));
}

TEST(Duration, RefusesBareNumbersAndJunk) {
  for (const char* bad :
       {"", "100", "ms", "5 s", "5sec", "1.5s", "-1s", "5s3", "99999999999999999999d"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
  EXPECT_NE(parse_duration("100").error().find("unit"), std::string::npos);
}

TEST(Duration, FormatsInLargestExactUnit) {
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(2s), "2s");
  EXPECT_EQ(format_duration(std::chrono::hours(24 * 14)), "14d");
  EXPECT_EQ(format_duration(Duration(0)), "0s");
  EXPECT_EQ(format_duration(Duration(1001)), "1001ns");
}

TEST(Size, ParsesDecimalAndBinaryUnits) {
  EXPECT_EQ(parse_size("1500").value(), 1500u);
  EXPECT_EQ(parse_size("1500B").value(), 1500u);
  EXPECT_EQ(parse_size("64KiB").value(), 65536u);
  EXPECT_EQ(parse_size("1GB").value(), 1'000'000'000u);
  EXPECT_EQ(parse_size("2MiB").value(), 2u << 20);
  for (const char* bad : {"", "1.5GiB", "64kib", "64 KiB", "-1", "KiB", "99999999999TiB"}) {
    EXPECT_FALSE(parse_size(bad).ok()) << bad;
  }
}

TEST(Rate, ParsesBitRates) {
  EXPECT_EQ(parse_rate("10Mbit/s").value(), 10'000'000u);
  EXPECT_EQ(parse_rate("500kbit/s").value(), 500'000u);
  EXPECT_EQ(parse_rate("1Gbps").value(), 1'000'000'000u);
  EXPECT_EQ(parse_rate("64bit/s").value(), 64u);
  for (const char* bad : {"", "10", "10MB/s", "10 Mbit/s", "1.5Mbit/s", "10mbit/s"}) {
    EXPECT_FALSE(parse_rate(bad).ok()) << bad;
  }
  EXPECT_EQ(format_rate(10'000'000), "10Mbit/s");
  EXPECT_EQ(format_rate(1'500'000), "1500kbit/s");
  EXPECT_EQ(format_rate(7), "7bit/s");
}

TEST(Timestamp, ParsesRfc3339) {
  EXPECT_EQ(parse_timestamp("1970-01-01T00:00:01Z").value(), 1'000'000'000);
  EXPECT_EQ(parse_timestamp("2026-11-26T12:00:00Z").value(), 1'795'694'400'000'000'000);
  EXPECT_EQ(parse_timestamp("2026-11-26T13:00:00+01:00").value(), 1'795'694'400'000'000'000);
  EXPECT_EQ(parse_timestamp("1970-01-01T00:00:00.25Z").value(), 250'000'000);
  for (const char* bad : {"", "2026-11-26", "2026-11-26 12:00:00Z", "2026-13-01T00:00:00Z",
                          "2026-11-26T12:00:00", "2026-11-26T12:00:00+1"}) {
    EXPECT_FALSE(parse_timestamp(bad).ok()) << bad;
  }
}

TEST(IpPrefix, ParsesBothFamiliesAndPlainAddresses) {
  auto p = parse_ip_prefix("10.0.0.0/8").value();
  EXPECT_EQ(p.address.family, 4);
  EXPECT_EQ(p.length, 8);
  EXPECT_EQ(format_prefix(p), "10.0.0.0/8");
  auto host = parse_ip_prefix("192.0.2.7").value();
  EXPECT_EQ(host.length, 32);
  auto v6 = parse_ip_prefix("2001:db8::/32").value();
  EXPECT_EQ(v6.address.family, 6);
  EXPECT_EQ(format_prefix(v6), "2001:db8::/32");
  EXPECT_EQ(parse_ip_prefix("::1").value().length, 128);
}

TEST(IpPrefix, HostBitsSetNamesTheIntendedPrefix) {
  auto r = parse_ip_prefix("10.1.2.3/8");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("did you mean 10.0.0.0/8?"), std::string::npos) << r.error();
  for (const char* bad :
       {"10.0.0.0/33", "10.0.0/8", "2001:db8::/129", "host", "10.0.0.0/", "1.2.3.4/x"}) {
    EXPECT_FALSE(parse_ip_prefix(bad).ok()) << bad;
  }
}

TEST(Mac, ParsesColonsAndDashes) {
  EXPECT_EQ(format_mac(parse_mac("02:00:5E:10:00:01").value()), "02:00:5e:10:00:01");
  EXPECT_EQ(format_mac(parse_mac("02-00-5e-10-00-01").value()), "02:00:5e:10:00:01");
  for (const char* bad :
       {"02:00:5e:10:00", "02:00:5e:10:00:0g", "0200.5e10.0001", "02:00:5e:10:00:011"}) {
    EXPECT_FALSE(parse_mac(bad).ok()) << bad;
  }
}

TEST(IdList, ExpandsRangesAndRefusesDuplicates) {
  EXPECT_EQ(parse_id_list("0-3,8", 128).value(), (std::vector<unsigned>{0, 1, 2, 3, 8}));
  EXPECT_EQ(parse_id_list("5", 128).value(), (std::vector<unsigned>{5}));
  EXPECT_FALSE(parse_id_list("0-3,2", 128).ok());
  EXPECT_FALSE(parse_id_list("3-1", 128).ok());
  EXPECT_FALSE(parse_id_list("128", 128).ok());
  EXPECT_FALSE(parse_id_list("", 128).ok());
  EXPECT_FALSE(parse_id_list("1,,2", 128).ok());
}

TEST(Pci, NormalizesToFullAddress) {
  EXPECT_EQ(parse_pci_address("3b:00.0").value(), "0000:3b:00.0");
  EXPECT_EQ(parse_pci_address("0000:AF:00.1").value(), "0000:af:00.1");
  for (const char* bad : {"3b:00", "0000:3b:00.8", "3b:20.0", "net_pcap0", "0000:3b:00.0x"}) {
    EXPECT_FALSE(parse_pci_address(bad).ok()) << bad;
  }
}

TEST(Endpoint, ParsesHostsAndPorts) {
  auto e = parse_endpoint("127.0.0.1:8080").value();
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 8080);
  EXPECT_EQ(parse_endpoint("[::1]:9464").value().host, "::1");
  EXPECT_EQ(parse_endpoint(":80").value().host, "0.0.0.0");
  EXPECT_EQ(parse_endpoint("localhost:1").value().host, "localhost");
  for (const char* bad : {"8080", "::1:80", "[::1]80", "host:99999", "host:", "[10.0.0.1]:80"}) {
    EXPECT_FALSE(parse_endpoint(bad).ok()) << bad;
  }
}

TEST(Phone, AcceptsE164Only) {
  EXPECT_EQ(parse_phone("+15551230001").value(), "+15551230001");
  for (const char* bad :
       {"15551230001", "+1 555 123", "+0123456789", "+1234567", "+1234567890123456"}) {
    EXPECT_FALSE(parse_phone(bad).ok()) << bad;
  }
}

TEST(Range, ParsesSingleValuesAndRanges) {
  EXPECT_EQ(parse_range("80", 65535).value(), (Range{80, 80}));
  EXPECT_EQ(parse_range("1024-65535", 65535).value(), (Range{1024, 65535}));
  EXPECT_FALSE(parse_range("65536", 65535).ok());
  EXPECT_FALSE(parse_range("90-80", 65535).ok());
  EXPECT_FALSE(parse_range("-80", 65535).ok());
}

TEST(EditDistance, CountsEdits) {
  EXPECT_EQ(edit_distance("rx_queues", "rx_queue"), 1u);
  EXPECT_EQ(edit_distance("mtu", "mtu"), 0u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace segx::config
