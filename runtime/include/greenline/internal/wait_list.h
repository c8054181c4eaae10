// WaitList: the intrusive FIFO of parked waiters that Sema, Cond and Semaphore keep under their
// own lock. Internal to runtime/sync.
//
// Nodes are the waiters' own records, living on their goroutines' stacks, with a `Node* next`
// member. The list only links and unlinks; the owner's lock guards it. Whoever unlinks a node and
// readies its goroutine must read what it needs from the node (its `next` included) before
// Ready(): the node may be gone as soon as its goroutine runs.
#pragma once

namespace greenline::internal {

template <class Node>
class WaitList {
 public:
  bool empty() const { return head_ == nullptr; }
  Node* front() const { return head_; }

  void PushBack(Node* n) {
    n->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
  }

  void PushFront(Node* n) {
    n->next = head_;
    head_ = n;
    if (tail_ == nullptr) tail_ = n;
  }

  // Unlinks and returns the first node (its `next` cleared), or nullptr.
  Node* PopFront() {
    Node* n = head_;
    if (n != nullptr) Remove(nullptr, n);
    return n;
  }

  // Unlinks `n`, whose predecessor is `prev` (nullptr when `n` is first); clears its `next`.
  void Remove(Node* prev, Node* n) {
    (prev != nullptr ? prev->next : head_) = n->next;
    if (tail_ == n) tail_ = prev;
    n->next = nullptr;
  }

  // Empties the list and returns its nodes, still linked through `next`.
  Node* TakeAll() {
    Node* all = head_;
    head_ = tail_ = nullptr;
    return all;
  }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
};

}  // namespace greenline::internal
