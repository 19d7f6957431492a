// segxctl: the operator's and the bidder's command line over segx's REST API (docs/api.md).
// Every command is one or two HTTP requests; people get tables, scripts get --json (the API's
// own JSON, unchanged). Exit codes: 0 success, 1 the API refused (its error is printed; a
// refused reload), 2 usage, 3 segx cannot be reached, 4 `ledger verify` found the chain broken.

#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using json = nlohmann::json;

constexpr int exit_ok = 0;
constexpr int exit_api = 1;
constexpr int exit_usage = 2;
constexpr int exit_unreachable = 3;
constexpr int exit_broken = 4;

struct Options {
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  std::string cacert;
  bool insecure = false;
  bool json_out = false;
};

// A failure to report and the exit code it stands for.
struct Failure {
  int code;
  std::string message;
};

class Client {
 public:
  explicit Client(const Options& o) : o_(o), http_(o.url) {
    if (!http_.is_valid()) throw Failure{exit_usage, "--url " + o.url + ": not an http(s) URL"};
    http_.set_connection_timeout(5);
    http_.set_read_timeout(30);
    http_.set_write_timeout(30);
    if (!o.token.empty()) http_.set_bearer_token_auth(o.token.c_str());
    if (!o.cacert.empty()) http_.set_ca_cert_path(o.cacert.c_str());
    if (o.insecure) http_.enable_server_certificate_verification(false);
  }

  json get(const std::string& path) { return check(http_.Get(path.c_str()), "GET", path); }
  json post(const std::string& path, const json& body) {
    return check(http_.Post(path.c_str(), body.dump(), "application/json"), "POST", path);
  }
  json del(const std::string& path) { return check(http_.Delete(path.c_str()), "DELETE", path); }
  /// POST /v1/admin/reload: a refusal (422) is an outcome to print, not a failure; segx
  /// waits up to 30 s for the main lcore, so this waits a little longer.
  json reload(bool& refused) {
    const std::string path = "/v1/admin/reload";
    http_.set_read_timeout(40);
    auto r = http_.Post(path.c_str(), "", "application/json");
    refused = r && r->status == 422;
    if (refused) {
      try {
        return json::parse(r->body);
      } catch (const json::exception&) {
      }
    }
    return check(r, "POST", path);
  }

 private:
  json check(const httplib::Result& r, const std::string& method, const std::string& path) {
    if (!r)
      throw Failure{exit_unreachable, "cannot reach segx at " + o_.url + " (" +
                                          httplib::to_string(r.error()) +
                                          "); is it running? --url or SEGX_URL names it"};
    json body;
    try {
      body = json::parse(r->body);
    } catch (const json::exception&) {
      body = json::object();
    }
    if (r->status >= 400) {
      std::string msg = method + " " + path + ": " + std::to_string(r->status) + " " +
                        body.value("error", std::string("error")) + ": " +
                        body.value("detail", r->body);
      if (r->status == 401 && o_.token.empty()) msg += " (give --token or set SEGX_TOKEN)";
      throw Failure{exit_api, msg};
    }
    return body;
  }

  const Options& o_;
  httplib::Client http_;
};

// Columns sized to their widest cell.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size());
  for (size_t i = 0; i < header.size(); ++i)
    w[i] = header[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i)
      w[i] = std::max(w[i], r[i].size());
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size(); ++i) {
      s += cells[i];
      if (i + 1 < cells.size()) s += std::string(w[i] - cells[i].size() + 2, ' ');
    }
    std::printf("%s\n", s.c_str());
  };
  line(header);
  for (const auto& r : rows)
    line(r);
  if (rows.empty()) std::printf("(none)\n");
}

std::string str(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

std::string reputation_text(const json& r) {
  if (r.value("count", 0) == 0) return "no ratings";
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.0f%% of %llu (Wilson %.2f)", r.value("percent_positive", 0.0),
                static_cast<unsigned long long>(r.value("count", 0ULL)),
                r.value("wilson_lower", 0.0));
  return buf;
}

std::string join(const json& a) {
  std::string s;
  for (const auto& x : a)
    s += (s.empty() ? "" : ",") + str(x);
  return s;
}

void print_lots(const json& lots) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& l : lots)
    rows.push_back({str(l["id"]), str(l["provider"]), str(l["profile"]), str(l["format"]),
                    str(l["state"]), str(l["closes_at"]), str(l["bid_count"]),
                    str(l["clearing_price"]) + " " + str(l["currency"]),
                    reputation_text(l["provider_reputation"])});
  print_table({"ID", "PROVIDER", "PROFILE", "FORMAT", "STATE", "CLOSES", "BIDS", "PRICE",
               "PROVIDER REPUTATION"},
              rows);
}

void print_bids(const json& bids) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : bids)
    rows.push_back({str(b["id"]), str(b["lot"]), str(b["bidder"]), str(b["price"]),
                    str(b["effective_price"]), str(b["status"]), str(b["lease"]),
                    join(b["members"]), reputation_text(b["bidder_reputation"])});
  print_table({"ID", "LOT", "BIDDER", "PRICE", "EFFECTIVE", "STATUS", "LEASE", "MEMBERS",
               "BIDDER REPUTATION"},
              rows);
}

void print_leases(const json& leases) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& l : leases) {
    std::string charges;
    for (const auto& c : l["charges"])
      charges += (charges.empty() ? "" : ", ") + str(c["payer"]) + " " + str(c["amount"]) + " " +
                 str(c["result"]);
    rows.push_back({str(l["id"]), str(l["lot"]), str(l["state"]), str(l["profile"]),
                    str(l["start_at"]), str(l["end_at"]), str(l["unit_price"]),
                    join(l["recipients"]), charges.empty() ? "-" : charges});
  }
  print_table({"ID", "LOT", "STATE", "PROFILE", "START", "END", "PRICE", "RECIPIENTS", "CHARGES"},
              rows);
}

void print_group(const json& g) {
  std::printf("group %s on lot %s, organised by %s; pledged %s\n", str(g["id"]).c_str(),
              str(g["lot"]).c_str(), str(g["organizer"]).c_str(), str(g["pledged"]).c_str());
  const json joined = g.value("joined", json::array());
  for (const auto& m : g["members"]) {
    const std::string p = m["principal"];
    const bool in = std::find(joined.begin(), joined.end(), p) != joined.end();
    const std::string pledge = g["pledges"].contains(p) && g["pledges"][p].get<int64_t>() > 0
                                   ? str(g["pledges"][p])
                                   : (in ? "sponsored" : "not joined");
    std::printf("  %-16s %-10s %s\n", p.c_str(), pledge.c_str(), join(m["members"]).c_str());
  }
}

// Adds a string option to a JSON body when it was given.
void put(json& body, const char* key, const std::optional<std::string>& v) {
  if (v) body[key] = *v;
}
void put(json& body, const char* key, const std::optional<int64_t>& v) {
  if (v) body[key] = *v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"segxctl: the segx market over its REST API (docs/api.md)"};
  app.set_help_all_flag("--help-all", "Every subcommand's help");
  app.footer(
      "Exit codes: 0 success, 1 the API refused (its error is printed; reload: refused), 2 "
      "usage, 3 segx cannot be reached, 4 ledger verify found the chain broken.");
  Options o;
  app.add_option("--url", o.url, "segx API base URL")->envname("SEGX_URL")->capture_default_str();
  app.add_option("--token", o.token, "bearer token")->envname("SEGX_TOKEN");
  app.add_option("--cacert", o.cacert, "CA certificate (PEM) to verify an https segx with");
  app.add_flag("--insecure", o.insecure, "do not verify an https segx's certificate");
  app.add_flag("--json", o.json_out, "print the API's JSON instead of a table");
  app.require_subcommand(1);

  std::function<json(Client&)> run;       // the request(s)
  std::function<void(const json&)> show;  // the table
  int verdict = exit_ok;

  // ---- lots ------------------------------------------------------------------------------
  auto* lots = app.add_subcommand("lots", "Lots: list, show, create, cancel");
  lots->require_subcommand(1);
  auto* lots_list = lots->add_subcommand("list", "Lots with their provider's reputation");
  std::string state;
  lots_list->add_option("--state", state, "open, closed or cancelled")
      ->check(CLI::IsMember({"open", "closed", "cancelled"}));
  lots_list->callback([&] {
    run = [&](Client& c) { return c.get("/v1/lots" + (state.empty() ? "" : "?state=" + state)); };
    show = [](const json& j) { print_lots(j["lots"]); };
  });
  uint64_t id = 0;
  auto* lots_show = lots->add_subcommand("show", "One lot");
  lots_show->add_option("id", id, "lot id")->required();
  lots_show->callback([&] {
    run = [&](Client& c) { return c.get("/v1/lots/" + std::to_string(id)); };
    show = [](const json& j) { print_lots(json::array({j})); };
  });
  auto* lots_cancel = lots->add_subcommand("cancel", "Cancel an open lot");
  lots_cancel->add_option("id", id, "lot id")->required();
  lots_cancel->callback([&] {
    run = [&](Client& c) { return c.del("/v1/lots/" + std::to_string(id)); };
    show = [](const json& j) { std::printf("lot %s cancelled\n", str(j["id"]).c_str()); };
  });
  auto* lots_create = lots->add_subcommand("create", "Put blocks up for sale");
  std::string profile, duration;
  std::optional<std::string> start_in, start_at, closes_in, closes_at, min_rate, max_rate, format,
      soft_close, max_extension;
  std::optional<int64_t> quantity, reserve, max_price, max_members, increment;
  lots_create->add_option("--profile", profile, "a metered profile")->required();
  lots_create->add_option("--duration", duration, "length of each block (1h, 90s)")->required();
  auto* si = lots_create->add_option("--start-in", start_in, "blocks start this long from now");
  auto* sa = lots_create->add_option("--start-at", start_at, "blocks start then (RFC 3339)");
  si->excludes(sa);
  auto* ci = lots_create->add_option("--closes-in", closes_in, "bidding ends this long from now");
  auto* ca = lots_create->add_option("--closes-at", closes_at, "bidding ends then (RFC 3339)");
  ci->excludes(ca);
  lots_create->add_option("--min-rate", min_rate, "guaranteed rate per block (10Mbit/s)");
  lots_create->add_option("--max-rate", max_rate, "highest rate per block (100Mbit/s)");
  lots_create->add_option("--quantity", quantity, "identical blocks for sale");
  lots_create->add_option("--reserve", reserve, "lowest winning price per block (minor units)");
  lots_create->add_option("--max-price", max_price, "highest acceptable bid (minor units)");
  lots_create->add_option("--max-members", max_members, "member identifiers per block");
  lots_create->add_option("--format", format, "second_price, uniform or ascending")
      ->check(CLI::IsMember({"second_price", "uniform", "ascending"}));
  lots_create->add_option("--increment", increment, "ascending: least raise (minor units)");
  lots_create->add_option("--soft-close", soft_close, "ascending: late bids extend by this");
  lots_create->add_option("--max-extension", max_extension, "ascending: extend at most this");
  lots_create->callback([&] {
    run = [&](Client& c) {
      json b = {{"profile", profile}, {"duration", duration}};
      put(b, "start_in", start_in);
      put(b, "start_at", start_at);
      put(b, "closes_in", closes_in);
      put(b, "closes_at", closes_at);
      put(b, "min_rate", min_rate);
      put(b, "max_rate", max_rate);
      put(b, "format", format);
      put(b, "soft_close", soft_close);
      put(b, "max_extension", max_extension);
      put(b, "quantity", quantity);
      put(b, "reserve", reserve);
      put(b, "max_price", max_price);
      put(b, "max_members", max_members);
      put(b, "increment", increment);
      return c.post("/v1/lots", b);
    };
    show = [](const json& j) {
      std::printf("lot %s created: %s, closes %s, blocks from %s\n", str(j["id"]).c_str(),
                  str(j["profile"]).c_str(), str(j["closes_at"]).c_str(),
                  str(j["start_at"]).c_str());
    };
  });

  // ---- bids ------------------------------------------------------------------------------
  auto* bid = app.add_subcommand("bid", "Bid on a lot (answered once the bid is durable)");
  int64_t price = 0;
  std::vector<std::string> members;
  std::optional<std::string> payment_token;
  bid->add_option("lot", id, "lot id")->required();
  bid->add_option("--price", price, "per block, minor units")->required();
  bid->add_option("--member", members, "ip:10.0.0.0/8, device:ID, phone:+..., ... (repeat)")
      ->required();
  bid->add_option("--quantity", quantity, "blocks wanted (uniform lots)");
  bid->add_option("--payment-token", payment_token, "the payment gateway's token");
  bid->callback([&] {
    run = [&](Client& c) {
      json b = {{"price", price}, {"members", members}};
      put(b, "quantity", quantity);
      put(b, "payment_token", payment_token);
      return c.post("/v1/lots/" + std::to_string(id) + "/bids", b);
    };
    show = [](const json& j) {
      std::printf("bid %s on lot %s at %s: durable in the ledger\n", str(j["id"]).c_str(),
                  str(j["lot"]).c_str(), str(j["price"]).c_str());
    };
  });
  auto* bids = app.add_subcommand("bids", "Own bids and their results (providers: on their lots)");
  bids->callback([&] {
    run = [&](Client& c) { return c.get("/v1/bids"); };
    show = [](const json& j) { print_bids(j["bids"]); };
  });

  // ---- groups ----------------------------------------------------------------------------
  auto* group = app.add_subcommand("group", "Group bids: create, pledge, withdraw, show");
  group->require_subcommand(1);
  auto* group_create = group->add_subcommand("create", "Organise a group bid on a lot");
  std::vector<std::string> group_members;
  group_create->add_option("lot", id, "lot id")->required();
  group_create->add_option("--price", price, "the most the group pays per block")->required();
  group_create
      ->add_option("--member", group_members,
                   "PRINCIPAL=MEMBER[,MEMBER...], e.g. bob=ip:10.2.0.0/16 (repeat)")
      ->required();
  group_create->add_option("--quantity", quantity, "blocks wanted");
  group_create->callback([&] {
    run = [&](Client& c) {
      json ms = json::array();
      for (const auto& m : group_members) {
        const auto eq = m.find('=');
        if (eq == std::string::npos || eq == 0)
          throw Failure{exit_usage, "--member " + m + ": expected PRINCIPAL=MEMBER[,MEMBER...]"};
        json ids = json::array();
        std::string rest = m.substr(eq + 1);
        for (size_t p = 0; p <= rest.size();) {
          const size_t comma = rest.find(',', p);
          const std::string one =
              rest.substr(p, comma == std::string::npos ? std::string::npos : comma - p);
          if (!one.empty()) ids.push_back(one);
          if (comma == std::string::npos) break;
          p = comma + 1;
        }
        ms.push_back({{"principal", m.substr(0, eq)}, {"members", ids}});
      }
      json b = {{"lot", id}, {"price", price}, {"members", ms}};
      put(b, "quantity", quantity);
      return c.post("/v1/groups", b);
    };
    show = [](const json& j) { print_group(j); };
  });
  auto* pledge = group->add_subcommand(
      "pledge", "Join a group: pledge to pay up to an amount of its price (0: sponsored)");
  int64_t amount = 0;
  std::string pledge_token;
  pledge->add_option("group", id, "group id")->required();
  pledge->add_option("--amount", amount, "minor units")->required();
  pledge->add_option("--payment-token", pledge_token,
                     "the payment gateway's token (needed unless --amount is 0)");
  pledge->callback([&] {
    run = [&](Client& c) {
      json body = {{"amount", amount}};
      if (!pledge_token.empty()) body["payment_token"] = pledge_token;
      return c.post("/v1/groups/" + std::to_string(id) + "/pledges", body);
    };
    show = [](const json& j) { print_group(j); };
  });
  auto* withdraw = group->add_subcommand("withdraw", "Withdraw your pledge before the lot closes");
  withdraw->add_option("group", id, "group id")->required();
  withdraw->callback([&] {
    run = [&](Client& c) { return c.del("/v1/groups/" + std::to_string(id) + "/pledges"); };
    show = [](const json& j) { print_group(j); };
  });
  auto* group_show = group->add_subcommand("show", "A group's members and pledges");
  group_show->add_option("group", id, "group id")->required();
  group_show->callback([&] {
    run = [&](Client& c) { return c.get("/v1/groups/" + std::to_string(id)); };
    show = [](const json& j) { print_group(j); };
  });

  // ---- leases, ratings, reputation -------------------------------------------------------
  auto* leases = app.add_subcommand("leases", "Leases you are a party to (one with its id)");
  std::optional<uint64_t> lease_id;
  leases->add_option("id", lease_id, "one lease");
  leases->callback([&] {
    run = [&](Client& c) {
      if (lease_id)
        return json{{"leases", json::array({c.get("/v1/leases/" + std::to_string(*lease_id))})}};
      return c.get("/v1/leases");
    };
    show = [](const json& j) { print_leases(j["leases"]); };
  });
  auto* rate = app.add_subcommand(
      "rate", "Rate a finished lease: recipients --satisfied/--unsatisfied; providers --note");
  bool satisfied = false, unsatisfied = false;
  std::optional<int64_t> score;
  std::optional<std::string> comment, recipient, note;
  rate->add_option("lease", id, "lease id")->required();
  auto* sat = rate->add_flag("--satisfied", satisfied, "the provider served you well");
  auto* unsat = rate->add_flag("--unsatisfied", unsatisfied, "it did not");
  sat->excludes(unsat);
  rate->add_option("--score", score, "1 to 5")->check(CLI::Range(1, 5));
  rate->add_option("--comment", comment, "a few words");
  auto* rec = rate->add_option("--recipient", recipient, "provider: the recipient to note");
  auto* nt = rate->add_option("--note", note, "provider: the note");
  rec->needs(nt);
  nt->needs(rec);
  rate->callback([&] {
    json b;
    if (note) {
      if (satisfied || unsatisfied)
        throw Failure{exit_usage, "rate: --note is the provider's; --satisfied the recipient's"};
      b = {{"recipient", *recipient}, {"note", *note}};
    } else {
      if (!satisfied && !unsatisfied)
        throw Failure{exit_usage,
                      "rate: give --satisfied or --unsatisfied (or --recipient and "
                      "--note as the provider)"};
      b = {{"satisfied", satisfied}};
      put(b, "score", score);
      put(b, "comment", comment);
    }
    run = [&, b](Client& c) { return c.post("/v1/leases/" + std::to_string(id) + "/ratings", b); };
    show = [](const json& j) {
      std::printf("rating %s: %s rated %s on lease %s: %s\n", str(j["id"]).c_str(),
                  str(j["by"]).c_str(), str(j["of"]).c_str(), str(j["lease"]).c_str(),
                  j.value("positive", false) ? "positive" : "negative");
    };
  });
  auto* reputation = app.add_subcommand("reputation", "A principal's reputation, both roles");
  std::string principal;
  reputation->add_option("principal", principal, "provider or recipient id")->required();
  reputation->callback([&] {
    run = [&](Client& c) { return c.get("/v1/principals/" + principal + "/reputation"); };
    show = [](const json& j) {
      print_table({"PRINCIPAL", "AS PROVIDER", "AS RECIPIENT"},
                  {{str(j["principal"]), reputation_text(j["as_provider"]),
                    reputation_text(j["as_recipient"])}});
    };
  });

  // ---- ledger, tokens, whoami ------------------------------------------------------------
  auto* ledger = app.add_subcommand("ledger", "The ledger");
  ledger->require_subcommand(1);
  auto* verify = ledger->add_subcommand("verify", "Check the whole hash chain");
  verify->callback([&] {
    run = [&](Client& c) {
      json j = c.get("/v1/ledger/verify");
      if (!j.value("ok", false)) verdict = exit_broken;
      return j;
    };
    show = [](const json& j) {
      if (j.value("ok", false))
        std::printf("ledger: %s events, chain intact\n  head %s\n", str(j["events"]).c_str(),
                    str(j["head"]).c_str());
      else
        std::printf("ledger: BROKEN at event %s: %s\n", str(j["bad_seq"]).c_str(),
                    str(j["reason"]).c_str());
    };
  });
  auto* token = app.add_subcommand("token", "Tokens (admins): issue, list, revoke");
  token->require_subcommand(1);
  auto* issue = token->add_subcommand("issue", "Issue a token; it is shown once");
  std::string role;
  std::optional<std::string> owner;
  issue->add_option("--principal", principal, "who it is for")->required();
  issue->add_option("--role", role, "admin, provider, recipient or device")
      ->required()
      ->check(CLI::IsMember({"admin", "provider", "recipient", "device"}));
  issue->add_option("--owner", owner, "device: the recipient it acts for");
  issue->callback([&] {
    run = [&](Client& c) {
      json b = {{"principal", principal}, {"role", role}};
      put(b, "owner", owner);
      return c.post("/v1/tokens", b);
    };
    show = [](const json& j) {
      std::printf(
          "token for %s (%s): %s\n  segx keeps only its SHA-256 %s; it is not shown again\n",
          str(j["principal"]).c_str(), str(j["role"]).c_str(), str(j["token"]).c_str(),
          str(j["sha256"]).c_str());
    };
  });
  auto* token_list = token->add_subcommand("list", "Every token's principal, role and hash");
  token_list->callback([&] {
    run = [&](Client& c) { return c.get("/v1/tokens"); };
    show = [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& t : j["tokens"])
        rows.push_back({str(t["principal"]), str(t["role"]), str(t["owner"]), str(t["source"]),
                        str(t["sha256"]).substr(0, 16)});
      print_table({"PRINCIPAL", "ROLE", "OWNER", "SOURCE", "SHA256"}, rows);
    };
  });
  auto* revoke = token->add_subcommand("revoke", "Revoke an issued token by its SHA-256");
  std::string sha;
  revoke->add_option("sha256", sha, "the token's hash (token list shows it)")->required();
  revoke->callback([&] {
    run = [&](Client& c) { return c.del("/v1/tokens/" + sha); };
    show = [](const json& j) { std::printf("revoked %s\n", str(j["revoked"]).c_str()); };
  });
  // ---- administration ------------------------------------------------------------------
  auto* reload = app.add_subcommand(
      "reload",
      "Admins: segx applies its changed configuration file (the keys that change live), or "
      "refuses it all, naming every error (exit 1)");
  reload->callback([&] {
    run = [&](Client& c) {
      bool refused = false;
      json j = c.reload(refused);
      if (refused) verdict = exit_api;
      return j;
    };
    show = [](const json& j) {
      if (j.value("result", std::string()) != "applied") {
        std::printf("reload refused; generation %s keeps running, nothing changed:\n",
                    str(j["generation"]).c_str());
        for (const auto& e : j["errors"])
          std::printf("  %s\n", str(e["message"]).c_str());
        return;
      }
      const json& ch = j["changed"];
      std::string what;
      const auto part = [&](const std::string& label, const json& names) {
        if (names.is_array() && !names.empty())
          what += (what.empty() ? "" : "; ") + label + " " + join(names);
      };
      part("profiles added", ch["profiles"]["added"]);
      part("profiles changed", ch["profiles"]["changed"]);
      part("profiles removed", ch["profiles"]["removed"]);
      if (ch.value("default_action", false))
        what += (what.empty() ? "" : "; ") + std::string("default action");
      if (ch.value("subscribers", false))
        what += (what.empty() ? "" : "; ") + std::string("subscribers");
      part("blocks added", ch["blocks"]["added"]);
      part("blocks changed", ch["blocks"]["changed"]);
      part("blocks removed", ch["blocks"]["removed"]);
      if (ch.contains("log_level") && !ch["log_level"].is_null())
        what += (what.empty() ? "" : "; ") + std::string("log.level ") + str(ch["log_level"]);
      std::printf("reload applied: generation %s; %s\n", str(j["generation"]).c_str(),
                  what.empty() ? "nothing changed" : what.c_str());
    };
  });
  auto* whoami = app.add_subcommand("whoami", "The principal your token stands for");
  whoami->callback([&] {
    run = [&](Client& c) { return c.get("/v1/whoami"); };
    show = [](const json& j) {
      std::printf(
          "%s (%s%s)\n", str(j["principal"]).c_str(), str(j["role"]).c_str(),
          j.value("owner", std::string()).empty() ? "" : (", acts for " + str(j["owner"])).c_str());
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  } catch (const Failure& f) {
    std::fprintf(stderr, "segxctl: %s\n", f.message.c_str());
    return f.code;
  }
  try {
    Client client(o);
    const json result = run(client);
    if (o.json_out) {
      std::printf("%s\n", result.dump(2).c_str());
    } else {
      show(result);
    }
  } catch (const Failure& f) {
    std::fprintf(stderr, "segxctl: %s\n", f.message.c_str());
    return f.code;
  }
  return verdict;
}
