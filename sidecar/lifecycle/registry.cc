#include "sidecar/lifecycle/registry.h"

namespace stateside::lifecycle {

InstanceRecord RecordOf(const Instance& instance) {
  const InstanceIdentity& identity = instance.identity();
  InstanceRecord record;
  record.id = identity.id;
  record.hostname = identity.hostname;
  record.pid = identity.pid;
  record.start_time = identity.start_time;
  record.version = identity.version;
  record.drain_state = instance.drain_state();
  record.backend = instance.backend();
  record.admin_address = instance.admin_address();
  record.ready = instance.ready();
  return record;
}

}  // namespace stateside::lifecycle
