#pragma once
// A fresh, empty journal on the backend a suite tests: SQLite in the test's directory
// (suite unit), or a new database on the PostgreSQL server that SEGX_TEST_POSTGRES names
// (suite postgres, where SEGX_TEST_BACKEND=postgres; scripts/test.sh starts the server).

#include <sqlite3.h>

#include <pqxx/pqxx>
#include <random>
#include <stdexcept>
#include <string>

#include "support.hpp"

namespace segx::test {

class TestJournal {
 public:
  explicit TestJournal(const TempDir& dir) {
    const char* backend = std::getenv("SEGX_TEST_BACKEND");
    postgres_ = backend != nullptr && std::string(backend) == "postgres";
    if (!postgres_) {
      url_ = "sqlite:" + (dir / "ledger.db").string();
      file_ = (dir / "ledger.db").string();
      return;
    }
    const char* admin = std::getenv("SEGX_TEST_POSTGRES");
    if (admin == nullptr)
      throw std::runtime_error(
          "suite postgres needs SEGX_TEST_POSTGRES=postgresql://...: scripts/test.sh starts a "
          "server (scripts/postgres-server.sh)");
    admin_ = admin;
    std::random_device rd;
    db_ = "segx_test_" + std::to_string(rd()) + std::to_string(rd());
    {
      pqxx::connection c(admin_);
      pqxx::nontransaction tx(c);
      tx.exec("CREATE DATABASE " + db_);
    }
    url_ = admin_.substr(0, admin_.rfind('/') + 1) + db_;
  }
  ~TestJournal() {
    if (!postgres_) return;
    try {
      pqxx::connection c(admin_);
      pqxx::nontransaction tx(c);
      tx.exec("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  TestJournal(const TestJournal&) = delete;
  TestJournal& operator=(const TestJournal&) = delete;

  const std::string& url() const { return url_; }
  bool postgres() const { return postgres_; }
  /// The SQLite file (empty for PostgreSQL).
  const std::string& file() const { return file_; }
  /// The table of events, for SQL an intruder would run.
  std::string table() const { return postgres_ ? "segx_events" : "events"; }
  /// Runs SQL on the journal behind the ledger's back.
  void execute(const std::string& sql) const {
    if (postgres_) {
      pqxx::connection c(url_);
      pqxx::nontransaction tx(c);
      tx.exec(sql);
      return;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open(file_.c_str(), &db) != SQLITE_OK)
      throw std::runtime_error("cannot open " + file_);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    if (rc != SQLITE_OK) throw std::runtime_error(msg);
  }

 private:
  bool postgres_ = false;
  std::string url_, file_, admin_, db_;
};

}  // namespace segx::test
