// The chat service: rooms, nicks, private messages, for humans on telnet and for load tests.
//
// Each connection is two hibernating goroutines (GoHibernating): its reader reads, parses and acts,
// and its writer drains the connection's bounded output queue (Outbox) to the socket. Each holds a
// stack only while it has work: the reader while its client's input is being handled, the writer
// while output is queued or being written, so a connection with nothing to read and nothing to
// send holds none. Delivering a message is queueing it, never writing to someone else's socket, so
// a reader that falls behind never slows the room: past --out-queue bytes it is cut off
// ("! too slow").
//
// State: the Hub's mutex guards nicks and room membership changes; each room's own mutex guards
// its member list, so messages in different rooms fan out in parallel. Lock order: hub, then
// room. A client's `room` and `nick` change only on its own handler goroutine, under the hub's
// mutex (others read them under it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "greenline/mutex.h"
#include "greenline/net.h"
#include "greenline/notifier.h"
#include "server/config.h"
#include "server/server.h"

namespace greenline::server {

// One line on its way to one or more clients, shared by every queue it is in (a message to a room
// of 1,000 is formatted and allocated once).
struct OutMessage {
  std::atomic<int32_t> refs;
  std::string text;  // with its "\r\n"

  static OutMessage* Make(std::string text, int32_t refs);
  void Unref() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

// A connection's output queue: any goroutine pushes, the connection's writer drains. Bytes count
// from the push until the writer has written them, so a stalled socket holds at most `limit`.
class Outbox {
 public:
  explicit Outbox(size_t limit);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  enum class Push { kQueued, kOverflow, kDropped };
  // Queues `m`, taking one of its references. kOverflow: this push went past the limit (once per
  // outbox; the message is dropped and the caller cuts the reader off). kDropped: closed or
  // overflowed before; the message is dropped. Dropped messages' references are released.
  Push Put(OutMessage* m);
  enum class Taken { kBatch, kEmpty, kDone };
  // Takes what is queued, without waiting. kBatch: it is in `batch` (which must be empty: it is
  // swapped with the queue); the caller writes the messages, then calls Written(sum of their
  // Cost()) and Unrefs them. kEmpty: nothing now; wait with ResumeWhenReady(), then try again.
  // kDone: closed and drained, or overflowed (what is queued then is never written).
  Taken TryTake(std::vector<OutMessage*>* batch);
  // What the writer's step returns to wait, without a stack, until a push or Close may have
  // changed what TryTake says. A push between TryTake's kEmpty and this wait is not lost: the next
  // step runs at once. The writer may also wake to find nothing (the push it was told of went out
  // in the batch before): it tries again and waits again.
  Resume ResumeWhenReady() { return ready_.ResumeWhenNotified(); }
  void Written(size_t cost);
  // What a queued message counts against the limit: its bytes plus what holding it costs (its
  // record and the queue slot), so a flood of tiny messages is bounded by memory, not by bytes.
  static size_t Cost(const OutMessage* m) { return m->text.size() + 64; }
  // No more pushes; the writer drains what is queued, then TryTake says kDone.
  void Close();
  bool overflowed() const;

 private:
  const size_t limit_;
  mutable Mutex mu_;
  std::vector<OutMessage*> queue_ GL_GUARDED_BY(mu_);
  size_t bytes_ GL_GUARDED_BY(mu_) = 0;  // Cost() of what is queued or being written
  bool closed_ GL_GUARDED_BY(mu_) = false;
  bool overflow_ GL_GUARDED_BY(mu_) = false;
  // Notified after every push that the writer must see (and on Close): the writer takes everything
  // queued each time it wakes, so one wake-up stands for any number of pushes.
  Notifier ready_;
};

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

 protected:
  void Serve(net::Conn conn, ConnTicket ticket) override;

 private:
  const Config& config_;
  ChatHub hub_;
};

}  // namespace greenline::server
