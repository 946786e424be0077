#pragma once

// A network's names for moat-dns: forward (name -> addresses) and reverse (address -> first
// name) lookups. A pure value; no system calls.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "net/ip.h"

namespace moat::net::dns {

// Lowercases `name` (ASCII) and removes one trailing dot: the form RecordTable keys use.
std::string NormalizeName(std::string_view name);

// "in-addr.arpa"/"ip6.arpa" name of `addr`, lowercase, without trailing dot
// ("2.0.18.172.in-addr.arpa").
std::string ReverseName(const IpAddr& addr);

class RecordTable {
 public:
  RecordTable() = default;

  // Builds the table from the core's map (names as given, any case, with or without trailing
  // dot). kInvalidArgument naming the entry for a name that is not a DNS host name
  // (empty, label longer than 63, name longer than 253, a character outside [A-Za-z0-9_-.],
  // an empty label) or an address of unset family. Two names that normalise to the same key
  // have their addresses merged. The reverse entry of an address is the first name (in the
  // map's order) that lists it.
  static Result<RecordTable> Build(const std::map<std::string, std::vector<IpAddr>>& names);

  // The addresses of `normalized_name` (see NormalizeName), or null if the name is unknown.
  const std::vector<IpAddr>* Find(std::string_view normalized_name) const;
  // The name (normalized) whose address has the reverse name `normalized_reverse`, or null.
  const std::string* FindReverse(std::string_view normalized_reverse) const;
  bool empty() const { return forward_.empty(); }

 private:
  std::map<std::string, std::vector<IpAddr>, std::less<>> forward_;
  std::map<std::string, std::string, std::less<>> reverse_;
};

}  // namespace moat::net::dns
