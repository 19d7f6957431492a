#include "api/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "ledger/hash.hpp"

namespace segx::api {

using json = nlohmann::json;

std::string token_hash(std::string_view token) {
  ledger::Sha256 h;
  h.update(token);
  return ledger::to_hex(h.finish());
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::unique_ptr<TokenStore>> TokenStore::open(const std::vector<config::TokenConfig>& tokens,
                                                     ledger::Ledger* ledger) {
  std::unique_ptr<TokenStore> s(new TokenStore(ledger));
  if (ledger)
    if (Status r = register_event_types(*ledger); !r) return r.failure();
  for (const auto& t : tokens) {
    auto role = market::parse_role(t.role);
    if (!role) return Error{"token of '" + t.principal + "': unknown role '" + t.role + "'"};
    s->tokens_.push_back({t.principal, *role, t.owner, t.sha256, "config", 0, ""});
  }
  if (!ledger) {
    s->reindex();
    return s;
  }
  std::string failure;
  Status scanned = ledger->scan(1, [&](const ledger::Event& e) {
    if (e.type != "token_issued" && e.type != "token_revoked") return true;
    try {
      const json j = json::parse(e.body);
      if (e.type == "token_issued") {
        auto role = market::parse_role(j.at("role").get<std::string>());
        if (!role) throw std::runtime_error("unknown role");
        s->tokens_.push_back({j.at("principal"), *role, j.value("owner", ""), j.at("sha256"), "api",
                              e.time_ns, j.value("by", "")});
      } else {
        const std::string h = j.at("sha256");
        std::erase_if(s->tokens_, [&](const Principal& p) { return p.sha256 == h; });
      }
    } catch (const std::exception& ex) {
      failure = "ledger event " + std::to_string(e.seq) + " (" + e.type +
                ") cannot be read: " + ex.what();
      return false;
    }
    return true;
  });
  if (!scanned) return Error{scanned.error()};
  if (!failure.empty()) return Error{failure};
  s->reindex();
  return s;
}

Status TokenStore::register_event_types(ledger::Ledger& ledger) {
  return ledger.register_event_types("api", {"token_issued", "token_revoked"});
}

std::optional<Principal> TokenStore::authenticate(std::string_view token) const {
  const std::string h = token_hash(token);
  std::shared_lock lock(mutex_);
  // Looked up by the presented token's SHA-256: the time a lookup takes depends on that hash
  // (which the client knows) and the table, never on how much of a stored token the
  // presented one matches. The last comparison is constant-time all the same.
  auto it = by_hash_.find(h);
  if (it == by_hash_.end() || !constant_time_equal(tokens_[it->second].sha256, h))
    return std::nullopt;
  return tokens_[it->second];
}

Status TokenStore::check_consistent(const std::string& principal, market::Role role,
                                    const std::string& owner) const {
  for (const Principal& p : tokens_) {
    if (p.id != principal) continue;
    if (p.role != role)
      return Error{"principal '" + principal + "' already holds a " +
                       std::string(market::role_name(p.role)) + " token; one principal, one role",
                   ErrorKind::conflict};
    if (p.owner != owner)
      return Error{"device '" + principal + "' already belongs to '" + p.owner + "'",
                   ErrorKind::conflict};
  }
  return {};
}

Result<IssuedToken> TokenStore::issue(const Principal& by, const std::string& principal,
                                      market::Role role, const std::string& owner, int64_t now_ns) {
  if (!ledger_) return Error{"tokens cannot be issued without a ledger", ErrorKind::unavailable};
  if (role == market::Role::device && owner.empty())
    return Error{"a device token needs an owner (the recipient it acts for)"};
  if (role != market::Role::device && !owner.empty())
    return Error{"only a device token has an owner"};
  unsigned char random[32];
  if (RAND_bytes(random, sizeof random) != 1)
    return Error{"no randomness for a token (OpenSSL)", ErrorKind::internal};
  static constexpr char digits[] = "0123456789abcdef";
  std::string token = "segx_";
  for (unsigned char c : random) {
    token += digits[c >> 4];
    token += digits[c & 15];
  }
  Principal p{principal, role, owner, token_hash(token), "api", now_ns, by.id};
  json body = {{"principal", principal},
               {"role", market::role_name(role)},
               {"sha256", p.sha256},
               {"by", by.id}};
  if (!owner.empty()) body["owner"] = owner;
  // Changes take turns (two admins cannot give one principal two roles), but only they wait
  // for the commit: authentication reads the published list meanwhile.
  std::lock_guard change(change_mutex_);
  {
    std::shared_lock read(mutex_);
    if (Status s = check_consistent(principal, role, owner); !s) return s.failure();
  }
  auto seq = ledger_->append("token_issued", body.dump(), now_ns);
  if (!seq) return seq.failure();
  if (Status d = ledger_->wait_durable(seq.value()); !d) return d.failure();
  {
    std::unique_lock write(mutex_);
    tokens_.push_back(p);
    reindex();
  }
  return IssuedToken{std::move(token), std::move(p)};
}

Status TokenStore::revoke(const Principal& by, const std::string& sha256, int64_t now_ns) {
  if (!ledger_) return Error{"tokens cannot be revoked without a ledger", ErrorKind::unavailable};
  std::lock_guard change(change_mutex_);
  {
    std::shared_lock read(mutex_);
    auto it = std::find_if(tokens_.begin(), tokens_.end(),
                           [&](const Principal& p) { return p.sha256 == sha256; });
    if (it == tokens_.end()) return Error{"no token with hash " + sha256, ErrorKind::not_found};
    if (it->source != "api")
      return Error{"token of '" + it->id +
                       "' comes from the configuration: remove it there (market.api.tokens)",
                   ErrorKind::forbidden};
  }
  auto seq =
      ledger_->append("token_revoked", json{{"sha256", sha256}, {"by", by.id}}.dump(), now_ns);
  if (!seq) return seq.failure();
  if (Status d = ledger_->wait_durable(seq.value()); !d) return d;
  std::unique_lock write(mutex_);
  std::erase_if(tokens_, [&](const Principal& p) { return p.sha256 == sha256; });
  reindex();
  return {};
}

void TokenStore::reindex() {
  by_hash_.clear();
  by_hash_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i)
    by_hash_[tokens_[i].sha256] = i;
}

std::vector<Principal> TokenStore::list() const {
  std::shared_lock lock(mutex_);
  return tokens_;
}

uint32_t RateLimiter::take(const std::string& key, int64_t now_ns) {
  std::lock_guard lock(mutex_);
  auto [it, fresh] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = rate_;
    b.last_ns = now_ns;
  } else if (now_ns > b.last_ns) {
    b.tokens = std::min<double>(rate_, b.tokens + (now_ns - b.last_ns) * 1e-9 * rate_);
    b.last_ns = now_ns;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  const double wait_s = (1 - b.tokens) / rate_;
  return std::max<uint32_t>(1, static_cast<uint32_t>(wait_s + 0.999));
}

}  // namespace segx::api
