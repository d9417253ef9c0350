// SessionManager: the session rules over the SessionStore seam.
#include "sidecar/session/session_manager.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/error_reason.h"
#include "sidecar/common/not_found.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/common/string_view.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/session_id.h"
#include "spdlog/spdlog.h"

namespace stateside::session {
namespace {

// A cookie is "id.signature": 43 + 1 + 43 characters. Anything much longer is
// malformed; refuse it before spending an HMAC on it.
constexpr size_t kMaxCookieBytes = 256;
// The signature part: unpadded base64url of an HMAC-SHA256 (crypto/cookie.h).
constexpr size_t kCookieSignatureChars = 43;
// Attempts at a fresh id before giving up (a collision of 256 random bits is
// not expected; a second attempt only guards a broken random source).
constexpr int kCreateAttempts = 2;
// Copies a Regenerate makes before giving up on a session that an Update
// changes under each of them.
constexpr int kRegenerateAttempts = 4;
// Successors a logout-everywhere follows from one listed session (each hop
// is a Regenerate that completed while the logout was under way).
constexpr int kMaxSuccessorHops = 64;

// Whether a cookie has the shape "id.signature"; only tells a malformed
// cookie from a forged one in the metrics. The signer decides validity.
bool LooksLikeCookie(std::string_view cookie) {
  const size_t dot = cookie.find('.');
  if (cookie.size() > kMaxCookieBytes || dot == std::string_view::npos ||
      !crypto::IsWellFormedSessionId(cookie.substr(0, dot))) {
    return false;
  }
  const std::string_view signature = cookie.substr(dot + 1);
  if (signature.size() != kCookieSignatureChars) return false;
  for (char c : signature) {
    const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!alphabet) return false;
  }
  return true;
}

// A name as it may appear in an error message: escaped and shortened, since
// it is untrusted input.
std::string Quote(std::string_view name) {
  constexpr size_t kShown = 64;
  std::string out = absl::CHexEscape(Sv(name.substr(0, kShown)));
  if (name.size() > kShown) absl::StrAppend(&out, "...");
  return absl::StrCat("'", out, "'");
}

absl::Status ValidateName(std::string_view name, const SessionLimits& limits) {
  if (name.empty()) {
    return WithReason(absl::InvalidArgumentError("attribute name is empty"),
                      "ATTRIBUTE_NAME_INVALID", "attributes");
  }
  if (name.size() > limits.max_attribute_name_bytes) {
    return WithReason(absl::InvalidArgumentError(absl::StrCat(
                          "attribute name ", Quote(name), " is ", name.size(),
                          " bytes; the limit (max_attribute_name_bytes) is ",
                          limits.max_attribute_name_bytes)),
                      "ATTRIBUTE_NAME_INVALID", "attributes", "max_attribute_name_bytes");
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return WithReason(absl::InvalidArgumentError(absl::StrCat(
                            "attribute name ", Quote(name),
                            " has a character outside printable ASCII")),
                        "ATTRIBUTE_NAME_INVALID", "attributes");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateValue(std::string_view name, std::string_view value,
                           const SessionLimits& limits) {
  if (value.size() > limits.max_attribute_bytes) {
    return WithReason(absl::InvalidArgumentError(absl::StrCat(
                          "attribute ", Quote(name), " is ", value.size(),
                          " bytes; the limit (max_attribute_bytes) is ",
                          limits.max_attribute_bytes)),
                      "ATTRIBUTE_TOO_LARGE", "attributes", "max_attribute_bytes");
  }
  return absl::OkStatus();
}

absl::Status ValidateAttributes(
    const absl::flat_hash_map<std::string, std::string>& attributes,
    const SessionLimits& limits) {
  if (attributes.size() > limits.max_attributes) {
    return WithReason(absl::InvalidArgumentError(absl::StrCat(
                          attributes.size(), " attributes given; the limit (max_attributes) is ",
                          limits.max_attributes)),
                      "TOO_MANY_ATTRIBUTES", "attributes", "max_attributes");
  }
  for (const auto& [name, value] : attributes) {
    RETURN_IF_ERROR(ValidateName(name, limits));
    RETURN_IF_ERROR(ValidateValue(name, value, limits));
  }
  return absl::OkStatus();
}

absl::Status ValidateUserId(std::string_view user_id,
                            const SessionLimits& limits) {
  if (user_id.size() > limits.max_user_id_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "user_id is ", user_id.size(),
        " bytes; the limit (max_user_id_bytes) is ", limits.max_user_id_bytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateRequiredUserId(std::string_view user_id,
                                    const SessionLimits& limits) {
  if (user_id.empty()) return absl::InvalidArgumentError("user_id is required");
  return ValidateUserId(user_id, limits);
}

// A requested per-session TTL: positive and no longer than the configured one.
absl::StatusOr<absl::Duration> ChooseTtl(std::optional<absl::Duration> asked,
                                         absl::Duration configured,
                                         std::string_view field,
                                         std::string_view setting) {
  if (!asked.has_value()) return configured;
  if (*asked <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(field), " must be positive"));
  }
  if (*asked > configured) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(field), " ", absl::FormatDuration(*asked),
                     " exceeds the configured ", Sv(setting), " of ",
                     absl::FormatDuration(configured)));
  }
  return *asked;
}

MutationLimits MutationLimitsOf(const SessionLimits& limits) {
  MutationLimits out;
  out.max_attributes = limits.max_attributes;
  out.max_total_bytes = limits.max_total_bytes;
  return out;
}

// Metadata of a stored session, all but the user id (which needs opening).
SessionInfo BareInfo(const StoredSession& stored) {
  SessionInfo info;
  info.id = stored.id;
  info.created = stored.created;
  info.last_access = stored.last_access;
  info.idle_expiry = stored.idle_expiry();
  info.absolute_expiry = stored.absolute_expiry;
  info.version = stored.version;
  return info;
}

// What the metadata seal covers: the fields no one may change after
// creation. Compared whole against the opened seal; the user id is last, so
// any bytes in it cannot be confused with the fields before it (the tag is
// hex).
// The user tag's line of the plaintext below, its newlines included.
std::string MetadataUserTagField(std::string_view tag) {
  return absl::StrCat("\nuser_tag=", Sv(tag), "\n");
}

std::string MetadataPlaintext(const StoredSession& stored,
                              std::string_view user_id) {
  return absl::StrCat("created=", absl::ToUnixMicros(stored.created),
                      "\nidle=", absl::ToInt64Microseconds(stored.idle_ttl),
                      "\nabs=", absl::ToUnixMicros(stored.absolute_expiry),
                      MetadataUserTagField(stored.user_tag), "user=", Sv(user_id));
}

// InfoOf's error for a seal that failed: told apart from an envelope that
// did not open (NOT_FOUND) only to count the right cause.
absl::Status SealRefused() {
  return absl::FailedPreconditionError("metadata seal refused");
}

NotFoundCause CauseOf(const absl::Status& open_error) {
  return absl::IsFailedPrecondition(open_error)
             ? NotFoundCause::kTamperedMetadata
             : NotFoundCause::kUndecryptable;
}

// A page token: the absolute expiry the next page starts after. Opaque to
// the caller; it names nothing the listing does not show anyway.
constexpr std::string_view kPageTokenPrefix = "p1:";

// Full precision: the memory store keeps the clock's, finer than a
// microsecond, and a rounded bound would repeat or skip a session.
constexpr char kPageTokenTime[] = "%Y-%m-%d%ET%H:%M:%E*S%Ez";

std::string PageToken(absl::Time last) {
  return absl::WebSafeBase64Escape(absl::StrCat(
      Sv(kPageTokenPrefix),
      absl::FormatTime(kPageTokenTime, last, absl::UTCTimeZone())));
}

absl::StatusOr<absl::Time> ParsePageToken(std::string_view token) {
  if (token.empty()) return absl::InfinitePast();
  std::string raw;
  absl::Time after;
  std::string error;
  if (token.size() > 128 || !absl::WebSafeBase64Unescape(Sv(token), &raw) ||
      !absl::StartsWith(raw, Sv(kPageTokenPrefix)) ||
      !absl::ParseTime(kPageTokenTime,
                       absl::string_view(raw).substr(kPageTokenPrefix.size()),
                       absl::UTCTimeZone(), &after, &error)) {
    return WithReason(absl::InvalidArgumentError(
                          "page_token is not a next_page_token of this listing"),
                      "INVALID_ARGUMENT", "page_token");
  }
  return after;
}

// The refusal at a user's cap of live sessions; `limit` is the setting or
// the request field that set it.
absl::Status SessionLimitError(std::string_view detail, std::string_view limit) {
  return WithReason(absl::ResourceExhaustedError(
                        absl::StrCat("user_id: ", Sv(detail), " (", Sv(limit), ")")),
                    "SESSION_LIMIT", "user_id", Sv(limit));
}

SessionEvents* NoEvents() {
  static SessionEvents* const kNone = new SessionEvents();
  return kNone;
}

// The attribute names an update touches, sorted (a change reports names,
// never values).
std::vector<std::string> ChangedNames(const UpdateParams& params) {
  std::vector<std::string> names(params.remove.begin(), params.remove.end());
  for (const auto& [name, value] : params.set) names.push_back(name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

absl::StatusOr<std::string> RetagMetadataPlaintext(std::string plaintext,
                                                   std::string_view from,
                                                   std::string_view to) {
  const std::string field = MetadataUserTagField(from);
  const size_t at = plaintext.find(field);
  if (at == std::string::npos) {
    return absl::DataLossError("the metadata seal does not name the session's user tag");
  }
  plaintext.replace(at, field.size(), MetadataUserTagField(to));
  return plaintext;
}

absl::StatusOr<std::string> SealSessionMetadata(const crypto::Sealer& sealer,
                                                const StoredSession& stored,
                                                std::string_view user_id) {
  return sealer.Seal(stored.id, kMetadataSealName,
                     MetadataPlaintext(stored, user_id));
}

SessionManager::SessionManager(SessionStore* store,
                               const crypto::Sealer* sealer,
                               const crypto::CookieSigner* signer,
                               RandomSource* random, const Clock* clock,
                               SessionPolicy policy, SessionEvents* events)
    : store_(store),
      sealer_(sealer),
      signer_(signer),
      random_(random),
      clock_(clock),
      policy_(std::move(policy)),
      events_(events != nullptr ? events : NoEvents()) {}

absl::StatusOr<SessionManager::CreateChoice> SessionManager::ChooseCreate(
    const CreateParams& params) const {
  const SessionLimits& limits = policy_.limits;
  RETURN_IF_ERROR(ValidateUserId(params.user_id, limits));
  RETURN_IF_ERROR(ValidateAttributes(params.attributes, limits));
  CreateChoice choice;
  ASSIGN_OR_RETURN(choice.idle_ttl,
                   ChooseTtl(params.idle_ttl, policy_.idle_ttl, "idle_ttl",
                             "idle TTL (SESSION_IDLE_TTL)"));
  ASSIGN_OR_RETURN(
      choice.absolute_ttl,
      ChooseTtl(params.absolute_ttl, policy_.absolute_ttl, "absolute_ttl",
                "absolute TTL (SESSION_ABSOLUTE_TTL)"));
  ASSIGN_OR_RETURN(choice.cap,
                   ChooseCap(params.user_id, params.max_sessions_per_user,
                             params.session_limit_policy, clock_->Now()));
  return choice;
}

absl::StatusOr<StoredSession> SessionManager::NewStored(const CreateParams& params,
                                                        const CreateChoice& choice) const {
  ASSIGN_OR_RETURN(std::string id, crypto::NewSessionId(*random_));
  ASSIGN_OR_RETURN(StoredSession stored,
                   SealSession(id, params.user_id, params.attributes));
  const absl::Time now = clock_->Now();
  stored.created = now;
  stored.last_access = now;
  stored.idle_ttl = choice.idle_ttl;
  stored.absolute_expiry = now + choice.absolute_ttl;
  stored.version = 1;
  RETURN_IF_ERROR(SealMetadata(&stored, params.user_id));
  return stored;
}

void SessionManager::ReportCreated(const StoredSession& stored, std::string_view user_id) {
  events_->SessionCreated();
  Report(ChangeKind::kCreated, stored.id, user_id);
  Step(ManagerStep::kWritten);
}

Session SessionManager::CreatedSession(const StoredSession& stored,
                                       const CreateParams& params) const {
  Session session;
  session.info = BareInfo(stored);
  session.info.user_id = params.user_id;
  session.attributes = params.attributes;
  session.cookie = signer_->Sign(stored.id);
  return session;
}

absl::Status SessionManager::IdsExhausted(const absl::Status& last) {
  return absl::InternalError(
      absl::StrCat("could not allocate a session id: ", last.message()));
}

absl::StatusOr<Session> SessionManager::Create(const CreateParams& params) {
  ASSIGN_OR_RETURN(const CreateChoice choice, ChooseCreate(params));
  // The revocation epoch before anything is written (see the header).
  const std::string tag = UserTag(params.user_id);
  uint64_t epoch = 0;
  if (!tag.empty()) {
    ASSIGN_OR_RETURN(epoch, store_->UserEpoch(tag));
  }
  Step(ManagerStep::kEpochRead);
  absl::Status last = absl::InternalError("no session id attempt made");
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    ASSIGN_OR_RETURN(StoredSession stored, NewStored(params, choice));
    last = WriteNew(stored, params.user_id, choice.cap);
    if (absl::IsAlreadyExists(last)) continue;
    RETURN_IF_ERROR(last);
    ReportCreated(stored, params.user_id);
    if (!tag.empty()) {
      RETURN_IF_ERROR(PostCheckEpoch(tag, epoch, stored, params.user_id));
    }
    return CreatedSession(stored, params);
  }
  return IdsExhausted(last);
}

// An anonymous Create in flight: what its attempts share.
struct SessionManager::AsyncCreate {
  CreateParams params;
  CreateChoice choice;
  int attempts = 0;
  absl::Status last = absl::InternalError("no session id attempt made");
  StoredSession stored;  // the attempt being written
  Done<Session> done;
};

void SessionManager::CreateAsync(const CreateParams& params, Done<Session> done) {
  if (!params.user_id.empty()) {
    // Not Create inline: the caller is on a thread that must not wait.
    return std::move(done)(absl::FailedPreconditionError(
        "internal: CreateAsync creates anonymous sessions only; a user's session takes the "
        "blocking Create"));
  }
  absl::StatusOr<CreateChoice> choice = ChooseCreate(params);
  if (!choice.ok()) return std::move(done)(choice.status());
  // No user: no epoch to read, no cap to count (ChooseCap answers none
  // without the store), so the write is the only store step.
  Step(ManagerStep::kEpochRead);
  auto create = std::make_unique<AsyncCreate>();
  create->params = params;
  create->choice = *std::move(choice);
  create->done = std::move(done);
  AttemptCreate(std::move(create));
}

void SessionManager::AttemptCreate(std::unique_ptr<AsyncCreate> create) {
  if (create->attempts++ == kCreateAttempts) {
    return std::move(create->done)(IdsExhausted(create->last));
  }
  absl::StatusOr<StoredSession> stored = NewStored(create->params, create->choice);
  if (!stored.ok()) return std::move(create->done)(stored.status());
  create->stored = *std::move(stored);
  const StoredSession& written = create->stored;  // stays put: `create` owns it
  store_->CreateAsync(written, [this, create = std::move(create)](absl::Status status) mutable {
    if (absl::IsAlreadyExists(status)) {
      create->last = std::move(status);
      return AttemptCreate(std::move(create));
    }
    if (!status.ok()) return std::move(create->done)(std::move(status));
    ReportCreated(create->stored, "");
    std::move(create->done)(CreatedSession(create->stored, create->params));
  });
}

absl::StatusOr<std::optional<SessionManager::CapChoice>> SessionManager::ChooseCap(
    std::string_view user_id, std::optional<uint32_t> asked,
    std::optional<SessionLimitPolicy> asked_policy, absl::Time now) const {
  const size_t configured = policy_.limits.max_sessions_per_user;
  // A call may tighten the operator's cap, never lift it.
  if (asked.has_value() && (*asked == 0 || (configured != 0 && *asked > configured))) {
    return WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            "max_sessions_per_user is ", *asked, "; it must be at least 1",
            configured != 0
                ? absl::StrCat(" and at most STATESIDE_MAX_SESSIONS_PER_USER (",
                               configured, ")")
                : "")),
        "INVALID_ARGUMENT", "max_sessions_per_user", "STATESIDE_MAX_SESSIONS_PER_USER");
  }
  const size_t max = asked.has_value() ? *asked : configured;
  if (user_id.empty() || max == 0) return std::nullopt;
  CapChoice choice;
  choice.cap.max_sessions = max;
  choice.cap.end_oldest =
      asked_policy.value_or(policy_.limits.session_limit_policy) ==
      SessionLimitPolicy::kEndOldest;
  choice.cap.tombstone_until = now + policy_.absolute_ttl;
  choice.limit = asked.has_value() ? "max_sessions_per_user"
                                   : "STATESIDE_MAX_SESSIONS_PER_USER";
  // Also prunes stale index entries, which the store's atomic count would
  // otherwise count (or end) as sessions: to end no more than needed, the
  // end-oldest policy walks the whole index (a count stops at `max`).
  ASSIGN_OR_RETURN(const size_t live,
                   CountLiveUpTo(user_id, now,
                                 choice.cap.end_oldest ? std::numeric_limits<size_t>::max()
                                                       : max));
  if (live >= max && !choice.cap.end_oldest) {
    events_->CapRefused("sessions_per_user");
    return SessionLimitError(absl::StrCat("the user has ", live,
                                          " live sessions; the limit is ", max),
                             choice.limit);
  }
  return choice;
}

absl::Status SessionManager::WriteNew(const StoredSession& stored,
                                      std::string_view user_id,
                                      const std::optional<CapChoice>& cap) const {
  if (!cap.has_value()) return store_->Create(stored);
  absl::StatusOr<std::vector<std::string>> ended =
      store_->CreateCapped(stored, cap->cap);
  if (absl::IsFailedPrecondition(ended.status())) {
    // A concurrent create took the last place after the count.
    events_->CapRefused("sessions_per_user");
    return SessionLimitError(std::string(ended.status().message()), cap->limit);
  }
  RETURN_IF_ERROR(ended.status());
  for (const std::string& id : *ended) {
    events_->SessionDestroyed();
    Report(ChangeKind::kDestroyed, id, user_id);
  }
  return absl::OkStatus();
}

ReadOptions SessionManager::ReadNow(bool touch) const {
  ReadOptions options;
  options.now = clock_->Now();
  options.touch = touch;
  options.touch_granularity = policy_.touch_granularity;
  return options;
}

absl::StatusOr<Session> SessionManager::OpenRead(
    std::string_view id, absl::StatusOr<StoredSession> stored,
    std::string cookie) const {
  if (!stored.ok()) return StoreReadError(stored.status(), id);
  absl::StatusOr<Session> session = OpenSession(*stored, std::move(cookie));
  if (!session.ok()) return NotFound(CauseOf(session.status()));
  return session;
}

absl::StatusOr<Session> SessionManager::Get(const SessionKey& key, bool touch) {
  std::string cookie;
  ASSIGN_OR_RETURN(std::string id, ResolveKey(key, &cookie));
  return OpenRead(id, store_->Get(id, ReadNow(touch)), std::move(cookie));
}

class SessionManager::AloneCall final : public SessionCall {
 public:
  explicit AloneCall(Done<Session> read) : read_(std::move(read)) {}
  explicit AloneCall(Done<SessionInfo> updated) : updated_(std::move(updated)) {}

  void SessionRead(absl::StatusOr<Session> session) override {
    Done<Session> read = std::move(read_);
    delete this;
    std::move(read)(std::move(session));
  }
  void SessionUpdated(absl::StatusOr<SessionInfo> info) override {
    Done<SessionInfo> updated = std::move(updated_);
    delete this;
    std::move(updated)(std::move(info));
  }

 private:
  Done<Session> read_;
  Done<SessionInfo> updated_;
};

void SessionManager::GetAsync(const SessionKey& key, bool touch,
                              Done<Session> done) {
  GetAsync(key, touch, new AloneCall(std::move(done)));
}

void SessionManager::GetAsync(const SessionKey& key, bool touch, SessionCall* call) {
  // Set only for a cookie of the primary secret: a reused call's last one goes.
  call->cookie_.clear();
  absl::StatusOr<std::string> id = ResolveKey(key, &call->cookie_);
  if (!id.ok()) return call->SessionRead(id.status());
  call->id = *std::move(id);
  call->options = ReadNow(touch);
  call->done = [this, call](absl::StatusOr<StoredSession> stored) {
    call->SessionRead(OpenRead(call->id, std::move(stored), std::move(call->cookie_)));
  };
  store_->GetAsync(call);
}

absl::Status SessionManager::PrepareUpdate(const SessionKey& key, const UpdateParams& params,
                                           std::string* id, Mutation* mutation) const {
  // Input checks first: they depend on nothing stored, so answer at once.
  const SessionLimits& limits = policy_.limits;
  RETURN_IF_ERROR(ValidateAttributes(params.set, limits));
  for (const std::string& name : params.remove) {
    RETURN_IF_ERROR(ValidateName(name, limits));
    if (params.set.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("attribute ", Quote(name), " is both set and deleted"));
    }
  }
  ASSIGN_OR_RETURN(*id, ResolveKey(key));
  mutation->now = clock_->Now();
  mutation->touch_granularity = policy_.touch_granularity;
  mutation->expected_version = params.expected_version;
  mutation->limits = MutationLimitsOf(limits);
  mutation->remove = params.remove;
  // Cleared, not replaced: a reused call keeps the vector's capacity.
  mutation->set.clear();
  mutation->set.reserve(params.set.size());
  for (const auto& [name, value] : params.set) {
    ASSIGN_OR_RETURN(std::string envelope, sealer_->Seal(*id, name, value));
    mutation->set.emplace_back(name, std::move(envelope));
  }
  return absl::OkStatus();
}

absl::StatusOr<SessionInfo> SessionManager::FinishUpdate(
    absl::StatusOr<StoredSession> updated,
    std::vector<std::string> names) const {
  if (absl::IsAborted(updated.status())) {
    events_->VersionConflict();
    return absl::AbortedError(
        "expected_version does not match the session's version");
  }
  if (!updated.ok()) return StoreReadError(updated.status());
  absl::StatusOr<SessionInfo> info = InfoOf(*updated);
  if (!info.ok()) return NotFound(CauseOf(info.status()));
  Report(ChangeKind::kUpdated, info->id, info->user_id, "", std::move(names));
  return info;
}

absl::StatusOr<SessionInfo> SessionManager::Update(const SessionKey& key,
                                                   const UpdateParams& params) {
  std::string id;
  Mutation mutation;
  RETURN_IF_ERROR(PrepareUpdate(key, params, &id, &mutation));
  return FinishUpdate(store_->Update(id, mutation), ChangedNames(params));
}

void SessionManager::UpdateAsync(const SessionKey& key,
                                 const UpdateParams& params,
                                 Done<SessionInfo> done) {
  UpdateAsync(key, params, new AloneCall(std::move(done)));
}

void SessionManager::UpdateAsync(const SessionKey& key, const UpdateParams& params,
                                 SessionCall* call) {
  if (absl::Status prepared = PrepareUpdate(key, params, &call->id, &call->mutation);
      !prepared.ok()) {
    return call->SessionUpdated(std::move(prepared));
  }
  call->names_ = ChangedNames(params);
  call->done = [this, call](absl::StatusOr<StoredSession> updated) {
    call->SessionUpdated(FinishUpdate(std::move(updated), std::move(call->names_)));
  };
  store_->UpdateAsync(call);
}

ReadOptions SessionManager::TouchNow() const {
  ReadOptions options;
  options.now = clock_->Now();
  options.touch = true;
  options.metadata_only = true;
  return options;
}

absl::StatusOr<SessionInfo> SessionManager::OpenTouched(
    std::string_view id, absl::StatusOr<StoredSession> stored) const {
  if (!stored.ok()) return StoreReadError(stored.status(), id);
  absl::StatusOr<SessionInfo> info = InfoOf(*stored);
  if (!info.ok()) return NotFound(CauseOf(info.status()));
  return info;
}

absl::StatusOr<SessionInfo> SessionManager::Touch(const SessionKey& key) {
  ASSIGN_OR_RETURN(std::string id, ResolveKey(key));
  return OpenTouched(id, store_->Get(id, TouchNow()));
}

void SessionManager::TouchAsync(const SessionKey& key, Done<SessionInfo> done) {
  absl::StatusOr<std::string> id = ResolveKey(key);
  if (!id.ok()) return std::move(done)(id.status());
  store_->GetAsync(*id, TouchNow(),
                   [this, id = *id, done = std::move(done)](
                       absl::StatusOr<StoredSession> stored) mutable {
                     std::move(done)(OpenTouched(id, std::move(stored)));
                   });
}

absl::StatusOr<bool> SessionManager::Destroyed(std::string_view id,
                                               absl::StatusOr<bool> existed) const {
  if (existed.ok() && *existed) {
    events_->SessionDestroyed();
    Report(ChangeKind::kDestroyed, id, "");
  }
  return existed;
}

absl::StatusOr<bool> SessionManager::Destroy(const SessionKey& key) {
  NotFoundCause cause;
  absl::StatusOr<std::string> id = ParseKey(key, &cause);
  if (!id.ok()) return false;
  const absl::Time now = clock_->Now();
  return Destroyed(*id, store_->Destroy(*id, now, now + policy_.absolute_ttl));
}

void SessionManager::DestroyAsync(const SessionKey& key, Done<bool> done) {
  NotFoundCause cause;
  absl::StatusOr<std::string> id = ParseKey(key, &cause);
  if (!id.ok()) return std::move(done)(false);
  const absl::Time now = clock_->Now();
  store_->DestroyAsync(*id, now, now + policy_.absolute_ttl,
                       [this, id = *id, done = std::move(done)](absl::StatusOr<bool> existed) mutable {
                         std::move(done)(Destroyed(id, std::move(existed)));
                       });
}

absl::StatusOr<Session> SessionManager::Regenerate(
    const SessionKey& key, const RegenerateParams& params) {
  if (params.user_id.has_value()) {
    RETURN_IF_ERROR(ValidateUserId(*params.user_id, policy_.limits));
  }
  // A bad cap is refused whether or not the owner turns out to change.
  RETURN_IF_ERROR(ChooseCap("", params.max_sessions_per_user, std::nullopt,
                            clock_->Now())
                      .status());
  ASSIGN_OR_RETURN(std::string old_id, ResolveKey(key));
  for (int attempt = 0; attempt < kRegenerateAttempts; ++attempt) {
    ReadOptions options;
    options.now = clock_->Now();
    options.touch = false;
    absl::StatusOr<StoredSession> old = store_->Get(old_id, options);
    if (!old.ok()) return StoreReadError(old.status(), old_id);
    absl::StatusOr<Session> opened = OpenSession(*old);
    if (!opened.ok()) return NotFound(CauseOf(opened.status()));
    Session session = *std::move(opened);

    // Login: an anonymous session becomes the user's. Handing one user's
    // session (and its attributes) to another is refused: that is a logout
    // and a new session.
    const bool new_owner =
        params.user_id.has_value() && *params.user_id != session.info.user_id;
    if (new_owner && !session.info.user_id.empty()) {
      return WithReason(
          absl::FailedPreconditionError(
              "user_id: the session belongs to another user; only an "
              "anonymous session can be given an owner"),
          "SESSION_OWNED", "user_id");
    }
    if (new_owner) session.info.user_id = *params.user_id;
    std::optional<CapChoice> cap;
    std::string tag;
    uint64_t epoch = 0;
    if (new_owner) {
      ASSIGN_OR_RETURN(cap, ChooseCap(session.info.user_id,
                                      params.max_sessions_per_user,
                                      params.session_limit_policy, options.now));
      // As Create's C1 (see DestroyUserSessions): the original is not the
      // user's, so a logout everywhere cannot follow it to the copy.
      tag = UserTag(session.info.user_id);
      ASSIGN_OR_RETURN(epoch, store_->UserEpoch(tag));
    }

    absl::Status created = absl::InternalError("no session id attempt made");
    std::string new_id;
    StoredSession fresh;
    for (int id_attempt = 0; id_attempt < kCreateAttempts; ++id_attempt) {
      ASSIGN_OR_RETURN(new_id, crypto::NewSessionId(*random_));
      // Re-sealed: the associated data binds each envelope to its session id.
      ASSIGN_OR_RETURN(fresh, SealSession(new_id, session.info.user_id,
                                          session.attributes));
      fresh.created = old->created;
      fresh.last_access = std::max(old->last_access, options.now);
      fresh.idle_ttl = old->idle_ttl;
      fresh.absolute_expiry = old->absolute_expiry;
      fresh.version = old->version;
      // A new seal: its associated data names the new id.
      RETURN_IF_ERROR(SealMetadata(&fresh, session.info.user_id));
      created = WriteNew(fresh, session.info.user_id, cap);
      if (!absl::IsAlreadyExists(created)) break;
    }
    RETURN_IF_ERROR(created);
    Step(ManagerStep::kWritten);
    if (new_owner && !tag.empty()) {
      // A logout everywhere of the new owner since the epoch read ends the
      // copy (it is indexed by now). Checked before the old id goes: should
      // the epoch be unreadable, the copy goes and the anonymous session
      // (the cart) stays as it was, for a retry.
      RETURN_IF_ERROR(PostCheckEpoch(tag, epoch, fresh, session.info.user_id));
    }

    // The old id goes only if it still holds exactly what was copied; the
    // same script tombstones it (fixation defence) and names the copy as its
    // successor for a concurrent DestroyUserSessions.
    const absl::Status retired = store_->Retire(
        old_id, old->version, new_id, options.now, old->absolute_expiry);
    if (!retired.ok()) {
      // The copy is stale (an Update landed on the old id) or orphaned (the
      // old id is gone): it must not outlive this call. Best effort.
      (void)store_->Destroy(new_id, options.now, old->absolute_expiry);
      if (absl::IsAborted(retired)) continue;
      return StoreReadError(retired);
    }
    events_->SessionCreated();
    events_->SessionDestroyed();
    Report(ChangeKind::kRegenerated, new_id, session.info.user_id, old_id);
    Step(ManagerStep::kRetired);

    std::string user_id = std::move(session.info.user_id);
    session.info = BareInfo(fresh);
    session.info.user_id = std::move(user_id);
    session.cookie = signer_->Sign(new_id);
    return session;
  }
  events_->VersionConflict();
  return absl::AbortedError(
      "the session changed during every attempt to regenerate it; try again");
}

absl::StatusOr<UserSessionsPage> SessionManager::ListUserSessionsPage(
    std::string_view user_id, std::string_view page_token,
    uint32_t page_size) {
  RETURN_IF_ERROR(ValidateRequiredUserId(user_id, policy_.limits));
  ASSIGN_OR_RETURN(absl::Time after, ParsePageToken(page_token));
  if (page_size == 0) page_size = kDefaultUserPageSize;
  page_size = std::min(page_size, kMaxUserPageSize);
  ASSIGN_OR_RETURN(WalkedPage walked,
                   WalkUser(user_id, clock_->Now(), after, page_size));
  UserSessionsPage page;
  page.sessions = std::move(walked.sessions);
  if (walked.more) page.next_page_token = PageToken(walked.last);
  return page;
}

absl::StatusOr<std::vector<SessionInfo>> SessionManager::ListUserSessions(
    std::string_view user_id) {
  std::vector<SessionInfo> out;
  std::string token;
  do {
    ASSIGN_OR_RETURN(UserSessionsPage page,
                     ListUserSessionsPage(user_id, token, kMaxUserPageSize));
    out.insert(out.end(), std::make_move_iterator(page.sessions.begin()),
               std::make_move_iterator(page.sessions.end()));
    token = std::move(page.next_page_token);
  } while (!token.empty());
  return out;
}

absl::StatusOr<uint32_t> SessionManager::DestroyUserSessions(
    std::string_view user_id, const std::optional<SessionKey>& keep) {
  RETURN_IF_ERROR(ValidateRequiredUserId(user_id, policy_.limits));
  std::string keep_id;
  if (keep.has_value()) {
    NotFoundCause cause;
    absl::StatusOr<std::string> parsed = ParseKey(*keep, &cause);
    if (parsed.ok()) keep_id = *std::move(parsed);
  }
  const absl::Time now = clock_->Now();
  // First the epoch of every tag a session of the user may be indexed under:
  // a Create that read an older epoch retires its own session (see the
  // header); only then the listing.
  for (const crypto::Keyring::Key& key : sealer_->keyring().keys()) {
    RETURN_IF_ERROR(store_->AdvanceUserEpoch(
        crypto::Keyring::Blind(key, kUserIndexPurpose, user_id), now,
        now + policy_.absolute_ttl));
  }
  uint32_t destroyed = 0;
  absl::Time after = absl::InfinitePast();
  while (true) {
    ASSIGN_OR_RETURN(WalkedPage page,
                     WalkUser(user_id, now, after, kDefaultUserPageSize,
                              /*for_destroy=*/true));
    Step(ManagerStep::kListed);
    for (const SessionInfo& info : page.sessions) {
      if (info.id == keep_id) continue;
      ASSIGN_OR_RETURN(bool existed,
                       DestroyFollowing(info.id, user_id, keep_id, true, now,
                                        info.absolute_expiry));
      destroyed += existed ? 1 : 0;
    }
    for (const std::string& id : page.successors) {
      ASSIGN_OR_RETURN(bool existed,
                       DestroyFollowing(id, user_id, keep_id, false, now,
                                        now + policy_.absolute_ttl));
      destroyed += existed ? 1 : 0;
    }
    if (!page.more) return destroyed;
    after = page.last;
  }
}

absl::StatusOr<bool> SessionManager::DestroyFollowing(
    std::string id, std::string_view user_id, const std::string& keep_id,
    bool verified, absl::Time now, absl::Time tombstone_until) {
  for (int hop = 0; hop <= kMaxSuccessorHops; ++hop) {
    if (id.empty() || id == keep_id) return false;
    if (!verified) {
      // A successor met in the index carries no proof of its user.
      ReadOptions options;
      options.now = now;
      options.touch = false;
      options.metadata_only = true;
      absl::StatusOr<StoredSession> stored = store_->Get(id, options);
      if (stored.ok()) {
        absl::StatusOr<std::string> owner = OwnerOf(*stored);
        if (!owner.ok() || *owner != user_id) return false;
        verified = true;
      } else if (!absl::IsNotFound(stored.status())) {
        return stored.status();
      }
    }
    if (verified) {
      ASSIGN_OR_RETURN(bool existed, store_->Destroy(id, now, tombstone_until));
      if (existed) {
        events_->SessionDestroyed();
        Report(ChangeKind::kDestroyed, id, user_id);
        return true;
      }
    }
    // No longer live: a Regenerate may have moved it after the listing.
    ASSIGN_OR_RETURN(id, store_->Successor(id));
  }
  return absl::AbortedError(
      "a session of the user kept being regenerated during the logout; try "
      "again");
}

absl::Status SessionManager::PostCheckEpoch(const std::string& tag,
                                            uint64_t epoch,
                                            const StoredSession& created,
                                            std::string_view user_id) {
  absl::StatusOr<uint64_t> now_epoch = store_->UserEpoch(tag);
  if (now_epoch.ok() && *now_epoch == epoch) return absl::OkStatus();
  // A logout-everywhere began after the epoch read and may have listed the
  // index before this session entered it: the session was created, then
  // logged out. An unreadable epoch proves nothing, so it also goes.
  const absl::Time now = clock_->Now();
  absl::StatusOr<bool> destroyed =
      store_->Destroy(created.id, now, created.absolute_expiry);
  if (!destroyed.ok()) return destroyed.status();
  if (*destroyed) {
    events_->SessionDestroyed();
    Report(ChangeKind::kDestroyed, created.id, user_id);
  }
  return now_epoch.status();
}

std::string SessionManager::UserTag(std::string_view user_id) const {
  if (user_id.empty()) return "";
  return crypto::Keyring::Blind(sealer_->keyring().primary(), kUserIndexPurpose,
                                user_id);
}

void SessionManager::Report(ChangeKind kind, std::string_view id,
                            std::string_view user_id,
                            std::string_view previous_id,
                            std::vector<std::string> attributes) const {
  if (changes_ == nullptr) return;
  SessionChange change;
  change.kind = kind;
  change.session_id = std::string(id);
  change.user_id = std::string(user_id);
  change.previous_id = std::string(previous_id);
  change.attributes = std::move(attributes);
  change.time = clock_->Now();
  changes_->OnChange(std::move(change));
}

void SessionManager::ReportExpired(const StoredSession& stored) const {
  if (changes_ == nullptr) return;
  // An owner that does not open is reported unknown: the expiry stands.
  absl::StatusOr<std::string> owner = OwnerOf(stored);
  Report(ChangeKind::kExpired, stored.id, owner.ok() ? *owner : "");
}

void SessionManager::SetStepHookForTesting(
    absl::AnyInvocable<void(ManagerStep)> hook) {
  step_hook_ = std::move(hook);
}

void SessionManager::Step(ManagerStep step) {
  if (step_hook_) step_hook_(step);
}

absl::StatusOr<std::string> SessionManager::ParseKey(
    const SessionKey& key, NotFoundCause* cause, std::string* cookie) const {
  *cause = NotFoundCause::kMalformedKey;
  if (key.kind == SessionKey::Kind::kId) {
    if (!crypto::IsWellFormedSessionId(key.value)) return SessionNotFound();
    return key.value;
  }
  // A cookie: tell a malformed one from a forged one for the metrics only.
  if (!LooksLikeCookie(key.value)) return SessionNotFound();
  bool primary = false;
  absl::StatusOr<std::string> id = signer_->Verify(key.value, &primary);
  if (!id.ok() || !crypto::IsWellFormedSessionId(*id)) {
    *cause = NotFoundCause::kBadSignature;
    return SessionNotFound();
  }
  // Signing is deterministic: a cookie of the primary secret is the one a
  // read would sign again, so it is answered as given (cookie.h).
  if (cookie != nullptr && primary) *cookie = key.value;
  return id;
}

absl::StatusOr<std::string> SessionManager::ResolveKey(
    const SessionKey& key, std::string* cookie) const {
  NotFoundCause cause;
  absl::StatusOr<std::string> id = ParseKey(key, &cause, cookie);
  if (!id.ok()) return NotFound(cause);
  return id;
}

absl::Status SessionManager::NotFound(NotFoundCause cause) const {
  events_->SessionNotFound(cause);
  return SessionNotFound();
}

absl::Status SessionManager::StoreReadError(const absl::Status& status,
                                            std::string_view id) const {
  if (IsExpiredNotFound(status)) {
    events_->SessionExpired();
    if (!id.empty()) Report(ChangeKind::kExpired, id, "");
  }
  if (absl::IsNotFound(status)) return NotFound(NotFoundCause::kUnknown);
  return status;
}

absl::StatusOr<std::string> SessionManager::OpenValue(
    crypto::Sealer::Opener& opener, std::string_view id, std::string_view name,
    std::string_view envelope) const {
  crypto::OpenFailure failure = crypto::OpenFailure::kMalformed;
  absl::StatusOr<crypto::Opened> opened =
      opener.Open(id, name, envelope, &failure);
  if (!opened.ok()) {
    events_->DecryptFailed(crypto::OpenFailureName(failure));
    return SessionNotFound();
  }
  events_->KeyUsedForRead(opened->key_id);
  return std::move(opened->plaintext);
}

absl::StatusOr<std::string> SessionManager::OwnerOf(
    const StoredSession& stored, crypto::Sealer::Opener& opener) const {
  if (stored.user_envelope.empty()) return std::string();
  return OpenValue(opener, stored.id, kUserEnvelopeName, stored.user_envelope);
}

absl::StatusOr<std::string> SessionManager::OwnerOf(
    const StoredSession& stored) const {
  crypto::Sealer::Opener opener(*sealer_);
  return OwnerOf(stored, opener);
}

absl::StatusOr<SessionInfo> SessionManager::InfoOf(
    const StoredSession& stored, crypto::Sealer::Opener& opener) const {
  SessionInfo info = BareInfo(stored);
  ASSIGN_OR_RETURN(info.user_id, OwnerOf(stored, opener));
  RETURN_IF_ERROR(CheckMetadataSeal(stored, info.user_id, opener));
  return info;
}

absl::StatusOr<SessionInfo> SessionManager::InfoOf(
    const StoredSession& stored) const {
  crypto::Sealer::Opener opener(*sealer_);
  return InfoOf(stored, opener);
}

absl::StatusOr<Session> SessionManager::OpenSession(
    const StoredSession& stored, std::string cookie) const {
  // One opener for the read: the user id, the metadata seal and the values
  // mostly share a sealing epoch's data key, keyed once (envelope.h).
  crypto::Sealer::Opener opener(*sealer_);
  Session session;
  ASSIGN_OR_RETURN(session.info, InfoOf(stored, opener));
  session.attributes.reserve(stored.attributes.size());
  for (const auto& [name, envelope] : stored.attributes) {
    ASSIGN_OR_RETURN(std::string value,
                     OpenValue(opener, stored.id, name, envelope));
    session.attributes.emplace(name, std::move(value));
  }
  session.cookie = cookie.empty() ? signer_->Sign(stored.id) : std::move(cookie);
  return session;
}

absl::StatusOr<StoredSession> SessionManager::SealSession(
    const std::string& id, std::string_view user_id,
    const absl::flat_hash_map<std::string, std::string>& attributes) const {
  StoredSession stored;
  stored.id = id;
  if (!user_id.empty()) {
    stored.user_tag = UserTag(user_id);
    ASSIGN_OR_RETURN(stored.user_envelope,
                     sealer_->Seal(id, kUserEnvelopeName, user_id));
  }
  size_t total = 0;
  for (const auto& [name, value] : attributes) {
    ASSIGN_OR_RETURN(std::string envelope, sealer_->Seal(id, name, value));
    total += name.size() + envelope.size();
    stored.attributes.emplace(name, std::move(envelope));
  }
  const size_t limit = policy_.limits.max_total_bytes;
  if (limit != 0 && total > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("the session would hold ", total,
                     " bytes; the limit (max_total_bytes) is ", limit));
  }
  return stored;
}

absl::Status SessionManager::SealMetadata(StoredSession* stored,
                                          std::string_view user_id) const {
  ASSIGN_OR_RETURN(stored->metadata_seal,
                   SealSessionMetadata(*sealer_, *stored, user_id));
  return absl::OkStatus();
}

absl::Status SessionManager::CheckMetadataSeal(
    const StoredSession& stored, std::string_view user_id,
    crypto::Sealer::Opener& opener) const {
  // The session id is a credential: never logged.
  if (stored.metadata_seal.empty()) {
    spdlog::warn(
        "session refused: no metadata seal (changed in the store, or written "
        "by an earlier release that did not seal metadata)");
    return SealRefused();
  }
  crypto::OpenFailure failure = crypto::OpenFailure::kMalformed;
  absl::StatusOr<crypto::Opened> opened = opener.Open(
      stored.id, kMetadataSealName, stored.metadata_seal, &failure);
  if (!opened.ok()) {
    events_->DecryptFailed(crypto::OpenFailureName(failure));
    spdlog::warn("session refused: its metadata seal did not open ({})",
                 crypto::OpenFailureName(failure));
    // A key mismatch is a configuration error, not tampering: counted as an
    // envelope that did not open.
    if (failure == crypto::OpenFailure::kKeyMismatch) {
      return SessionNotFound();
    }
    return SealRefused();
  }
  // Not counted in KeyUsedForRead: that counts the stored values (user id,
  // attributes), and the seal adds nothing to what those already show.
  if (opened->plaintext != MetadataPlaintext(stored, user_id)) {
    spdlog::warn(
        "session refused: created, idle TTL, absolute expiry or user in the "
        "store differ from its metadata seal (changed in the store)");
    return SealRefused();
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> SessionManager::CountLiveUpTo(std::string_view user_id,
                                                    absl::Time now,
                                                    size_t cap) const {
  size_t count = 0;
  absl::Time after = absl::InfinitePast();
  for (;;) {
    ASSIGN_OR_RETURN(WalkedPage walked,
                     WalkUser(user_id, now, after, std::min<size_t>(cap, kMaxUserPageSize)));
    count += walked.sessions.size();
    if (count >= cap || !walked.more) return count;
    after = walked.last;
  }
}

absl::StatusOr<SessionManager::WalkedPage> SessionManager::WalkUser(
    std::string_view user_id, absl::Time now, absl::Time after, size_t limit,
    bool for_destroy) const {
  // Every key's tag: sessions created before a rotation are indexed under the
  // tag of the key that was primary then. The oldest key's first, the
  // primary's last: a Regenerate moves a session from an older tag to the
  // primary's, writing the copy before it retires the old id, so a session
  // found gone from an older tag's page has its copy in the primary's.
  std::vector<UserIndexPage> pages;
  absl::Time bound = absl::InfiniteFuture();
  const std::vector<crypto::Keyring::Key>& keys = sealer_->keyring().keys();
  for (auto key = keys.rbegin(); key != keys.rend(); ++key) {
    const std::string tag =
        crypto::Keyring::Blind(*key, kUserIndexPurpose, user_id);
    ASSIGN_OR_RETURN(UserIndexPage page,
                     store_->ListByUserPage(tag, now, after, limit));
    // Past the end of the shortest page, another tag's page may miss
    // entries: those wait for the next page.
    if (page.more) bound = std::min(bound, page.last);
    pages.push_back(std::move(page));
  }
  WalkedPage out;
  out.more = bound != absl::InfiniteFuture();
  out.last = bound;
  absl::flat_hash_set<std::string> seen;
  for (UserIndexPage& page : pages) {
    for (const StoredSession& stored : page.sessions) {
      if (stored.absolute_expiry > bound || !seen.insert(stored.id).second) {
        continue;
      }
      // Undecryptable (already reported) or a blind-index collision: not
      // this user's session, so it must not be listed or destroyed. To be
      // destroyed, the sealed owner is proof enough: a session whose
      // metadata seal is missing (written by an earlier release, still
      // served by its instances during a rolling upgrade) or broken is
      // still logged out.
      absl::StatusOr<SessionInfo> info = InfoOf(stored);
      if (for_destroy && !info.ok()) {
        absl::StatusOr<std::string> owner = OwnerOf(stored);
        if (owner.ok()) {
          info = BareInfo(stored);
          info->user_id = *std::move(owner);
        }
      }
      if (!info.ok() || info->user_id != user_id) continue;
      out.sessions.push_back(*std::move(info));
    }
    for (std::string& id : page.successors) {
      out.successors.push_back(std::move(id));
    }
  }
  std::sort(out.sessions.begin(), out.sessions.end(),
            [](const SessionInfo& a, const SessionInfo& b) {
              return std::tie(a.absolute_expiry, a.id) <
                     std::tie(b.absolute_expiry, b.id);
            });
  return out;
}

}  // namespace stateside::session
