// The chat service: rooms, nicks, private messages, for humans on telnet and for load tests.
//
// Each connection is two hibernating goroutines (GoHibernating): its reader reads, parses and acts,
// and its writer drains the connection's bounded output queue (Outbox) to the socket. Each holds a
// stack only while it has work: the reader while its client's input is being handled, the writer
// while output is queued or being written, so a connection with nothing to read and nothing to
// send holds none. Delivering a message is queueing it (server/outbox.h), never writing to someone
// else's socket, so a reader that falls behind never slows the room: a reader over --out-queue for
// longer than --out-queue-grace that is not draining, or over --out-queue-hard at all, is cut off
// ("! too slow"); when all queues together reach --out-memory, connections that post wait before
// their next line until the queues have drained.
//
// State: the Hub's mutex guards nicks and room membership changes; each room's own mutex guards
// its member list, so messages in different rooms fan out in parallel. Lock order: hub, then
// room. A client's `room` and `nick` change only on its own handler goroutine, under the hub's
// mutex (others read them under it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "greenline/mutex.h"
#include "greenline/net.h"
#include "server/config.h"
#include "server/outbox.h"
#include "server/server.h"

namespace greenline::server {

class ChatClient;

struct ChatRoom {
  explicit ChatRoom(std::string n) : name(std::move(n)) {}
  const std::string name;  // "#lobby"
  Mutex mu;
  std::vector<ChatClient*> members GL_GUARDED_BY(mu);
};

class ChatService;

class ChatHub {
 public:
  explicit ChatHub(Metrics& metrics);
  ~ChatHub();

  // A new client: a unique guest-N nick, into #lobby; sends the welcome, tells the lobby.
  void Enter(ChatClient* c);
  // The client leaves for good; its room hears "* nick left #room" (+ " (reason)" when given)
  // unless `quiet` (shutdown: everyone is leaving).
  void Exit(ChatClient* c, std::string_view reason, bool quiet);

  void Say(ChatClient* c, std::string_view text);
  void Me(ChatClient* c, std::string_view text);
  void Nick(ChatClient* c, std::string_view nick);
  void Join(ChatClient* c, std::string_view room);  // canonical "#name"
  void PrivateMessage(ChatClient* c, std::string_view to, std::string_view text);
  void Who(ChatClient* c);
  void Rooms(ChatClient* c);

  // The `max` biggest rooms as (name, members), biggest first, equal ones by name; how many rooms
  // there are. Takes the hub's lock and each room's in turn (the status page, once a second).
  size_t BiggestRooms(size_t max, std::vector<std::pair<std::string, size_t>>* out);

 private:
  static std::string Key(std::string_view nick);
  ChatRoom* RoomLocked(std::string_view name) GL_REQUIRES(mu_);
  void MoveLocked(ChatClient* c, ChatRoom* to, std::string_view reason, bool quiet)
      GL_REQUIRES(mu_);
  // Queues `text` to every member of `room` but `except`.
  void BroadcastLocked(ChatRoom* room, std::string text, const ChatClient* except)
      GL_REQUIRES(room->mu);

  Metrics& metrics_;
  Mutex mu_;
  uint64_t next_guest_ GL_GUARDED_BY(mu_) = 1;
  std::unordered_map<std::string, ChatClient*> nicks_ GL_GUARDED_BY(mu_);      // by lower-case nick
  std::map<std::string, std::unique_ptr<ChatRoom>> rooms_ GL_GUARDED_BY(mu_);  // by NameKey
};

// The chat service: owns the rooms and nicks (its ChatHub) and serves each connection with two
// hibernating goroutines (see the top of this file).
class ChatService final : public Service {
 public:
  // `limit` (may be null) is shared with the other line services; `config` must outlive this.
  ChatService(const Config& config, Metrics& metrics, ConnLimit* limit);

  const Config& config() const { return config_; }
  OutputBudget& budget() { return budget_; }
  // ChatHub::BiggestRooms.
  size_t BiggestRooms(size_t max, std::vector<std::pair<std::string, size_t>>* out) {
    return hub_.BiggestRooms(max, out);
  }

 protected:
  void Serve(net::Conn conn, ConnTicket ticket) override;

 private:
  const Config& config_;
  OutputBudget budget_;  // before hub_: the connections' outboxes count in it
  ChatHub hub_;
};

}  // namespace greenline::server
