// Names of the NOT_FOUND causes, as metrics labels and log fields.
#include "sidecar/session/session_events.h"

namespace stateside::session {

std::string_view NotFoundCauseName(NotFoundCause cause) {
  switch (cause) {
    case NotFoundCause::kMalformedKey:
      return "malformed_key";
    case NotFoundCause::kBadSignature:
      return "bad_signature";
    case NotFoundCause::kUnknown:
      return "unknown";
    case NotFoundCause::kUndecryptable:
      return "undecryptable";
    case NotFoundCause::kTamperedMetadata:
      return "tampered_metadata";
  }
  return "unknown";
}

}  // namespace stateside::session
