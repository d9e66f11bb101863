// SPDX-License-Identifier: MIT
// Output files: checked before the run, written atomically (temporary name, then rename).
#include "common/output.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.hpp"

namespace fivefold {

namespace fs = std::filesystem;

namespace {

/// A name for a temporary file next to @p path, unique to this process.
std::string temporary_for(const fs::path& path) {
  return (path.parent_path() / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
}

}  // namespace

std::string check_writable(const std::string& option, const std::string& path, bool is_dir) {
  const std::string fix = is_dir ? "pass a directory you can write to" : "pass a file in a directory you can write to";
  if (path.empty()) return option + " needs a path; " + fix;
  const fs::path p = fs::absolute(path);
  std::error_code ec;
  if (!is_dir && fs::is_directory(p, ec)) return option + " " + path + " is a directory, not a file; " + fix;
  if (is_dir && fs::exists(p, ec) && !fs::is_directory(p, ec)) return option + " " + path + " is a file, not a directory; " + fix;
  const fs::path dir = is_dir ? p : p.parent_path();
  fs::create_directories(dir, ec);
  if (ec) return option + " " + path + ": cannot create the directory " + dir.string() + " (" + ec.message() + "); " + fix;
  const fs::path probe = dir / (".fivefold-probe." + std::to_string(::getpid()));
  {
    std::ofstream out(probe, std::ios::trunc);
    out << "probe\n";
    out.close();
    if (!out) {
      const std::string why = std::strerror(errno);
      fs::remove(probe, ec);
      return option + " " + path + ": cannot write into " + dir.string() + " (" + why + "); " + fix;
    }
  }
  fs::remove(probe, ec);
  return "";
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) {
    fs::create_directories(p.parent_path(), ec);
    FIVEFOLD_CHECK(!ec, "cannot create the directory ", p.parent_path().string(), " for ", path, ": ", ec.message());
  }
  const std::string tmp = temporary_for(p);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    FIVEFOLD_CHECK(out.good(), "cannot open ", tmp, " to write ", path, " (", std::strerror(errno),
                   "); check the directory and its permissions");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    const bool ok = out.good();
    out.close();
    if (!ok || !out) {
      fs::remove(tmp, ec);
      FIVEFOLD_CHECK(false, "writing ", path, " failed (", std::strerror(errno), "); is the disk full?");
    }
  }
  fs::rename(tmp, p, ec);  // TUTORIAL: the complete file appears at once, or not at all
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    FIVEFOLD_CHECK(false, "cannot rename ", tmp, " to ", path, ": ", ec.message());
  }
}

void write_json_file(const std::string& path, const nlohmann::json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

void write_dump_config(const std::string& dir, nlohmann::json j) {
  j["complete"] = false;  // until the run has written every array
  write_json_file(dir + "/config.json", j);
}

void mark_dump_complete(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path);
  FIVEFOLD_CHECK(in.good(), "--dump ", dir, ": ", path, " is missing at the end of the run; the dump is incomplete");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    FIVEFOLD_CHECK(false, "--dump ", dir, ": ", path, " is not valid JSON (", e.what(), ")");
  }
  j["complete"] = true;
  write_json_file(path, j);
}

}  // namespace fivefold
