// TempDir: mkdtemp under $TMPDIR (or /tmp), removed recursively.
#include "tests/support/temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace stateside::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  // Unix socket paths are limited to 108 bytes: keep the prefix short.
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ss-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::File(const std::string& name) const {
  return path_ + "/" + name;
}

std::string TempDir::WriteFile(const std::string& name, const std::string& contents) const {
  const std::string path = File(name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

}  // namespace stateside::testing
