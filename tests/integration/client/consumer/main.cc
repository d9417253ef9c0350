// A minimal application of the installed stateside::client: compiles against
// the public header alone and links. With no sidecar at argv[1], Connect must
// give up with UNAVAILABLE after its ready_timeout.
#include <cstdio>

#include "stateside/client.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer SOCKET\n");
    return 2;
  }
  stateside::ClientOptions options;
  options.socket_path = argv[1];
  options.ready_timeout = absl::Milliseconds(200);
  auto client = stateside::Client::Connect(options);
  if (client.ok() || client.status().code() != absl::StatusCode::kUnavailable) {
    std::fprintf(stderr, "consumer: expected UNAVAILABLE, got %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  if (stateside::SessionRef::Parse("id.sig").kind != stateside::SessionRef::Kind::kCookie) {
    return 1;
  }
  std::printf("consumer: ok (%s)\n", client.status().ToString().c_str());
  return 0;
}
