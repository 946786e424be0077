// moat-dns: the embedded DNS resolver of Moat's user-defined networks. A separate, confined
// process (no privilege, no file system, a seccomp allowlist) started by moatd's core, because it
// parses packets that containers send. The core makes every socket it uses and passes them in;
// the resolver never opens anything.
//
// Control channel: fd 3, a SOCK_SEQPACKET socket to the core. Each message is one JSON object;
// fds ride along with SCM_RIGHTS. Messages from the core (no replies; errors are logged to
// stderr and the message is ignored; the channel closing ends the resolver):
//   {"op":"listen","network":"<id>","subnet":"172.18.0.0/16"}  + fds [udp, tcp]
//       UDP socket bound to <gateway>:53, TCP socket bound and listening there. Queries are
//       answered only when their source address is inside `subnet` (others are dropped), so a
//       container of another network learns nothing.
//   {"op":"unlisten","network":"<id>"}          closes that network's sockets
//   {"op":"records","network":"<id>","records":{"web":["172.18.0.2"],"db":["172.18.0.3","fd00::3"]}}
//       replaces that network's names (container names, short ids, aliases; case-insensitive,
//       with or without a trailing dot). A/AAAA queries for them are answered authoritatively
//       (TTL 600); a name known with no address of the asked type gets an empty NOERROR; PTR
//       queries for the addresses are answered with the first name.
//   {"op":"upstream","servers":["10.255.255.53"]} + fds [udp4, udp6]
//       Other names are forwarded over the given unbound UDP sockets (in the host's namespace;
//       at most one per address family, any order) to these servers (port 53), the first
//       that answers within 2 s wins, the answer is relayed with the client's query id. A
//       reply counts only when it comes from port 53 of a server the query was sent to, with
//       the id used for it. No servers: SERVFAIL for names not known. The sockets are
//       replaced by each "upstream" message and also carry client-upstream's forwarding, so
//       they are passed even with an empty server list; a server of a family without a
//       socket is skipped (SERVFAIL when none is left). Before the first "upstream" message
//       there are no sockets and nothing is forwarded.
//   {"op":"client-upstream","network":"<id>","client":"172.18.0.5","servers":["10.9.9.9"]}
//       (no fds) A container's own servers (docker run --dns): names not known that `client`
//       (the query's source address; queries from outside the network's subnet get no answer
//       at all) asks in `network` are forwarded to these servers instead of the global ones,
//       over the "upstream" sockets. Empty `servers` removes the override. Overrides stay
//       across "listen" and "records" of that network and are dropped by its "unlisten".
#pragma once

namespace moat::net::dns {
inline constexpr int kControlFd = 3;
}  // namespace moat::net::dns
