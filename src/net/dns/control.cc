#include "net/dns/control.h"

#include <nlohmann/json.hpp>

namespace moat::net::dns {
namespace {

using Json = nlohmann::json;

Result<std::string> StringField(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string())
    return Fail(ErrorKind::kInvalidArgument, "control message: \"%s\" must be a string", key);
  return it->get<std::string>();
}

Result<std::string> NetworkField(const Json& obj) {
  MOAT_ASSIGN_OR_RETURN(std::string network, StringField(obj, "network"));
  if (network.empty())
    return Fail(ErrorKind::kInvalidArgument, "control message: empty \"network\"");
  return network;
}

Result<std::vector<IpAddr>> AddressList(const Json& list, const std::string& field) {
  if (!list.is_array())
    return Fail(ErrorKind::kInvalidArgument, "control message: %s must be a list", field.c_str());
  std::vector<IpAddr> out;
  for (const Json& item : list) {
    if (!item.is_string())
      return Fail(ErrorKind::kInvalidArgument, "control message: %s: expected strings",
                  field.c_str());
    MOAT_ASSIGN_OR_RETURN(IpAddr a, IpAddr::Parse(item.get<std::string>()));
    out.push_back(a);
  }
  return out;
}

Result<ControlMessage> Decode(const Json& j) {
  if (!j.is_object()) return Fail(ErrorKind::kInvalidArgument, "control message: not an object");
  MOAT_ASSIGN_OR_RETURN(std::string op, StringField(j, "op"));
  if (op == "listen") {
    ListenMessage m;
    MOAT_ASSIGN_OR_RETURN(m.network, NetworkField(j));
    MOAT_ASSIGN_OR_RETURN(std::string subnet, StringField(j, "subnet"));
    MOAT_ASSIGN_OR_RETURN(m.subnet, IpPrefix::Parse(subnet));
    return ControlMessage(std::move(m));
  }
  if (op == "unlisten") {
    UnlistenMessage m;
    MOAT_ASSIGN_OR_RETURN(m.network, NetworkField(j));
    return ControlMessage(std::move(m));
  }
  if (op == "records") {
    RecordsMessage m;
    MOAT_ASSIGN_OR_RETURN(m.network, NetworkField(j));
    auto it = j.find("records");
    if (it == j.end() || !it->is_object())
      return Fail(ErrorKind::kInvalidArgument, "control message: \"records\" must be an object");
    for (const auto& [name, addrs] : it->items()) {
      MOAT_ASSIGN_OR_RETURN(m.records[name], AddressList(addrs, "records." + name));
    }
    return ControlMessage(std::move(m));
  }
  if (op == "upstream") {
    UpstreamMessage m;
    auto it = j.find("servers");
    if (it == j.end())
      return Fail(ErrorKind::kInvalidArgument, "control message: \"servers\" missing");
    MOAT_ASSIGN_OR_RETURN(m.servers, AddressList(*it, "servers"));
    return ControlMessage(std::move(m));
  }
  if (op == "client-upstream") {
    ClientUpstreamMessage m;
    MOAT_ASSIGN_OR_RETURN(m.network, NetworkField(j));
    MOAT_ASSIGN_OR_RETURN(std::string client, StringField(j, "client"));
    MOAT_ASSIGN_OR_RETURN(m.client, IpAddr::Parse(client));
    auto it = j.find("servers");
    if (it == j.end())
      return Fail(ErrorKind::kInvalidArgument, "control message: \"servers\" missing");
    MOAT_ASSIGN_OR_RETURN(m.servers, AddressList(*it, "servers"));
    return ControlMessage(std::move(m));
  }
  return Fail(ErrorKind::kInvalidArgument, "control message: unknown op \"%s\"", op.c_str());
}

Json AddressesJson(const std::vector<IpAddr>& addrs) {
  Json list = Json::array();
  for (const IpAddr& a : addrs) list.push_back(a.ToString());
  return list;
}

struct Encoder {
  Json operator()(const ListenMessage& m) const {
    return {{"op", "listen"}, {"network", m.network}, {"subnet", m.subnet.ToString()}};
  }
  Json operator()(const UnlistenMessage& m) const {
    return {{"op", "unlisten"}, {"network", m.network}};
  }
  Json operator()(const RecordsMessage& m) const {
    Json records = Json::object();
    for (const auto& [name, addrs] : m.records) records[name] = AddressesJson(addrs);
    return {{"op", "records"}, {"network", m.network}, {"records", std::move(records)}};
  }
  Json operator()(const UpstreamMessage& m) const {
    return {{"op", "upstream"}, {"servers", AddressesJson(m.servers)}};
  }
  Json operator()(const ClientUpstreamMessage& m) const {
    return {{"op", "client-upstream"},
            {"network", m.network},
            {"client", m.client.ToString()},
            {"servers", AddressesJson(m.servers)}};
  }
};

}  // namespace

std::string EncodeControl(const ControlMessage& message) {
  try {
    return std::visit(Encoder{}, message).dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const std::exception&) {
    // Only allocation can throw here; allocation failure aborts elsewhere too.
    MOAT_CHECK(false);
  }
  return {};
}

Result<ControlMessage> DecodeControl(std::string_view text) {
  try {
    Json j = Json::parse(text);
    return Decode(j);
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInvalidArgument, "control message: invalid JSON: %s", e.what());
  }
}

}  // namespace moat::net::dns
