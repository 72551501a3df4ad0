// Package keylock provides named mutexes, created on demand and freed when
// nobody holds or waits for them: one lock per digest, per container id, and
// so on, without a global lock held during the work. It knows nothing of what
// the names mean.
package keylock

import "sync"

// Locks is a set of named mutexes. The zero value is ready to use; it must
// not be copied after first use.
type Locks struct {
	mu    sync.Mutex
	locks map[string]*lock
}

type lock struct {
	mu   sync.Mutex
	refs int // holders and waiters
}

// Lock locks the mutex named key, waiting while another holds it, and
// returns the function that unlocks it.
func (l *Locks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*lock{}
	}
	kl, ok := l.locks[key]
	if !ok {
		kl = &lock{}
		l.locks[key] = kl
	}
	kl.refs++
	l.mu.Unlock()
	kl.mu.Lock()
	return func() {
		l.mu.Lock()
		if kl.refs--; kl.refs == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
		kl.mu.Unlock()
	}
}
