package keylock

import (
	"sync"
	"testing"
)

func TestLocksSerialiseOneKeyAndFreeIt(t *testing.T) {
	var l Locks
	var wg sync.WaitGroup
	var counts [2]int // one per key, each guarded only by its key's lock
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := i % 2
			unlock := l.Lock([]string{"a", "b"}[k])
			counts[k]++ // -race catches a lock that does not exclude
			unlock()
		}()
	}
	wg.Wait()
	if counts != [2]int{100, 100} {
		t.Errorf("counts %v", counts)
	}
	if len(l.locks) != 0 {
		t.Errorf("%d locks kept after use", len(l.locks))
	}
}
