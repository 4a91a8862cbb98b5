package dataapi

import "testing"

func TestBroadcasterFansOut(t *testing.T) {
	b := NewBroadcaster(4)
	a1, a2 := b.Subscribe("notes"), b.Subscribe("notes")
	other := b.Subscribe("person")

	b.Publish(Change{Class: "notes", Cursor: "c1"})
	for _, s := range []*Subscription{a1, a2} {
		if got := <-s.C; got.Cursor != "c1" {
			t.Fatalf("got %+v", got)
		}
	}
	select {
	case ch := <-other.C:
		t.Fatalf("a subscriber of another class got %+v", ch)
	default:
	}

	a1.Close()
	a1.Close()
	if _, ok := <-a1.C; ok {
		t.Fatal("a closed subscription still delivers")
	}
	if n := b.Subscribers("notes"); n != 1 {
		t.Fatalf("%d subscribers after one closed, want 1", n)
	}
}

// TestBroadcasterDropsSlowSubscriber checks that a subscriber that does not
// read is dropped instead of blocking publishers or the others.
func TestBroadcasterDropsSlowSubscriber(t *testing.T) {
	b := NewBroadcaster(2)
	slow, fast := b.Subscribe("notes"), b.Subscribe("notes")

	// fast reads each change as it comes; slow never reads.
	for i := 0; i < 10; i++ {
		b.Publish(Change{Class: "notes", Cursor: string(rune('a' + i))})
		if got := <-fast.C; got.Cursor != string(rune('a'+i)) {
			t.Fatalf("fast subscriber got %+v", got)
		}
	}

	n := 0
	for range slow.C {
		n++
	}
	if n != 2 {
		t.Fatalf("the slow subscriber got %d changes before being dropped, want 2", n)
	}
	if b.Dropped() != 1 || b.Subscribers("notes") != 1 {
		t.Fatalf("dropped %d, %d left; want 1 and 1", b.Dropped(), b.Subscribers("notes"))
	}
}

func BenchmarkPublish(b *testing.B) {
	br := NewBroadcaster(1 << 16)
	subs := make([]*Subscription, 8)
	for i := range subs {
		subs[i] = br.Subscribe("notes")
		go func(s *Subscription) {
			for range s.C {
			}
		}(subs[i])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br.Publish(Change{Class: "notes"})
	}
	b.StopTimer()
	for _, s := range subs {
		s.Close()
	}
}
