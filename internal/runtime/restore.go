package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/namespaces"
)

// Restore reconnects to the shims of a previous daemon, in parallel, and
// returns when each task is either watched again or found dead. A dead
// shim's task is reported exited (with its durable exit record if the shim
// wrote one, else 255 "unknown") and everything it held is released.
// Exits that happened while no daemon ran are reported through OnExit.
func (m *Manager) Restore(ctx context.Context) error {
	root := filepath.Join(m.cfg.State, "tasks")
	nsDirs, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, nsDir := range nsDirs {
		ids, err := os.ReadDir(filepath.Join(root, nsDir.Name()))
		if err != nil {
			return err
		}
		for _, id := range ids {
			wg.Add(1)
			go func(ns, id string) {
				defer wg.Done()
				m.restore(ctx, ns, id)
			}(nsDir.Name(), id.Name())
		}
	}
	wg.Wait()
	return nil
}

// restoreDialTimeout bounds how long a shim may take to answer after a
// daemon restart before it is taken for dead.
const restoreDialTimeout = 2 * time.Second

func (m *Manager) restore(ctx context.Context, ns, id string) {
	t := newTask(ns, id, m.taskDir(ns, id), StatusRunning)
	ctx = namespaces.WithNamespace(ctx, ns)
	data, err := os.ReadFile(filepath.Join(t.dir, taskMetaFile))
	if err == nil {
		err = json.Unmarshal(data, &t.meta)
	}
	if err != nil {
		// Create never finished: nothing runs from here that we know of.
		log.G(ctx).Warn("removing unfinished task directory", "container_id", id, "error", err)
		m.release(ctx, t)
		return
	}
	m.mu.Lock()
	m.tasks[key(ns, id)] = t
	m.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, restoreDialTimeout)
	s, err := ConnectShim(dctx, t.dir)
	cancel()
	if err != nil {
		exit := m.deadShimExit(t, err)
		m.exited(t, exit)
		return
	}
	t.shim, t.api = s, s.Client()
	st, err := t.api.State(ctx, "")
	if err != nil {
		s.Close()
		t.shim, t.api = nil, nil
		m.exited(t, m.deadShimExit(t, err))
		return
	}
	t.mu.Lock()
	t.pid, t.status = uint32(st.Pid), Status(st.Status)
	t.mu.Unlock()
	m.watch(t)
}
