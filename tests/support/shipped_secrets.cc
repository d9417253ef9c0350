// Reads the shipped example secrets (see shipped_secrets.h). The example
// Secret is parsed line by line: a `stringData:` block of `key: "value"`
// lines, which is all that file holds; a test fails if nothing is found.
#include "tests/support/shipped_secrets.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace stateside::testing {
namespace {

std::string SourceDir() {
  const char* dir = std::getenv("STATESIDE_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

std::string Unquote(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}

}  // namespace

std::vector<ShippedSecret> ShippedSecretValues() {
  std::vector<ShippedSecret> out;
  const std::string secret_file = "deploy/k8s/examples/secret.example.yaml";
  std::ifstream yaml(SourceDir() + "/" + secret_file);
  bool in_data = false;
  for (std::string line; std::getline(yaml, line);) {
    if (absl::StartsWith(line, "stringData:")) {
      in_data = true;
      continue;
    }
    if (!in_data) continue;
    if (!line.empty() && line[0] != ' ') break;  // the next top-level key
    const absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    const size_t colon = trimmed.find(':');
    if (colon == absl::string_view::npos) continue;
    out.push_back({secret_file, std::string(trimmed.substr(0, colon)),
                   Unquote(trimmed.substr(colon + 1))});
  }
  const std::string env_file = "deploy/compose/.env.example";
  std::ifstream env(SourceDir() + "/" + env_file);
  for (std::string line; std::getline(env, line);) {
    absl::string_view entry = absl::StripAsciiWhitespace(line);
    absl::ConsumePrefix(&entry, "#");
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    const std::string name(entry.substr(0, eq));
    // Only assignments (not prose that holds a '=') of the secrets:
    // REDIS_PASSWORD, SESSION_*; not ports or images.
    bool is_name = !name.empty();
    for (char c : name) is_name = is_name && (absl::ascii_isupper(c) || absl::ascii_isdigit(c) || c == '_');
    if (!is_name) continue;
    if (name != "REDIS_PASSWORD" && !absl::StartsWith(name, "SESSION_")) continue;
    const std::string value = Unquote(entry.substr(eq + 1));
    if (!value.empty()) out.push_back({env_file, name, value});
  }
  return out;
}

}  // namespace stateside::testing
