#pragma once

// config.json <-> oci::Spec. This is the JSON boundary of the oci library: decoding checks
// only the shape of the document (types, integer ranges, fields the value types cannot leave
// unset); the meaning is checked by validate.h.
//
// Decoding rules, shared by every Parse* function:
//  - Unknown keys are ignored (runtime-spec "Extensibility"), as runc does.
//  - A key whose value is null is treated as absent, as Go's encoding/json does.
//  - A key that appears twice in one object is an error: the last-wins rule of most decoders
//    lets two programs read the same file differently.
//  - Integers must be written as JSON integers (no "1.0", no "1e3") and fit the field's type;
//    int64 and uint64 fields accept their full ranges, so -1 and 18446744073709551615 decode.
//  - Numeric fields the value types cannot represent as absent (rlimit soft/hard, id mappings,
//    seccomp arg index/value, user uid/gid, device major/minor, ...) are required.
// Every failure is ErrorKind::kInvalidArgument with a message that starts with the document name
// and names the field path, e.g. "config.json: linux.resources.memory.limit: expected an
// integer" or "config.json: invalid JSON at line 3, column 5: ...".
//
// All functions are thread-safe; none is async-signal-safe (they allocate).

#include <string>
#include <string_view>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::oci {

// Decodes a config.json document (runtime-spec 1.0.0 .. 1.3.0, Linux fields). Error messages
// start with "config.json: ". Does not run ValidateSpec.
Result<Spec> ParseSpec(std::string_view json);

// Reads bundle_dir + "/config.json" and decodes it. A missing file gives kNotFound naming the
// path; other read failures keep the kind of the underlying errno.
Result<Spec> LoadSpec(const std::string& bundle_dir);

// Decodes a process object alone (`moat-runtime exec --process FILE`). Error messages start
// with "process.json: " followed by the field path inside the object ("args[0]").
Result<Process> ParseProcess(std::string_view json);

// Decodes a linux.resources object alone (`moat-runtime update --resources FILE`). Error
// messages start with "resources: " followed by the path inside the object ("memory.limit").
Result<Resources> ParseResources(std::string_view json);

// Decodes a linux.seccomp object alone (seccomp profiles on disk). Error messages start with
// "seccomp: " followed by the path inside the object ("syscalls[2].action").
Result<Seccomp> ParseSeccomp(std::string_view json);

// Encodes a Spec as pretty JSON (2-space indent, keys in the spec's order and spelling, a
// trailing newline). Absent optionals, empty optional strings, empty optional arrays and maps,
// and false optional booleans are omitted. ParseSpec(SpecToJson(s)) == s for every s whose
// strings are valid UTF-8 (invalid bytes are written as U+FFFD). Aborts only if allocation
// fails.
std::string SpecToJson(const Spec& spec);

// Same encoding rules, for a linux.seccomp, process or linux.resources object on its own.
std::string SeccompToJson(const Seccomp& seccomp);
std::string ProcessToJson(const Process& process);
std::string ResourcesToJson(const Resources& resources);

}  // namespace moat::oci
