// The SessionStore conformance suite, and the session rules' suite over it,
// on the embedded memory store.
#include <memory>

#include "sidecar/session/memory_store.h"
#include "tests/support/session_rules_conformance.h"
#include "tests/support/store_conformance.h"

namespace stateside::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Memory, SessionStoreConformanceTest,
    ::testing::Values(SessionStoreFactory{
        "memory", [] { return std::make_unique<session::MemorySessionStore>(1000); }}),
    SessionStoreFactoryName);

INSTANTIATE_TEST_SUITE_P(
    Memory, SessionRulesConformanceTest,
    ::testing::Values(SessionStoreFactory{
        "memory", [] { return std::make_unique<session::MemorySessionStore>(1000); }}),
    SessionStoreFactoryName);

}  // namespace
}  // namespace stateside::testing
