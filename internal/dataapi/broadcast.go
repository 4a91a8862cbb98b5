package dataapi

import (
	"sync"
	"sync/atomic"
)

// DefaultSubscriberBuffer is how many changes a subscriber may fall behind
// before it is dropped.
const DefaultSubscriberBuffer = 256

// Change is one change to a data class, as the updates websocket sends it.
type Change struct {
	Class           string         `json:"-"`
	Action          string         `json:"-"`
	Node            map[string]any `json:"node"`
	Cursor          string         `json:"cursor"`
	Filter          *string        `json:"filter"`
	OriginID        string         `json:"origin_id"`
	OriginIDType    string         `json:"origin_id_type"`
	OriginClassName *string        `json:"origin_class_name"`
	QueryID         string         `json:"query_id"`
	Hops            int            `json:"hops"`
}

// Broadcaster fans the changes of a membership's data classes out to their
// subscribers. Publishing never blocks: a subscriber whose buffer is full is
// dropped, and its channel closed, so one slow client cannot hold up writes
// or the other subscribers.
type Broadcaster struct {
	buffer int

	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}

	dropped atomic.Int64
}

// Subscription receives the changes of one class.
type Subscription struct {
	// C delivers the changes; it is closed when the subscription ends,
	// including when the subscriber fell too far behind.
	C <-chan Change

	c     chan Change
	class string
	b     *Broadcaster
	once  sync.Once
}

// NewBroadcaster returns a Broadcaster whose subscribers may fall buffer
// changes behind [DefaultSubscriberBuffer].
func NewBroadcaster(buffer int) *Broadcaster {
	if buffer <= 0 {
		buffer = DefaultSubscriberBuffer
	}
	return &Broadcaster{buffer: buffer, subs: map[string]map[*Subscription]struct{}{}}
}

// Subscribe starts receiving the changes of class.
func (b *Broadcaster) Subscribe(class string) *Subscription {
	c := make(chan Change, b.buffer)
	s := &Subscription{C: c, c: c, class: class, b: b}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[class] == nil {
		b.subs[class] = map[*Subscription]struct{}{}
	}
	b.subs[class][s] = struct{}{}
	return s
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	s.once.Do(func() {
		delete(s.b.subs[s.class], s)
		close(s.c)
	})
}

// Publish sends ch to every subscriber of its class.
func (b *Broadcaster) Publish(ch Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[ch.Class] {
		select {
		case s.c <- ch:
		default:
			s.closeLocked()
			b.dropped.Add(1)
		}
	}
}

// Subscribers returns how many subscriptions class has.
func (b *Broadcaster) Subscribers(class string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[class])
}

// Dropped returns how many subscribers were dropped for falling behind.
func (b *Broadcaster) Dropped() int64 { return b.dropped.Load() }
